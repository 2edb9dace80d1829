"""One contract, every provider module: what a user of any module can count on.

Each test runs once per module, against that provider's fake server on loopback, through the
running service (API → outbox → dispatcher → module → fake → callback → webhook).
"""

from __future__ import annotations

import pytest

from smsdesk.testing import free_port
from smsdesk.testing.fakes import FailureMode
from tests.contract.conftest import SENDER, Contract

TO = "+31612345678"
LONG_TEXT = ("Your parcel is on its way and will arrive tomorrow between 9 and 12. " * 6).strip()
UNICODE_TEXT = "Привет! Ваш заказ готов ✓ Ærø — 你好"


async def test_one_message_reaches_the_provider(contract: Contract) -> None:
    sent = await contract.sent(TO, "Hello from smsdesk")

    [sms] = contract.fake.sent_to(TO)
    assert sms.text == "Hello from smsdesk"
    assert sms.sender == SENDER
    assert not sms.unicode
    assert sent["provider_message_id"]
    assert sent["attempts"] == 1


async def test_a_batch_goes_out_whole(contract: Contract) -> None:
    numbers = [f"+3161234567{i}" for i in range(5)]
    response = await contract.harness.post(
        "/api/v1/messages/batch",
        {"messages": [{"to": n, "text": f"Batch message {i}"} for i, n in enumerate(numbers)]},
    )
    assert response.status_code == 200, response.text
    ids = [item["message"]["id"] for item in response.json()["results"]]
    for message_id in ids:
        await contract.harness.wait_for(message_id, "sent")

    for i, number in enumerate(numbers):
        [sms] = contract.fake.sent_to(number)
        assert sms.text == f"Batch message {i}"
    if contract.max_batch > 1:
        assert len(contract.fake.send_requests()) < len(numbers)


async def test_unicode_text_arrives_intact(contract: Contract) -> None:
    sent = await contract.sent(TO, UNICODE_TEXT)

    [sms] = contract.fake.sent_to(TO)
    assert sms.text == UNICODE_TEXT
    assert sms.unicode
    assert sent["encoding"] == "ucs2"


async def test_a_long_text_is_sent_whole_as_one_message(contract: Contract) -> None:
    sent = await contract.sent(TO, LONG_TEXT)

    [sms] = contract.fake.sent_to(TO)
    assert sms.text == LONG_TEXT
    assert sent["segments"] == 3


async def test_a_server_error_is_retried_and_sends_once(contract: Contract) -> None:
    contract.fake.fail_next(FailureMode.SERVER_ERROR)
    accepted = await contract.send(TO, "Try again")

    failed = await contract.wait_error(accepted["id"])
    assert contract.fake.sent_to(TO) == []
    assert failed["status_code"]

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == 1


async def test_a_timeout_is_retried_and_sends_once(contract: Contract) -> None:
    contract.fake.fail_next(FailureMode.TIMEOUT)
    accepted = await contract.send(TO, "Slow provider")

    failed = await contract.wait_error(accepted["id"])
    assert "did not answer" in failed["error"]
    contract.fake.release_held()

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == 1


async def test_an_unreachable_provider_keeps_messages_queued_until_it_returns(
    contract: Contract,
) -> None:
    settings = contract.fake.module_settings()
    await contract.harness.configure(
        module_settings={
            contract.module: {**settings, "base_url": f"http://127.0.0.1:{free_port()}"}
        }
    )
    await contract.harness.idle_scans(2)
    accepted = await contract.send(TO, "Anyone there")

    failed = await contract.wait_error(accepted["id"])
    assert "could not reach" in failed["error"].lower()

    await contract.harness.configure(module_settings={contract.module: settings})
    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == 1


async def test_throttling_waits_and_sends_once(contract: Contract) -> None:
    contract.fake.fail_next(FailureMode.THROTTLE)
    accepted = await contract.send(TO, "Too fast")

    failed = await contract.wait_error(accepted["id"])
    assert contract.fake.sent_to(TO) == []
    assert failed["error"]

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")
    assert len(contract.fake.sent_to(TO)) == 1


async def test_refused_credentials_keep_the_message_queued(contract: Contract) -> None:
    contract.fake.fail_next(FailureMode.AUTH)
    accepted = await contract.send(TO, "Who are you")

    failed = await contract.wait_error(accepted["id"])
    said = failed["error"].lower()
    assert any(word in said for word in ("credential", "password", "auth")), failed
    assert contract.fake.sent_to(TO) == []

    await contract.later(600)
    await contract.harness.wait_for(accepted["id"], "sent")


async def test_an_invalid_number_fails_with_the_providers_reason(contract: Contract) -> None:
    contract.fake.refuse_number("+31687654321")
    accepted = await contract.send("+31687654321", "Nobody here")

    failed = await contract.harness.wait_for(accepted["id"], "failed")
    assert failed["status_code"]
    assert failed["error"]
    assert contract.fake.sent_to("+31687654321") == []


async def test_a_partly_refused_batch_sends_the_rest(contract: Contract) -> None:
    if contract.max_batch == 1:
        pytest.skip(f"{contract.module} sends one message per request")
    contract.fake.fail_next(FailureMode.PARTIAL)
    numbers = [f"+3161234560{i}" for i in range(3)]
    response = await contract.harness.post(
        "/api/v1/messages/batch", {"messages": [{"to": n, "text": "Partial"} for n in numbers]}
    )
    ids = [item["message"]["id"] for item in response.json()["results"]]
    outcomes = [
        await contract.harness.wait_for(i, "sent", "failed", "queued", timeout=10) for i in ids
    ]
    await contract.harness.idle_scans(2)
    outcomes = [await contract.message(i) for i in ids]

    refused = [o for o in outcomes if o["status"] != "sent"]
    assert len(refused) == 1, outcomes
    assert refused[0]["error"]
    assert sorted(sms.to for sms in contract.fake.messages) == sorted(
        o["to"] for o in outcomes if o["status"] == "sent"
    )


@pytest.mark.parametrize(("delivered", "status"), [(True, "delivered"), (False, "undelivered")])
async def test_a_delivery_report_round_trip(
    contract: Contract, delivered: bool, status: str
) -> None:
    sent = await contract.sent(TO, "Did it arrive")
    [sms] = contract.fake.sent_to(TO)
    assert sms.report_requested

    answer = await contract.fake.send_report(contract.harness.client, sms, delivered)
    assert answer.is_success, answer.text

    final = await contract.harness.wait_for(sent["id"], status)
    assert final["status_code"]
    timeline = final["timeline"]
    assert timeline[-1]["source"] == "report"
    assert timeline[-1]["code"] == final["status_code"]


async def test_a_forged_delivery_report_changes_nothing(contract: Contract) -> None:
    sent = await contract.sent(TO, "Forge me")
    [sms] = contract.fake.sent_to(TO)

    answer = await contract.fake.send_report(contract.harness.client, sms, True, forged=True)
    assert answer.status_code == 403, answer.text

    url = sms.callback_url or contract.fake.status_url
    assert url is not None
    garbage = await contract.harness.client.post(
        url, content=b"\x00not a report", headers={"content-type": "application/json"}
    )
    assert 400 <= garbage.status_code < 500, garbage.text
    assert (await contract.message(sent["id"]))["status"] == "sent"


async def test_an_inbound_sms_is_stored(contract: Contract) -> None:
    if not contract.fake.supports_inbound:
        pytest.skip(f"{contract.module} does not forward inbound SMS")
    answer = await contract.fake.send_inbound(
        contract.harness.client, "+31611122233", "+31612000000", "Yes, tomorrow is fine"
    )
    assert answer.is_success, answer.text

    [row] = contract.inbound_rows()
    assert row.sender == "+31611122233"
    assert row.body == "Yes, tomorrow is fine"
    assert row.provider_message_id


async def test_a_forged_inbound_sms_is_refused(contract: Contract) -> None:
    if not contract.fake.supports_inbound:
        pytest.skip(f"{contract.module} does not forward inbound SMS")
    answer = await contract.fake.send_inbound(
        contract.harness.client, "+31611122233", "+31612000000", "Forged", forged=True
    )
    assert answer.status_code == 403
    assert contract.inbound_rows() == []


async def test_send_test_reports_the_providers_verdict(contract: Contract) -> None:
    response = await contract.harness.post("/api/v1/settings/test", {"to": TO, "text": "Send test"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] is True, body
    assert body["provider_message_id"]
    [sms] = contract.fake.sent_to(TO)

    await contract.fake.send_report(contract.harness.client, sms, True)
    await contract.harness.wait_for(body["id"], "delivered")


async def test_send_test_shows_refused_credentials(contract: Contract) -> None:
    contract.fake.fail_next(FailureMode.AUTH)
    response = await contract.harness.post("/api/v1/settings/test", {"to": TO, "text": "Send test"})
    body = response.json()
    assert body["accepted"] is False
    assert body["error"]["kind"] == "AuthenticationError", body
