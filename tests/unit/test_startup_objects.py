"""The objects made while starting are kept out of the garbage collector's full scans.

Checked in a process of its own: freezing the test run's own objects would keep its garbage
for the rest of the run."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
import smsdesk.cli, smsdesk.service, smsdesk.web.app
from smsdesk.commands.serve import settle_startup_objects

settle_startup_objects()
frozen = gc.get_freeze_count()

class Node:
    partner = None

first, second = Node(), Node()
first.partner, second.partner = second, first
del first, second
print(json.dumps({"frozen": frozen, "collected": gc.collect()}))
"""


def test_startup_objects_are_set_aside_and_new_ones_still_collected() -> None:
    found = json.loads(
        subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        ).stdout
    )
    assert found["frozen"] > 10_000  # the modules, tables and app made while starting
    assert found["collected"] >= 2  # a cycle made afterwards is still found


COLLECTED_LATER = """
import gc, json, weakref
from smsdesk.commands.serve import settle_startup_objects

settle_startup_objects()

class Node:
    partner = None

def cycle():
    first, second = Node(), Node()
    first.partner, second.partner = second, first
    return weakref.ref(first)

found = {}
kept = []
alive = cycle()
kept.extend([] for _ in range(1_000))  # what a few requests leave alive
found["after 1,000"] = alive() is not None
kept.extend([] for _ in range(20_000))
found["after 21,000"] = alive() is not None
print(json.dumps(found))
"""


def test_garbage_cycles_are_collected_less_often_but_still_by_themselves() -> None:
    """Fewer collections of young objects (most die by their reference count anyway), and a
    cycle of garbage is still freed without anyone calling the collector."""
    found = json.loads(
        subprocess.run(
            [sys.executable, "-c", COLLECTED_LATER], capture_output=True, text=True, check=True
        ).stdout
    )
    assert found == {"after 1,000": True, "after 21,000": False}
