"""The PSWinCom fake itself, spoken to with plain httpx: it must answer as the gateway does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree

from smsdesk.testing.fakes import FailureMode
from smsdesk.testing.fakes.pswincom import BAD_LOGON, PsWinComFake, bad_receiver


@pytest.fixture(scope="module")
def server() -> Iterator[PsWinComFake]:
    with PsWinComFake() as fake:
        yield fake


@pytest.fixture
def fake(server: PsWinComFake) -> Iterator[PsWinComFake]:
    """The module's fake with nothing recorded and nothing pending."""
    server.reset()
    server.acknowledgements.clear()
    yield server
    server.release_held()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def session(*messages: str, client: str = PsWinComFake.username, pw: str | None = None) -> bytes:
    password = PsWinComFake.password if pw is None else pw
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>'
        f"<SESSION><CLIENT>{client}</CLIENT><PW>{password}</PW>"
        f"<MSGLST>{''.join(messages)}</MSGLST></SESSION>"
    ).encode("iso-8859-1", "xmlcharrefreplace")


def msg(number: int = 1, **elements: str) -> str:
    fields = {"TEXT": "Hello", "SND": "Smsdesk", "RCV": "4799887766", **elements}
    inner = "".join(f"<{tag}>{value}</{tag}>" for tag, value in fields.items() if value != "-")
    return f"<MSG><ID>{number}</ID>{inner}</MSG>"


async def post(http: httpx.AsyncClient, fake: PsWinComFake, body: bytes) -> httpx.Response:
    return await http.post(f"{fake.url}/", content=body, headers={"Content-Type": "text/xml"})


def answer(response: httpx.Response) -> tuple[str, str, list[dict[str, str]]]:
    """LOGON, REASON and each MSG's fields of a SESSION answer."""
    root = ElementTree.fromstring(response.content)
    results = [{c.tag: c.text or "" for c in m} for m in root.findall("MSGLST/MSG")]
    return root.findtext("LOGON"), root.findtext("REASON") or "", results


async def test_an_accepted_message_is_recorded_and_gets_a_reference(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """LOGON OK, STATUS OK with a 36-character REF; the SMS is kept in smsdesk's terms."""
    response = await post(http, fake, session(msg(1, RCPREQ="Y", TTL="60")))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    logon, reason, [result] = answer(response)
    assert (logon, reason, result["ID"], result["STATUS"]) == ("OK", "", "1", "OK")
    assert len(result["REF"]) == 36
    [sms] = fake.messages
    assert (sms.provider_id, sms.to, sms.sender, sms.text) == (
        result["REF"],
        "+4799887766",
        "Smsdesk",
        "Hello",
    )
    assert sms.report_requested and not sms.unicode
    assert sms.fields["TTL"] == "60"


@pytest.mark.parametrize(("client", "pw"), [("someone", None), (PsWinComFake.username, "wrong")])
async def test_wrong_credentials_get_logon_fail_with_a_reason(
    fake: PsWinComFake, http: httpx.AsyncClient, client: str, pw: str | None
) -> None:
    """A wrong CLIENT or PW is LOGON FAIL with REASON, HTTP 200, nothing sent."""
    response = await post(http, fake, session(msg(), client=client, pw=pw))

    assert response.status_code == 200
    assert answer(response) == ("FAIL", BAD_LOGON, [])
    assert fake.messages == []


async def test_a_session_without_logon_elements_fails_logon(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """CLIENT and PW are required."""
    body = f"<SESSION><MSGLST>{msg()}</MSGLST></SESSION>".encode()
    assert answer(await post(http, fake, body))[0] == "FAIL"


@pytest.mark.parametrize("body", [b"not xml", b"<SESSION><CLIENT>", b"<MSGLST/>"])
async def test_a_malformed_document_is_a_bad_request(
    fake: PsWinComFake, http: httpx.AsyncClient, body: bytes
) -> None:
    """What is not a SESSION document is refused with HTTP 400."""
    assert (await post(http, fake, body)).status_code == 400


@pytest.mark.parametrize(
    ("elements", "info"),
    [
        ({"RCV": "-"}, "TEXT and RCV are required."),
        ({"TEXT": "-"}, "TEXT and RCV are required."),
        ({"RCV": "+4799887766"}, bad_receiver("+4799887766")),
        ({"RCV": "2002"}, bad_receiver("2002")),
        ({"RCV": "47 99887766"}, bad_receiver("47 99887766")),
        ({"SND": "123456789012345678"}, "Invalid sender"),
        ({"SND": "TwelveLetter"}, "Invalid sender"),
        ({"SND": "My_Shop"}, "Invalid sender"),
        ({"TEXT": "Price 5\u20ac"}, "GSM 7-bit"),
        ({"TEXT": "zz", "OP": "9"}, "UCS-2"),
        ({"OP": "5"}, "not supported"),
    ],
)
async def test_a_message_the_gateway_refuses_gets_status_fail_with_info(
    fake: PsWinComFake, http: httpx.AsyncClient, elements: dict[str, str], info: str
) -> None:
    """Per-message checks refuse only that message, with an INFO saying why."""
    response = await post(http, fake, session(msg(1, **elements), msg(2)))

    logon, _, (refused, accepted) = answer(response)
    assert logon == "OK"
    assert (refused["STATUS"], "REF" in refused) == ("FAIL", False)
    assert info in refused["INFO"]
    assert accepted["STATUS"] == "OK"
    assert len(fake.messages) == 1


async def test_op_9_text_is_decoded_from_ucs2_hex(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """A Unicode message is recorded decoded and marked unicode."""
    text = "Привет ✓ 🙂"
    await post(http, fake, session(msg(1, TEXT=text.encode("utf-16-be").hex().upper(), OP="9")))

    [sms] = fake.messages
    assert (sms.text, sms.unicode) == (text, True)


async def test_latin1_bytes_are_read_as_the_declaration_says(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """The body is ISO-8859-1, as the XML declaration says."""
    await post(http, fake, session(msg(1, TEXT="Bl\xe5b\xe6r")))

    assert fake.messages[0].text == "Blåbær"


async def test_a_refused_number_is_refused_as_an_invalid_receiver(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """refuse_number makes the gateway answer FAIL for that receiver only."""
    fake.refuse_number("+4799887766")
    response = await post(http, fake, session(msg(1), msg(2, RCV="4799887767")))

    _, _, results = answer(response)
    assert [r["STATUS"] for r in results] == ["FAIL", "OK"]
    assert [s.to for s in fake.messages] == ["+4799887767"]


async def test_server_error_mode_is_a_500(fake: PsWinComFake, http: httpx.AsyncClient) -> None:
    """SERVER_ERROR answers 500 and records nothing."""
    fake.fail_next(FailureMode.SERVER_ERROR)
    assert (await post(http, fake, session(msg()))).status_code == 500
    assert fake.messages == []


async def test_throttle_mode_is_a_429_with_retry_after(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """THROTTLE answers 429 with Retry-After 1 (UNCONFIRMED for PSWin)."""
    fake.fail_next(FailureMode.THROTTLE)
    response = await post(http, fake, session(msg()))

    assert (response.status_code, response.headers["retry-after"]) == (429, "1")
    assert fake.messages == []


async def test_auth_mode_is_logon_fail_even_with_right_credentials(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """AUTH answers as a refused logon."""
    fake.fail_next(FailureMode.AUTH)
    assert answer(await post(http, fake, session(msg()))) == ("FAIL", BAD_LOGON, [])


async def test_timeout_mode_holds_the_answer(fake: PsWinComFake, http: httpx.AsyncClient) -> None:
    """TIMEOUT does not answer before the client gives up, and records nothing."""
    fake.fail_next(FailureMode.TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await http.post(
            f"{fake.url}/", content=session(msg()), timeout=httpx.Timeout(0.2, connect=5.0)
        )
    assert fake.messages == []


async def test_partial_mode_refuses_the_first_message_only(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """PARTIAL answers FAIL (invalid receiver) for the first MSG and OK for the rest."""
    fake.fail_next(FailureMode.PARTIAL)
    response = await post(http, fake, session(msg(1), msg(2, RCV="4799887767")))

    _, _, results = answer(response)
    assert [(r["ID"], r["STATUS"]) for r in results] == [("1", "FAIL"), ("2", "OK")]
    assert results[0]["INFO"] == bad_receiver("4799887766")
    assert [s.to for s in fake.messages] == ["+4799887767"]


def acknowledging(seen: list[httpx.Request], ids: list[str] | None = None) -> httpx.AsyncClient:
    """A client standing in for smsdesk's webhook: keeps requests, acknowledges messages."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/not-the-secret"):
            return httpx.Response(403)
        root = ElementTree.fromstring(request.content)
        numbers = ids if ids is not None else [m.findtext("ID") for m in root.findall("MSG")]
        items = "".join(f"<MSG><ID>{n}</ID><STATUS>OK</STATUS></MSG>" for n in numbers)
        return httpx.Response(200, text=f"<MSGLST>{items}</MSGLST>")

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def accepted_sms(fake: PsWinComFake, http: httpx.AsyncClient, *numbers: str) -> list[Any]:
    await post(http, fake, session(*(msg(i, RCV=n) for i, n in enumerate(numbers, start=1))))
    return list(fake.messages)


async def test_a_report_is_an_xml_msglst_post_to_the_portal_url(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """send_report posts ID, REF, RCV, STATE (and DELIVERYTIME when delivered)."""
    fake.point_callbacks("http://smsdesk.test/webhooks/pswincom/status/s3cret", None)
    [sms] = await accepted_sms(fake, http, "4799887766")
    seen: list[httpx.Request] = []
    async with acknowledging(seen) as client:
        await fake.send_report(client, sms, True)
        await fake.send_report(client, sms, False)

    delivered, undelivered = (ElementTree.fromstring(r.content).find("MSG") for r in seen)
    assert str(seen[0].url) == "http://smsdesk.test/webhooks/pswincom/status/s3cret"
    assert seen[0].headers["content-type"] == "application/xml"
    assert b"pswincom_report_request.dtd" in seen[0].content
    assert [delivered.findtext(t) for t in ("ID", "REF", "RCV", "STATE")] == [
        "1",
        sms.provider_id,
        "4799887766",
        "DELIVRD",
    ]
    assert delivered.findtext("DELIVERYTIME")
    assert undelivered.findtext("STATE") == "UNDELIV"
    assert undelivered.find("DELIVERYTIME") is None
    assert len(fake.acknowledgements) == 2


async def test_reports_can_come_batched_and_must_all_be_acknowledged(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """Several MSG per post; an answer that skips one is an error of the receiver."""
    fake.point_callbacks("http://smsdesk.test/webhooks/pswincom/status/s3cret", None)
    first, second = await accepted_sms(fake, http, "4799887766", "4799887767")
    seen: list[httpx.Request] = []
    async with acknowledging(seen) as client:
        await fake.send_states(client, [(first, "DELIVRD"), (second, "EXPIRED")])
    assert [m.findtext("STATE") for m in ElementTree.fromstring(seen[0].content)] == [
        "DELIVRD",
        "EXPIRED",
    ]
    async with acknowledging(seen, ids=["1"]) as client:
        with pytest.raises(AssertionError, match="not every message acknowledged"):
            await fake.send_states(client, [(first, "DELIVRD"), (second, "EXPIRED")])


async def test_a_forged_report_goes_to_a_url_with_the_wrong_secret(
    fake: PsWinComFake, http: httpx.AsyncClient
) -> None:
    """forged=True replaces the secret in the portal URL."""
    fake.point_callbacks("http://smsdesk.test/webhooks/pswincom/status/s3cret", None)
    [sms] = await accepted_sms(fake, http, "4799887766")
    seen: list[httpx.Request] = []
    async with acknowledging(seen) as client:
        response = await fake.send_report(client, sms, True, forged=True)

    assert response.status_code == 403
    assert seen[0].url.path == "/webhooks/pswincom/status/not-the-secret"


async def test_an_inbound_sms_is_an_mo_xml_post_in_latin1(fake: PsWinComFake) -> None:
    """send_inbound posts MO v2 XML with PSW headers, numbers as bare digits."""
    fake.point_callbacks(None, "http://smsdesk.test/webhooks/pswincom/inbound/s3cret")
    seen: list[httpx.Request] = []
    async with acknowledging(seen) as client:
        await fake.send_inbound(client, "+4712345678", "+4799887766", "Takk & hei, blåbær")

    [request] = seen
    assert request.headers["psw-message-type"] == "MO"
    assert request.headers["psw-message-version"] == "2"
    assert "bl\xe5b\xe6r".encode("latin-1") in request.content
    item = ElementTree.fromstring(request.content).find("MSG")
    assert [item.findtext(t) for t in ("ID", "TEXT", "SND", "RCV")] == [
        "1",
        "Takk & hei, blåbær",
        "4712345678",
        "4799887766",
    ]
