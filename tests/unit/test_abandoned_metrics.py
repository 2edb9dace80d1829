"""`serve --processes N` removes the metrics directories of first processes that were killed,
and nothing else."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from smsdesk.commands.serve_processes import remove_abandoned_metrics


def ended_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_only_directories_of_ended_processes_are_removed(tmp_path: Path) -> None:
    dead = ended_pid()
    abandoned = tmp_path / f"smsdesk-metrics-{dead}-abc"
    running = tmp_path / f"smsdesk-metrics-{os.getpid()}-def"
    unnamed = tmp_path / "smsdesk-metrics-xyz"  # made by an older version: owner unknown
    for path in (abandoned, running, unnamed):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"\0" * 16)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / f"smsdesk-metrics-{dead}-link"
    link.symlink_to(elsewhere)

    assert remove_abandoned_metrics(tmp_path) == [abandoned]

    assert not abandoned.exists()
    assert running.is_dir() and unnamed.is_dir() and elsewhere.is_dir() and link.is_symlink()
