"""A burst of requests that all miss a cache at once is answered without a thread each."""

from __future__ import annotations

import asyncio
import threading

import httpx

from tests.support.harness import Harness


def worker_threads() -> set[int]:
    """Starlette's pool threads (anyio's workers) alive in this process."""
    return {t.ident or 0 for t in threading.enumerate() if type(t).__name__ == "WorkerThread"}


async def test_a_burst_with_a_new_key_checks_the_key_once(harness: Harness) -> None:
    """60 first requests with a key this process has not seen: all accepted, and the pool
    starts at most a couple of threads (it used to start one per request, up to 40)."""
    _, key = harness.service.keys.create("burst", "sender")
    before = worker_threads()
    headers = {"Authorization": f"Bearer {key}"}

    async def send(n: int) -> httpx.Response:
        body = {"to": f"+316120000{n:02d}", "text": f"burst {n}"}
        return await harness.client.post("/api/v1/messages", json=body, headers=headers)

    answers = await asyncio.gather(*(send(n) for n in range(60)))
    assert [a.status_code for a in answers] == [201] * 60, answers[0].text
    assert len(worker_threads() - before) <= 2
    for answer in answers[:3]:
        await harness.wait_for(answer.json()["id"], "delivered")


async def test_a_burst_with_a_wrong_key_is_refused_for_each_request(harness: Harness) -> None:
    headers = {"Authorization": "Bearer sd_000000000000_not-a-key-of-this-installation"}
    answers = await asyncio.gather(
        *(
            harness.client.post(
                "/api/v1/messages", json={"to": "+31612000001", "text": "x"}, headers=headers
            )
            for _ in range(20)
        )
    )
    assert {a.status_code for a in answers} == {401}
    assert {a.json()["error"]["code"] for a in answers} == {"invalid_api_key"}
