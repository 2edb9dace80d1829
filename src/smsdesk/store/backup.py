"""Backups of the database while the service runs, and restoring them onto this version's schema.

SQLite is copied with its online backup API, page by page under a read transaction, so writers
keep working and the copy is one consistent moment. PostgreSQL is left to `pg_dump`/`pg_restore`
(see store/pg_backup.py). A restore checks the backup's Alembic revision first: a revision this
version does not know means a newer smsdesk made it, and migrating "down" is not possible.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.store import db
from smsdesk.store.configuration import CALLBACK_KEY
from smsdesk.store.hash_key import HASH_KEY


class BackupError(RuntimeError):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


def known_revisions() -> list[str]:
    """Every schema revision this version can migrate from, oldest first."""
    # Alembic (and Mako with it) is imported here, not with the module: `serve` imports every
    # command, and 10 MiB of a process that never restores would be spent on it.
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]


def check_revision(revision: str | None, what: str) -> None:
    """Refuse a backup made by a newer smsdesk, or one that is no smsdesk database at all."""
    known = known_revisions()
    if revision is None:
        raise BackupError(f"{what} holds no smsdesk schema version; is it an smsdesk backup?")
    if revision not in known:
        raise BackupError(
            f"{what} was made by a newer smsdesk (schema revision {revision}; this version "
            f"knows revisions up to {known[-1]}). Restore it with that version or a later one."
        )


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, None for other databases."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database into `target`, which appears complete or not at all."""
    if not source.exists():
        raise BackupError(f"there is no database at {source}; check --data-dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{target.name}.partial")
    draft.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=60)) as src,
        contextlib.closing(sqlite3.connect(draft)) as dst,
    ):
        src.backup(dst, pages=1024)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    os.replace(draft, target)


def sqlite_revision(path: Path) -> str | None:
    """The Alembic revision stored in a SQLite file, None when it has none."""
    if not path.is_file():
        raise BackupError(f"there is no backup file at {path}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None
    return str(row[0]) if row else None


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong with a SQLite file (empty when it is sound)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def holds_data(engine: Engine) -> bool:
    """Whether any table has rows; what every migrated, unused database holds (the schema
    version, the audit anchor, the installation's own keys, the default connection) is none."""
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for name in inspector.get_table_names():
            if name in _BOOKKEEPING:
                continue
            table = sa.table(name, sa.column("key"), sa.column("id"), sa.column("version"))
            query = sa.select(sa.literal(1)).select_from(table).limit(1)
            if name == "settings":
                query = query.where(table.c.key.not_in(_OWN_KEYS))
            elif name == "connections":  # the default connection, until someone edits it
                query = query.where(sa.or_(table.c.id != "default", table.c.version > 1))
            if conn.execute(query).first():
                return True
    return False


_BOOKKEEPING = frozenset({"alembic_version", "audit_anchor", "connection_health"})
_OWN_KEYS = (HASH_KEY, CALLBACK_KEY)


def restore_sqlite(backup: Path, target_url: str, *, force: bool) -> str:
    """Copy a SQLite backup over the target database and migrate it; returns its old revision."""
    revision = sqlite_revision(backup)
    check_revision(revision, str(backup))
    problems = integrity_problems(backup)
    if problems:
        raise BackupError(f"{backup} is damaged: {'; '.join(problems[:3])}")
    target = sqlite_path(target_url)
    assert target is not None
    refuse_unless_empty(target_url, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target, timeout=60)) as dst,
    ):
        src.backup(dst)
    migrate(target_url)
    assert revision is not None
    return revision


def refuse_unless_empty(url: str, *, force: bool) -> None:
    """Never overwrite a database holding data unless the operator said --force."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return
    engine = db.create_engine(url)
    try:
        occupied = holds_data(engine)
    finally:
        engine.dispose()
    if occupied and not force:
        raise BackupError(
            "the target database already holds data; restoring would replace it. "
            "Restore into an empty database, or add --force to replace its contents."
        )


def migrate(url: str) -> None:
    """Bring a restored database to this version's schema."""
    engine = db.create_engine(url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
