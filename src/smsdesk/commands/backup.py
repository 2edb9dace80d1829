"""`smsdesk backup` and `smsdesk restore`: a consistent copy while the service runs, and back.

Stored provider secrets are encrypted with the installation's key, which is not in the
database; a backup says where the key is and that the backup alone cannot decrypt them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, make_config, out
from smsdesk.crypto import KEY_FILE
from smsdesk.domain.audit import Actor
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import backup as store
from smsdesk.store import pg_backup

BackupFile = Annotated[Path, typer.Argument(help="The backup file.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    file: BackupFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    include_key: Annotated[
        bool,
        typer.Option(
            "--include-key",
            help="Also write the secret key to FILE.key (anyone with both can read secrets).",
        ),
    ] = False,
) -> None:
    """Copy the database while the service runs (SQLite backup API, or pg_dump -Fc)."""
    config = make_config(data_dir, database_url)
    url = config.effective_database_url
    try:
        path = store.sqlite_path(url)
        if path is not None:
            store.backup_sqlite(path, file)
        else:
            pg_backup.backup_postgres(url, file)
    except store.BackupError as problem:
        fail(str(problem))
    out.print(f"backup written to {file}", highlight=False)
    report_key(config, file, include_key)
    record(config, "database.backed_up", {"include_key": include_key})


def report_key(config: AppConfig, file: Path, include_key: bool) -> None:
    """Say where the key is, that the backup cannot decrypt secrets alone, and copy it if asked."""
    key_path = (config.data_dir / KEY_FILE).resolve()
    if configured_key(config):
        where = "The secret key is set in SMSDESK_SECRET_KEY"
        key = configured_key(config)
    elif key_path.exists():
        where = f"The secret key is in {key_path}"
        key = key_path.read_text().strip()
    else:
        where = f"No secret key was found (SMSDESK_SECRET_KEY is unset and {key_path} is missing)"
        key = ""
    warn(
        f"{where}; it is not in this backup. The backup alone cannot decrypt the stored "
        "provider secrets: keep a copy of the key somewhere safe, apart from the backup."
    )
    if include_key and key:
        key_copy = key_file_of(file)
        fd = os.open(key_copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        warn(
            f"--include-key wrote the secret key to {key_copy}: anyone holding both files can "
            "read the stored secrets. Keep them apart, or protected as well as the live server."
        )


def configured_key(config: AppConfig) -> str:
    """SMSDESK_SECRET_KEY's value; empty counts as unset, as it does for encryption."""
    return config.secret_key.get_secret_value() if config.secret_key is not None else ""


def key_file_of(file: Path) -> Path:
    return file.with_name(file.name + ".key")


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False, soft_wrap=True)


def restore(
    file: BackupFile,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a target database that holds data.")
    ] = False,
) -> None:
    """Restore a backup into the database (stop the service first) and migrate it."""
    config = make_config(data_dir, database_url)
    url = config.effective_database_url
    try:
        path = store.sqlite_path(url)
        if path is not None and is_pg_dump(file):
            fail(f"{file} is a PostgreSQL dump; restore it into PostgreSQL with --database-url.")
        if path is not None:
            revision = store.restore_sqlite(file, url, force=force)
        else:
            revision = pg_backup.restore_postgres(file, url, force=force)
    except store.BackupError as problem:
        fail(str(problem))
    head = store.known_revisions()[-1]
    migrated = "" if revision == head else f", migrated to {head}"
    out.print(f"restored {file} (schema revision {revision}{migrated})", highlight=False)
    restore_key(config, file)
    record(config, "database.restored", {"revision": revision, "migrated_to": head})


def record(config: AppConfig, action: str, details: dict[str, object]) -> None:
    """An audit entry in the database just copied or restored (file names stay out of it).

    Without the secret key the trail's key cannot be read: then it is said, not recorded.
    """
    key_path = config.data_dir / KEY_FILE
    if not configured_key(config) and not key_path.exists():
        warn("not recorded in the audit trail: the secret key was not found.")
        return
    try:
        service = Service(config)
        try:
            service.audit(Actor.cli(), action, details=details)
        finally:
            service.close()
    except Exception as problem:  # the copy is made; a missing entry must not hide that
        warn(f"not recorded in the audit trail: {problem}")


def is_pg_dump(file: Path) -> bool:
    if not file.is_file():
        return False
    with file.open("rb") as handle:
        return handle.read(5) == b"PGDMP"


def restore_key(config: AppConfig, file: Path) -> None:
    """Put a key saved with --include-key in the data dir, unless a key is already configured."""
    saved = key_file_of(file)
    key_path = config.data_dir / KEY_FILE
    if not saved.exists() or configured_key(config):
        return
    if key_path.exists():
        if key_path.read_text().strip() != saved.read_text().strip():
            warn(f"{saved} differs from {key_path}, which was kept; secrets may not decrypt.")
        return
    key_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(saved, key_path)
    key_path.chmod(0o600)
    out.print(f"secret key restored to {key_path}", highlight=False)
