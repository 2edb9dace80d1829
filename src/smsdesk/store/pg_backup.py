"""PostgreSQL backups with `pg_dump -Fc` and restores with `pg_restore`.

The tools must match the server's major version or be newer; Debian keeps them outside PATH in
/usr/lib/postgresql/<version>/bin, so those directories are searched too (SMSDESK_PG_BIN names
another directory). When a tool is
missing the exact command line is handed back for the operator to run elsewhere.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from smsdesk.store.backup import BackupError, check_revision, migrate, refuse_unless_empty

COPY_ROW = re.compile(r"^COPY [\w.\"]*alembic_version .*FROM stdin;\n([^\n]+)\n", re.MULTILINE)


@dataclass(frozen=True)
class ToolCommand:
    """A pg_dump/pg_restore invocation: argv without the password, which goes in `env`."""

    argv: list[str]
    env: dict[str, str]

    def shown(self) -> str:
        prefix = "PGPASSWORD=… " if "PGPASSWORD" in self.env else ""
        return prefix + shlex.join(self.argv)


class ToolMissing(BackupError):
    """pg_dump or pg_restore is not installed here; `command` is what to run instead."""

    def __init__(self, tool: str, command: ToolCommand) -> None:
        super().__init__(
            f"{tool} is not installed on this machine (install the postgresql-client package "
            f"of the server's version), so nothing was done. Run this command instead:\n"
            f"  {command.shown()}"
        )
        self.command = command


def find_tool(name: str) -> str | None:
    """`name` in SMSDESK_PG_BIN if set, else the newest in Debian's directories, else on PATH."""
    chosen = os.environ.get("SMSDESK_PG_BIN")
    if chosen:
        return shutil.which(name, path=chosen)
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    if versions:
        return str(versions[0])
    return shutil.which(name)


def _connection(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it."""
    parsed = sa.engine.make_url(url).set(drivername="postgresql")
    env = {"PGPASSWORD": parsed.password} if parsed.password else {}
    return parsed.set(password=None).render_as_string(hide_password=False), env


def dump_command(url: str, file: Path, tool: str = "pg_dump") -> ToolCommand:
    uri, env = _connection(url)
    return ToolCommand([tool, "-Fc", "--no-owner", f"--file={file}", f"--dbname={uri}"], env)


def restore_command(url: str, file: Path, tool: str = "pg_restore") -> ToolCommand:
    """Replaces the dump's objects (--clean); the caller has checked the target holds no data."""
    uri, env = _connection(url)
    argv = [tool, "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction"]
    return ToolCommand([*argv, f"--dbname={uri}", str(file)], env)


def _run(command: ToolCommand) -> str:
    result = subprocess.run(
        command.argv, env={**os.environ, **command.env}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BackupError(f"{Path(command.argv[0]).name} failed: {result.stderr.strip()}")
    return result.stdout


def backup_postgres(url: str, file: Path) -> None:
    """Dump the database in pg_dump's custom format, a consistent snapshot of one moment."""
    tool = find_tool("pg_dump")
    if tool is None:
        raise ToolMissing("pg_dump", dump_command(url, file))
    file.parent.mkdir(parents=True, exist_ok=True)
    draft = file.with_name(f".{file.name}.partial")
    _run(dump_command(url, draft, tool))
    os.replace(draft, file)


def dump_revision(tool: str, file: Path) -> str | None:
    """The Alembic revision inside a custom-format dump, read without restoring it."""
    argv = [tool, "--data-only", "--table=alembic_version", "--file=-", str(file)]
    listing = _run(ToolCommand(argv, {}))
    found = COPY_ROW.search(listing)
    return found.group(1).strip() if found else None


def restore_postgres(file: Path, url: str, *, force: bool) -> str:
    """Restore a dump into the target database and migrate it; returns the dump's revision."""
    tool = find_tool("pg_restore")
    if tool is None:
        raise ToolMissing("pg_restore", restore_command(url, file))
    if not file.is_file():
        raise BackupError(f"there is no backup file at {file}")
    revision = dump_revision(tool, file)
    check_revision(revision, str(file))
    refuse_unless_empty(url, force=force)
    _run(restore_command(url, file, tool))
    migrate(url)
    assert revision is not None
    return revision
