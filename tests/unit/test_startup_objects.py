"""The objects made while starting are kept out of the garbage collector's full scans."""

from __future__ import annotations

import gc

from smsdesk.commands.serve import settle_startup_objects


def test_startup_objects_are_set_aside_and_new_ones_still_collected() -> None:
    gc.unfreeze()
    try:
        settle_startup_objects()
        assert gc.get_freeze_count() > 10_000  # the modules, tables and app made so far

        class Node:
            partner: object = None

        first, second = Node(), Node()
        first.partner, second.partner = second, first
        del first, second
        assert gc.collect() >= 2  # a cycle made afterwards is still found
    finally:
        gc.unfreeze()
