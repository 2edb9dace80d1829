"""Sample the server with py-spy during a measured phase and summarise where its time went."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path


class PySpy:
    """`py-spy record` attached to a process until `stop()`; raw (collapsed) stacks per thread.

    By default every thread that is not idle is sampled, so a thread waiting to get the GIL
    back (after a sqlite3 call or a syscall) is counted in the function that waits. With
    `gil_only` only the thread holding the GIL is sampled: the view to use when the server is
    bound to one core by the GIL, as a single `smsdesk serve` is.
    """

    def __init__(self, pid: int, output: Path, *, gil_only: bool = False, rate: int = 250) -> None:
        found = shutil.which("py-spy")
        if found is None:
            raise SystemExit("--profile needs py-spy: pip install py-spy")
        self.output = output
        self.process = subprocess.Popen(
            [
                found,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                *(["--gil"] if gil_only else []),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Path:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        return self.output


def _frames(stack: str) -> list[str]:
    """py-spy raw: "thread (tid): name;func (file.py:line);... count" without line numbers."""
    thread, *calls = stack.split(";")
    return [thread.split(": ", 1)[-1], *(call.rsplit(":", 1)[0] + ")" for call in calls)]


def _package(frame: str) -> str:
    """The top-level package or module of a frame such as 'f (sqlalchemy/engine/base.py)'."""
    path = frame.rpartition(" (")[2].rstrip(")")
    return path.split("/", 1)[0].removesuffix(".py") if path else frame


def _share(counter: Counter[str], total: int, top: int, indent: str = "    ") -> list[str]:
    return [f"{indent}{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]


def summarise(path: Path, top: int = 12) -> list[str]:
    """Where the samples went: by thread, by package and function (own time), and through
    smsdesk's own functions (inclusive time)."""
    threads: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), _frames(stack)
        total += count
        threads[frames[0]] += count
        packages[_package(frames[-1])] += count
        own[frames[-1]] += count
        for frame in {f for f in frames[1:] if "(smsdesk/" in f and "(smsdesk/cli.py)" not in f}:
            ours[frame] += count
    if total == 0:
        return [f"  no samples in {path}"]
    return [
        f"  {total} samples of the server in {path}",
        "  by thread:",
        *_share(threads, total, 6),
        "  own time by package:",
        *_share(packages, total, top),
        "  own time by function:",
        *_share(own, total, top),
        "  inclusive time in smsdesk functions:",
        *_share(ours, total, top),
    ]
