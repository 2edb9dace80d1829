"""Kannel's delivery reports while smsdesk is stopped: with smsbox's http-request-retry and
http-queue-delay set as docs/KANNEL.md says, a report whose dlr-url call failed comes again,
and the message becomes delivered once `smsdesk serve` is back on its port."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdesk.testing import free_port
from tests.e2e.test_serve import api, wait_for_status
from tests.support.kannel import USERNAME, KannelGateway, kannel_installed
from tests.support.processes import Processes, smsdesk_env, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not kannel_installed(),
        reason="Kannel is not installed: apt-get install kannel kannel-extras",
    ),
]

TO = "+46701234567"


def failed_report_calls(kannel: KannelGateway, message_id: str) -> list[str]:
    """smsbox's log lines about dlr-url calls for this message that got no answer."""
    return [
        line
        for line in kannel.smsbox_log().splitlines()
        if "Couldn't" in line and f"ref={message_id}" in line
    ]


def test_a_report_that_came_while_smsdesk_was_stopped_arrives_after_the_restart(
    processes: Processes, tmp_path: Path
) -> None:
    """The SMSC takes the message (and Kannel reports it) only after `serve` has stopped; the
    report's first call fails, smsbox retries it, and the restarted serve marks it delivered."""
    env = smsdesk_env(data_dir=tmp_path / "data", port=str(free_port()))
    server = processes.server(env).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    with KannelGateway(f"{server.url}/webhooks/kannel/inbound/unused") as kannel:
        with api(server, key) as client:
            saved = client.put(
                "/api/v1/settings",
                json={
                    "module": "kannel",
                    "sender": "SMSDESK",
                    "default_country_code": "+46",
                    "module_settings": {
                        "kannel": {
                            "base_url": kannel.sendsms_url,
                            "username": USERNAME,
                            "password": kannel.password,
                            "smsc": "fake",
                        }
                    },
                },
            )
            assert saved.status_code == 200, saved.text
            kannel.stop_smsc()  # Kannel queues the message until its SMSC link is back
            sent = client.post("/api/v1/messages", json={"to": TO, "text": "Your order shipped"})
            assert sent.status_code == 201, sent.text
            message_id: str = sent.json()["id"]
            wait_for_status(client, message_id, "sent")
        assert server.stop() == 0, server.output()

        kannel.start_smsc()
        wait_until(lambda: kannel.received(), "the SMSC to get the message", 15)
        wait_until(
            lambda: failed_report_calls(kannel, message_id),
            "smsbox to fail calling the dlr-url",
            15,
        )
        again = processes.server(env).wait_ready()
        with api(again, key) as client:
            delivered = wait_for_status(client, message_id, "delivered")
        statuses = [event["status"] for event in delivered["timeline"]]
        assert statuses[-2:] == ["sent", "delivered"], delivered["timeline"]
        assert [part.to for part in kannel.received()] == [TO]
