"""The README's first command: `smsdesk serve` on a fresh data directory, then again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from smsdesk.store.tables import api_keys
from tests.support.processes import LISTENING, Processes, Server, smsdesk_env, wait_until


def api(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def wait_for_status(client: httpx.Client, message_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/messages/{message_id}").json()
        return body if body["status"] == status else None

    return wait_until(reached, f"message {message_id} to be {status}", timeout=15)


def start_and_send(processes: Processes, data_dir: Path) -> tuple[str, str]:
    """First start: the printed URL and key work; one SMS is delivered. Returns (key, id)."""
    server = processes.server(smsdesk_env(data_dir=data_dir)).wait_ready()
    key = server.first_key()
    assert key is not None, server.output()
    listening = LISTENING.search(server.output())
    assert listening is not None and listening.group(1) == server.url
    with api(server, key) as client:
        saved = client.put(
            "/api/v1/settings", json={"module_settings": {"simulator": {"report_delay": 0.05}}}
        )
        assert saved.status_code == 200, saved.text
        sent = client.post(
            "/api/v1/messages", json={"to": "+31612345678", "text": "Your request was answered."}
        )
        assert sent.status_code == 201, sent.text
        message_id: str = sent.json()["id"]
        delivered = wait_for_status(client, message_id, "delivered")
    statuses = [e["status"] for e in delivered["timeline"]]
    assert statuses == ["queued", "sending", "sent", "delivered"], delivered["timeline"]
    assert server.stop() == 0, server.output()
    return key, message_id


def test_first_start_prints_url_and_key_and_delivers_an_sms(
    processes: Processes, tmp_path: Path
) -> None:
    """`smsdesk serve` prints its URL and an admin key, delivers an SMS, and exits 0 on SIGTERM."""
    start_and_send(processes, tmp_path / "smsdesk-data")


def test_a_restart_keeps_messages_and_makes_no_second_first_key(
    processes: Processes, tmp_path: Path
) -> None:
    """A second start on the same data directory keeps the data and the only admin key."""
    data_dir = tmp_path / "smsdesk-data"
    key, message_id = start_and_send(processes, data_dir)
    again = processes.server(smsdesk_env(data_dir=data_dir)).wait_ready()
    assert again.first_key() is None, again.output()
    with api(again, key) as client:
        kept = client.get(f"/api/v1/messages/{message_id}")
    assert kept.status_code == 200, kept.text
    assert kept.json()["status"] == "delivered"
    assert again.stop() == 0, again.output()
    engine = sa.create_engine(f"sqlite:///{data_dir / 'smsdesk.sqlite3'}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar() == 1
    engine.dispose()
