"""The webhook destination guard: every spelling of an internal address is refused."""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, ip_address

import pytest
from pydantic import ValidationError

from smsdesk.domain.webhook_settings import WebhookSettings
from smsdesk.webhooks_out.destinations import (
    DestinationRefused,
    check_url,
    checked_addresses,
    parse_host,
    parse_ipv4,
    refusal,
)


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def unresolvable(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0xa9.0376.43518", "169.254.169.254"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_ipv4_is_read_as_the_c_library_reads_it(spelling: str, address: str) -> None:
    assert parse_ipv4(spelling) == IPv4Address(address)


@pytest.mark.parametrize("host", ["1.2.3.256", "256.1.1", "1.2.3.4.5", "08.1.1.1", "a.1"])
def test_a_host_ending_in_a_number_must_be_an_address(host: str) -> None:
    with pytest.raises(DestinationRefused):
        parse_host(host)


def test_names_stay_names_in_their_dns_form() -> None:
    assert parse_host("Hooks.Example.COM.") == "hooks.example.com"
    assert parse_host("bücher.example") == "xn--bcher-kva.example"
    assert parse_host("１２７.0.0.1") == IPv4Address("127.0.0.1")  # full-width digits
    assert parse_host("1.example.com") == "1.example.com"
    for bad in ("exa%20mple.com", "a..b", "a b.example"):
        with pytest.raises(DestinationRefused):
            parse_host(bad)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "the cloud metadata address"),
        ("fd00:ec2::254", "the cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("fc00::1", "a private (unique local) address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("255.255.255.255", "a reserved or broadcast address"),
        ("240.0.0.1", "a reserved or broadcast address"),
        ("192.0.2.1", "a reserved address"),
        ("2001:db8::1", "a reserved address"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1 inside IPv6)"),
        ("::127.0.0.1", "a loopback address (127.0.0.1 inside IPv6)"),
        ("64:ff9b::a9fe:a9fe", "the cloud metadata address (169.254.169.254 inside IPv6)"),
        ("64:ff9b:1::a00:1", "a private address (10.0.0.1 inside IPv6)"),
        ("2002:c0a8:101::1", "a private address (192.168.1.1 inside IPv6)"),
    ],
)
def test_internal_addresses_are_refused_with_the_reason(address: str, why: str) -> None:
    assert refusal(ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None
    assert refusal(ip_address("64:ff9b::5db8:d822")) is None  # NAT64 of a public address


def test_the_allow_list_lets_its_networks_through_and_nothing_else() -> None:
    allowed = WebhookSettings(allow_private=["10.1.2.0/24", "127.0.0.0/8"]).networks()
    assert refusal(ip_address("10.1.2.9"), allowed) is None
    assert refusal(ip_address("::ffff:10.1.2.9"), allowed) is None
    assert refusal(ip_address("127.0.0.1"), allowed) is None
    assert refusal(ip_address("10.1.3.9"), allowed) == "a private address"
    assert refusal(ip_address("169.254.169.254"), allowed) == "the cloud metadata address"
    assert refusal(ip_address("::1"), allowed) == "a loopback address"


def test_every_resolved_address_is_checked() -> None:
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "fe80::1%eth0"]

    with pytest.raises(DestinationRefused) as refused:
        checked_addresses("crm.example.com", 443, (), mixed)
    assert "crm.example.com: it resolves to fe80::1, a link-local address" in str(refused.value)
    assert "webhooks.allow_private" in str(refused.value)
    assert checked_addresses("crm.example.com", 443, (), public) == [ip_address("93.184.216.34")]


def test_localhost_names_are_never_asked_of_dns() -> None:
    for name in ("localhost", "LOCALHOST.", "api.localhost", "localhost.localdomain"):
        with pytest.raises(DestinationRefused, match=re.escape("127.0.0.1, a loopback address")):
            checked_addresses(name, 80, (), public)


def test_urls_with_other_schemes_or_credentials_are_refused() -> None:
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/"):
        with pytest.raises(DestinationRefused, match="http:// or https://"):
            check_url(url, (), public)
    for url in ("https://user:pw@example.com/", "http://127.0.0.1\\@example.com/"):
        with pytest.raises(DestinationRefused, match="user:password@"):
            check_url(url, (), public)


def test_a_name_not_resolvable_yet_is_accepted_and_checked_at_delivery() -> None:
    check_url("https://crm.example.com/hook", (), unresolvable)
    with pytest.raises(OSError):
        checked_addresses("crm.example.com", 443, (), unresolvable)


def test_the_allow_list_setting_takes_networks_only() -> None:
    settings = WebhookSettings.model_validate({"allow_private": "10.1.2.7/24, fd00:1::/64"})
    assert settings.allow_private == ["10.1.2.0/24", "fd00:1::/64"]
    assert WebhookSettings(allow_private=["127.0.0.1"]).allow_private == ["127.0.0.1/32"]
    for bad in ("10.1.2.0/33", "intranet", "0177.0.0.1/8"):
        with pytest.raises(ValidationError, match=re.escape("e.g. 10.1.2.0/24")):
            WebhookSettings(allow_private=[bad])
