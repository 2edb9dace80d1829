"""SQLite's `synchronous` level is chosen by SMSDESK_SQLITE_SYNCHRONOUS (docs/DURABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import db

LEVELS = {"normal": 1, "full": 2}  # what PRAGMA synchronous answers


@pytest.mark.parametrize("level", ["normal", "full"])
def test_each_connection_uses_the_chosen_level(tmp_path: Path, level: str) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/s.sqlite3", sqlite_synchronous=level)
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == LEVELS[level]
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()


def test_the_default_is_normal(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path}/s.sqlite3")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == LEVELS["normal"]
    engine.dispose()


def test_the_service_takes_the_level_from_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSDESK_SQLITE_SYNCHRONOUS", "full")
    service = Service(AppConfig(data_dir=tmp_path))
    try:
        with service.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == LEVELS["full"]
    finally:
        service.close()


def test_a_wrong_level_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    env = {"SMSDESK_DATA_DIR": str(tmp_path), "SMSDESK_SQLITE_SYNCHRONOUS": "always"}
    result = CliRunner().invoke(app, ["messages", "list"], env=env)
    assert result.exit_code == 1
    assert "SMSDESK_SQLITE_SYNCHRONOUS='always'" in result.output
    assert "'normal' or 'full'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "smsdesk.sqlite3").exists()
