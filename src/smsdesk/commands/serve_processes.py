"""How `smsdesk serve --processes N` starts its other API processes.

Each is `python -m smsdesk serve` with the first process's settings in its environment and no
dispatcher. It binds a socket of its own to the port (SO_REUSEPORT, as the first process did),
so the kernel spreads connections evenly; one socket shared by all would leave a burst of new
connections to whichever process woke first. It runs in a session of its own: a Ctrl-C on the
terminal reaches the first process only, which then stops the others in order.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from smsdesk import metrics
from smsdesk.process_config import AppConfig
from smsdesk.siblings import SiblingProcesses

OWN_METRICS_DIRECTORY = "SMSDESK_OWN_METRICS_DIRECTORY"


def api_processes(
    config: AppConfig, port: int, count: int, log_level: str, log_format: str
) -> SiblingProcesses:
    """`count` API processes on `port`, started when the service starts."""
    env = child_environment(config, port, log_level, log_format)

    def spawn(slot: int, link: socket.socket) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "smsdesk", "serve", "--processes", "1"]
        command += ["--parent-fd", str(link.fileno())]
        own_env = env | _worker_id(config, slot)
        return subprocess.Popen(
            command, env=own_env, pass_fds=(link.fileno(),), start_new_session=True
        )

    return SiblingProcesses(count, spawn, ended=metrics.forget_process)


def again_with_shared_metrics() -> NoReturn:
    """Start this command again, in this process, with a new directory for the metrics of
    all its processes (prometheus_client's multiprocess mode).

    /metrics is answered by whichever API process the connection reached, and the
    dispatcher's figures live in the first process, which answers none. prometheus_client
    keeps a process's figures in files only when the directory is in its environment before
    it is imported, which a running command is past: hence the restart (same pid, same
    arguments). The first process removes the directory when it ends; one that was killed
    cannot, and the next start removes what it left."""
    remove_abandoned_metrics(Path(tempfile.gettempdir()))
    directory = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
    os.environ[metrics.SHARED_DIRECTORY] = directory
    os.environ[OWN_METRICS_DIRECTORY] = directory
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


METRICS_PREFIX = "smsdesk-metrics-"
_OWNER = re.compile(re.escape(METRICS_PREFIX) + r"(\d+)-")


def remove_abandoned_metrics(where: Path) -> list[Path]:
    """Remove this user's metrics directories in `where` whose first process is gone (killed,
    so its own clean-up never ran); the removed ones are returned."""
    removed = []
    for path in where.glob(f"{METRICS_PREFIX}*"):
        owner = _OWNER.match(path.name)
        if owner is None or _alive(int(owner[1])):
            continue
        try:
            if path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:  # not a process: kill() would reach a group
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def owned_metrics_directory() -> str | None:
    """The directory `again_with_shared_metrics` made, once, in the first process (its API
    processes do not inherit the duty to remove it)."""
    return os.environ.pop(OWN_METRICS_DIRECTORY, None)


def child_environment(
    config: AppConfig, port: int, log_level: str, log_format: str
) -> dict[str, str]:
    """The first process's settings, however they were given (options or variables)."""
    env = dict(os.environ)
    env |= {
        "SMSDESK_DATA_DIR": str(config.data_dir.resolve()),
        "SMSDESK_DATABASE_URL": config.database_url,
        "SMSDESK_HOST": config.host,
        "SMSDESK_PORT": str(port),
        "SMSDESK_PUBLIC_URL": config.effective_public_url(port),
        "SMSDESK_DISPATCHER": "false",
        "SMSDESK_LOG_LEVEL": log_level,
        "SMSDESK_LOG_FORMAT": log_format,
        "SMSDESK_PROCESSES": "1",
    }
    env.pop("SMSDESK_WORKER_ID", None)
    return env


def _worker_id(config: AppConfig, slot: int) -> dict[str, str]:
    """A name given to the first process is shared with a suffix, so each process keeps a
    row of its own in `smsdesk cluster status`."""
    return {"SMSDESK_WORKER_ID": f"{config.worker_id}/api{slot}"} if config.worker_id else {}
