"""Migrations form one numbered chain, so the newest file names the head without Alembic."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from smsdesk.store import db


def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_the_newest_file_is_alembics_single_head() -> None:
    assert scripts().get_heads() == [db.newest_revision()]


def test_each_file_is_named_by_its_revision_and_revises_the_one_before() -> None:
    by_revision = {s.revision: s.down_revision for s in scripts().walk_revisions()}
    files = sorted((db.MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    assert [p.name.partition("_")[0] for p in files] == sorted(by_revision)
    previous = None
    for path in files:
        revision = path.name.partition("_")[0]
        assert by_revision[revision] == previous, path.name
        previous = revision
