"""End-to-end fixtures: the real `smsdesk` command, started and stopped as child processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Processes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Starts smsdesk processes with their logs in tmp_path/logs; stops the survivors after."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    started = Processes(log_dir)
    try:
        yield started
    finally:
        started.stop_all()
