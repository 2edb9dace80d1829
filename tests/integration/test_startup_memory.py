"""What `serve` loads at start: no migration tool and no password hash when nothing needs them."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import smsdesk.cli, smsdesk.service, smsdesk.web.app
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
kib = lambda name: int(status[name].split()[0])
print(json.dumps({
    "modules": sorted(m for m in ("alembic", "mako") if m in sys.modules),
    "peak_over_resident_mib": (kib("VmHWM") - kib("VmRSS")) / 1024,
}))
"""


def test_importing_the_server_loads_no_migration_tool_and_hashes_nothing() -> None:
    """Alembic is loaded only to migrate or restore; argon2's 64 MiB is spent on the first
    login with an unknown name, not at import (it was most of the server's peak memory)."""
    found = json.loads(
        subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        ).stdout
    )
    assert found["modules"] == []
    assert found["peak_over_resident_mib"] < 16
