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
