"""Where outgoing webhooks may go: public addresses only, unless the installation allows more.

A webhook URL is chosen by whoever holds an admin key; unguarded, it makes this server POST to
itself, to the networks behind it or to a cloud metadata service (server-side request forgery).
A host is read the way the operating system reads it (decimal, octal, hexadecimal and short IPv4
forms, IPv4 inside IPv6), names are resolved and every address must pass. The deliverer connects
to an address that passed (`transport.py`), so a name cannot answer differently in between.
Networks listed in the SMS configuration's `webhooks.allow_private` are let through.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address

import httpx

from smsdesk.domain.errors import DomainError
from smsdesk.domain.webhook_settings import Network

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

ALLOW_HINT = (
    "For a receiver on your own network, add its network to the SMS configuration's "
    "webhooks.allow_private (e.g. smsdesk settings set webhooks.allow_private=10.1.2.0/24)."
)
_METADATA = "the cloud metadata address"
_PRIVATE = "a private address"
_RESERVED = "a reserved address"
_REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("169.254.169.254/32", _METADATA),
        ("fd00:ec2::254/128", _METADATA),
        ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("10.0.0.0/8", _PRIVATE),
        ("172.16.0.0/12", _PRIVATE),
        ("192.168.0.0/16", _PRIVATE),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("fc00::/7", "a private (unique local) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("ff00::/8", "a multicast address"),
        ("240.0.0.0/4", "a reserved or broadcast address"),
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


class DestinationRefused(DomainError):
    """A webhook URL, or an address its host resolves to, that webhooks may not reach."""

    field = "url"


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = address.packed
    if any(address in net for net in _NAT64) or (packed[:12] == bytes(12) and int(address) > 1):
        return IPv4Address(packed[12:])
    return None


def refusal(address: Address, allowed: Iterable[Network] = ()) -> str | None:
    """Why `address` may not be reached (e.g. 'a loopback address'), or None if it may."""
    inner = embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    allowed = tuple(allowed)
    for candidate in (address, inner):
        if candidate is not None and any(_within(candidate, net) for net in allowed):
            return None
    if inner is not None:
        why = refusal(inner, allowed)
        return f"{why} ({inner} inside IPv6)" if why else None
    for net, why in _REFUSED:
        if _within(address, net):
            return why
    return None if address.is_global else _RESERVED


def _within(address: Address, net: Network) -> bool:
    return address.version == net.version and address in net


def parse_ipv4(host: str) -> IPv4Address | None:
    """`host` as the C library's inet_aton reads it ('2130706433', '0177.0.0.1', '0x7f.1',
    '127.1'); None if it is a name. A host that ends in a number but is no address is refused."""
    parts = host.split(".")
    if not _NUMBER.fullmatch(parts[-1]):
        return None
    values: list[int] = []
    for part in parts:
        if not _NUMBER.fullmatch(part) or len(parts) > 4:
            raise DestinationRefused(f"'{host}' is neither a host name nor an IPv4 address.")
        if part.startswith("0x"):
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise DestinationRefused(f"'{host}' is not a valid IPv4 address.")
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        raise DestinationRefused(f"'{host}' is not a valid IPv4 address.")
    number = last
    for index, value in enumerate(head):
        number += value << (8 * (3 - index))
    return IPv4Address(number)


def parse_host(host: str) -> Address | str:
    """The address a URL's host spells, or the host name in the form DNS is asked for."""
    host = host.strip().lower()
    if ":" in host:
        try:
            return IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise DestinationRefused(f"'{host}' is not a valid IPv6 address.") from None
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise DestinationRefused(f"'{host}' is not a valid host name.") from None
    host = host.removesuffix(".")
    if not _NAME.fullmatch(host):
        raise DestinationRefused(f"'{host}' is not a valid host name.")
    return parse_ipv4(host) or host


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (the default resolver)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


def checked_addresses(
    host: str, port: int, allowed: Iterable[Network], resolve: Resolver
) -> list[Address]:
    """Every address of `host`, each allowed; DestinationRefused names the first that is not.

    An unresolvable name raises OSError (socket.gaierror) from `resolve`.
    """
    allowed = tuple(allowed)
    target = parse_host(host)
    if isinstance(target, str) and _is_local_name(target):
        addresses: list[Address] = [IPv4Address("127.0.0.1")]  # never asked of DNS (RFC 6761)
    elif isinstance(target, str):
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(target, port)]
        if not addresses:
            raise OSError(f"{target} has no address")
    else:
        addresses = [target]
    for address in addresses:
        why = refusal(address, allowed)
        if why is not None:
            if address != target:
                what = f"{host}: it resolves to {address}, {why}"
            elif host.strip("[]").lower() != str(address):
                what = f"{host}: it means {address}, {why}"
            else:
                what = f"{address}: it is {why}"
            raise DestinationRefused(
                f"Webhooks may not reach {what}. "
                "Give the URL of a receiver on the public internet. " + ALLOW_HINT
            )
    return addresses


def check_url(url: str, allowed: Iterable[Network], resolve: Resolver) -> None:
    """Refuse a webhook URL that could reach an address webhooks may not reach.

    A name that does not resolve (yet) is accepted: each delivery resolves and checks again.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DestinationRefused(f"'{url}' is not a valid URL: {exc}.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DestinationRefused("Give an http:// or https:// URL with a host name.")
    if parsed.userinfo or "\\" in url:
        raise DestinationRefused(
            "Leave the user name and password (user:password@) out of a webhook URL: "
            "receivers check each delivery's X-Smsdesk-Signature instead."
        )
    try:
        checked_addresses(parsed.host, parsed.port or 0, allowed, resolve)
    except OSError:
        return


def _is_local_name(name: str) -> bool:
    return name in _LOCAL_NAMES or name.endswith(".localhost")
