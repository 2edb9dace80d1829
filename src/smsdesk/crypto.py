"""Encryption of stored secrets (provider passwords and tokens).

The keys come from SMSDESK_SECRET_KEY (several separated by commas, newest first) or from
`secret.key` in the data directory (one key a line, newest first), which is created on first
use readable by its owner only. Secrets are encrypted with the newest key and decrypted with
any, so a rotation never leaves a process unable to read. Losing the keys means re-entering
the secrets; it never means they are readable without them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The key that decrypts stored secrets is missing or wrong."""


def load_or_create_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The installation's newest key (see `load_or_create_keys`)."""
    return load_or_create_keys(data_dir, configured)[0]


def load_or_create_keys(data_dir: Path, configured: str | None = None) -> list[bytes]:
    """The installation's key ring, newest first: the configured one, else the key file.

    The file is created if absent, complete or not at all (written aside, then linked into
    place), so a process starting at the same moment never reads a half-written key.
    """
    if configured:
        return parse_configured_keys(configured)
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _read_key_file(path)
    fd, draft = tempfile.mkstemp(dir=data_dir, prefix=".secret-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it with mode 0600
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process got there first
            os.link(draft, path)
    finally:
        os.unlink(draft)
    return _read_key_file(path)


def parse_configured_keys(value: str) -> list[bytes]:
    """SMSDESK_SECRET_KEY: keys separated by commas, newest first.

    A value whose first part is not a generated key is one passphrase, commas and all, as
    before key rings existed; in a ring, parts between generated keys form one passphrase.
    """
    parts = value.split(",")
    if len(parts) == 1 or not _is_fernet_key(parts[0].strip()):
        return [_as_fernet_key(value)]
    groups: list[str] = []
    joining = False
    for part in parts:
        if _is_fernet_key(part.strip()):
            groups.append(part)
            joining = False
        elif joining:
            groups[-1] += "," + part
        else:
            groups.append(part)
            joining = True
    return [_as_fernet_key(group.strip()) for group in groups if group.strip()]


def _read_key_file(path: Path) -> list[bytes]:
    # A line may also hold a comma-separated ring, as copied from SMSDESK_SECRET_KEY.
    lines = [line.strip() for line in path.read_text().splitlines()]
    keys = [key for line in lines if line for key in parse_configured_keys(line)]
    if not keys:
        raise SecretKeyError(f"{path} holds no key; restore it from a backup.")
    return keys


def _write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file in one step, readable by its owner only."""
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"".join(key + b"\n" for key in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(draft, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(draft)
        raise


def add_new_key(data_dir: Path) -> bytes:
    """Put a freshly generated key first in the key file, keeping the older ones."""
    keys = load_or_create_keys(data_dir)
    new = Fernet.generate_key()
    _write_key_file(data_dir / KEY_FILE, [new, *keys])
    return new


def retire_old_keys(data_dir: Path, newest: bytes) -> int:
    """Keep only the newest key in the key file; returns how many keys were removed.

    `newest` is the key every secret was checked against: if another rotation put a newer one
    first meanwhile, nothing is removed.
    """
    keys = load_or_create_keys(data_dir)
    if keys[0] != newest:
        raise SecretKeyError("The key file changed while checking; run the command again.")
    if len(keys) > 1:
        _write_key_file(data_dir / KEY_FILE, keys[:1])
    return len(keys) - 1


def new_key() -> str:
    """A key for SMSDESK_SECRET_KEY."""
    return Fernet.generate_key().decode()


def _is_fernet_key(text: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(text.encode())) == 32
    except ValueError:
        return False


def _as_fernet_key(text: str) -> bytes:
    """Accept a Fernet key as is, or derive one from any other passphrase."""
    if _is_fernet_key(text):
        return text.encode()
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())


class SecretBox:
    """Encrypts with the newest key of the ring and decrypts with any of them.

    A box made by `for_installation` from the key file follows that file: a rotation by
    another process (new file) or a secret it cannot read makes it load the file again.
    """

    def __init__(self, keys: bytes | Sequence[bytes], *, key_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._key_file = key_file
        self._stamp = self._file_stamp()
        self._set(keys)

    @classmethod
    def for_installation(cls, data_dir: Path, configured: str | None = None) -> SecretBox:
        keys = load_or_create_keys(data_dir, configured)
        return cls(keys, key_file=None if configured else data_dir / KEY_FILE)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    @property
    def newest_key(self) -> bytes:
        self._follow_file()
        return self._keys[0]

    @property
    def from_file(self) -> bool:
        return self._key_file is not None

    def encrypt(self, plain: str) -> str:
        self._follow_file()
        return self._ring.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._ring.decrypt(token.encode()).decode()
        except InvalidToken:
            pass
        if self._follow_file(force=True):
            with contextlib.suppress(InvalidToken):
                return self._ring.decrypt(token.encode()).decode()
        raise SecretKeyError(
            "A stored secret cannot be decrypted with this installation's keys; "
            "set SMSDESK_SECRET_KEY to the key it was saved with, or enter the secret again."
        )

    def under_newest(self, token: str) -> bool:
        """Whether the newest key alone decrypts `token`."""
        self._follow_file()
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, token: str) -> str | None:
        """`token` encrypted with the newest key, or None when it already is."""
        if self.under_newest(token):
            return None
        try:
            return self._ring.rotate(token.encode()).decode()
        except InvalidToken:
            self.decrypt(token)  # reloads the ring, or raises the error that says what to do
            return self._ring.rotate(token.encode()).decode()

    def _set(self, keys: bytes | Sequence[bytes]) -> None:
        ring = [keys] if isinstance(keys, bytes) else list(keys)
        self._keys = ring
        self._newest = Fernet(ring[0])
        self._ring = MultiFernet([Fernet(key) for key in ring])

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._key_file is None:
            return None
        try:
            info = self._key_file.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _follow_file(self, *, force: bool = False) -> bool:
        """Load the key file again if it changed (or when `force`); True if the ring changed."""
        if self._key_file is None:
            return False
        stamp = self._file_stamp()
        if stamp is None or (stamp == self._stamp and not force):
            return False
        with self._lock:
            keys = _read_key_file(self._key_file)
            self._stamp = stamp
            if keys == self._keys:
                return False
            self._set(keys)
            return True
