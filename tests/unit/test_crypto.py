"""The installation key and the encryption of stored secrets."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from smsdesk.crypto import KEY_FILE, SecretBox, SecretKeyError, load_or_create_key


def test_key_file_is_created_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == first
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_processes_starting_together_get_the_same_key(tmp_path: Path) -> None:
    """Eight first starts at once agree on one key; none reads a half-written file."""
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(load_or_create_key(tmp_path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_a_configured_passphrase_replaces_the_file(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path, "correct horse battery staple")
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox(key).decrypt(SecretBox(key).encrypt("pw")) == "pw"


def test_the_wrong_key_says_how_to_recover(tmp_path: Path) -> None:
    token = SecretBox(load_or_create_key(tmp_path, "one")).encrypt("pw")
    with pytest.raises(SecretKeyError, match="SMSDESK_SECRET_KEY"):
        SecretBox(load_or_create_key(tmp_path, "two")).decrypt(token)
