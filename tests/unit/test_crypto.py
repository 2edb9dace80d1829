"""The installation key and the encryption of stored secrets."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smsdesk.crypto import (
    KEY_FILE,
    SecretBox,
    SecretKeyError,
    add_new_key,
    load_or_create_key,
    load_or_create_keys,
    parse_configured_keys,
    retire_old_keys,
)


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


def test_a_ring_decrypts_with_any_key_and_encrypts_with_the_newest(tmp_path: Path) -> None:
    old = load_or_create_key(tmp_path)
    old_token = SecretBox(old).encrypt("pw")
    new = add_new_key(tmp_path)
    assert load_or_create_keys(tmp_path) == [new, old]
    ring = SecretBox.for_installation(tmp_path)
    assert ring.decrypt(old_token) == "pw"
    assert SecretBox(new).decrypt(ring.encrypt("pw2")) == "pw2"
    assert not ring.under_newest(old_token)
    resealed = ring.reseal(old_token)
    assert resealed is not None and SecretBox(new).decrypt(resealed) == "pw"
    assert ring.reseal(resealed) is None


def test_a_single_key_file_keeps_working_as_before(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    (tmp_path / KEY_FILE).write_bytes(key + b"\n")
    token = Fernet(key).encrypt(b"pw").decode()
    assert SecretBox.for_installation(tmp_path).decrypt(token) == "pw"


def test_the_variable_lists_keys_newest_first_and_a_passphrase_keeps_its_commas() -> None:
    new, old = Fernet.generate_key(), Fernet.generate_key()
    assert parse_configured_keys(f"{new.decode()}, {old.decode()}") == [new, old]
    single = parse_configured_keys("red, green, blue")
    assert len(single) == 1
    ring = parse_configured_keys(f"{new.decode()},red, green, blue")
    assert ring == [new, *single]


def test_a_box_made_before_a_rotation_follows_the_key_file(tmp_path: Path) -> None:
    """Another process rotated: this one reads the new secrets and writes under the new key."""
    before = SecretBox.for_installation(tmp_path)
    new = add_new_key(tmp_path)
    assert before.decrypt(SecretBox(new).encrypt("pw")) == "pw"
    assert SecretBox(new).decrypt(before.encrypt("pw")) == "pw"
    assert retire_old_keys(tmp_path, new) == 1
    assert load_or_create_keys(tmp_path) == [new]
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_retiring_keeps_every_key_when_another_rotation_came_first(tmp_path: Path) -> None:
    checked = load_or_create_key(tmp_path)
    add_new_key(tmp_path)
    with pytest.raises(SecretKeyError, match="again"):
        retire_old_keys(tmp_path, checked)
    assert len(load_or_create_keys(tmp_path)) == 2


def test_a_key_file_line_may_hold_a_ring_copied_from_the_variable(tmp_path: Path) -> None:
    new, old = Fernet.generate_key(), Fernet.generate_key()
    (tmp_path / KEY_FILE).write_text(f"{new.decode()},{old.decode()}\n")
    assert load_or_create_keys(tmp_path) == [new, old]
