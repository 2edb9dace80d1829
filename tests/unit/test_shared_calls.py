"""Blocking look-ups shared by the requests waiting for the same answer at the same moment."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smsdesk.web.shared_calls import shared_call


class Gate:
    """A blocking look-up that counts its calls and answers once it is let go."""

    def __init__(self, answer: object = "answer") -> None:
        self.calls = 0
        self.release = threading.Event()
        self.answer = answer

    def __call__(self) -> object:
        self.calls += 1
        self.release.wait(10)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def started(gate: Gate, key: object, count: int) -> list[asyncio.Task[object]]:
    tasks = [asyncio.create_task(shared_call(key, gate)) for _ in range(count)]
    while gate.calls == 0:
        await asyncio.sleep(0)
    return tasks


async def test_callers_asking_at_once_share_one_call() -> None:
    gate = Gate()
    tasks = await started(gate, ("store", "key-1"), 50)
    gate.release.set()
    assert await asyncio.gather(*tasks) == ["answer"] * 50
    assert gate.calls == 1


async def test_a_later_caller_gets_a_fresh_call() -> None:
    gate = Gate()
    gate.release.set()
    assert await shared_call(("store", "key-2"), gate) == "answer"
    gate.answer = "changed"
    assert await shared_call(("store", "key-2"), gate) == "changed"
    assert gate.calls == 2


async def test_different_keys_do_not_share() -> None:
    first, second = Gate("first"), Gate("second")
    first.release.set()
    second.release.set()
    answers = await asyncio.gather(
        shared_call(("store", "a"), first), shared_call(("store", "b"), second)
    )
    assert list(answers) == ["first", "second"]


async def test_a_failure_reaches_every_waiter() -> None:
    gate = Gate(RuntimeError("database is gone"))
    tasks = await started(gate, ("store", "key-3"), 5)
    gate.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [str(r) for r in results] == ["database is gone"] * 5
    assert gate.calls == 1


async def test_a_waiter_that_goes_away_does_not_cancel_the_others() -> None:
    gate = Gate()
    tasks = await started(gate, ("store", "key-4"), 3)
    tasks[0].cancel()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert await asyncio.gather(*tasks[1:]) == ["answer", "answer"]
    assert gate.calls == 1
