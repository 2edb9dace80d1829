"""Encryption of stored secrets (provider passwords and tokens).

The key comes from SMSDESK_SECRET_KEY or from `secret.key` in the data directory, which is
created on first use readable by its owner only. Losing the key means re-entering the secrets;
it never means they are readable without it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The key that decrypts stored secrets is missing or wrong."""


def load_or_create_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The installation's key: the configured one, else the key file, created if absent.

    The file appears complete or not at all (written aside, then linked into place), so a
    process starting at the same moment never reads a half-written key.
    """
    if configured:
        return _as_fernet_key(configured)
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _as_fernet_key(path.read_text().strip())
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
    return _as_fernet_key(path.read_text().strip())


def _as_fernet_key(text: str) -> bytes:
    """Accept a Fernet key as is, or derive one from any other passphrase."""
    raw = text.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class SecretBox:
    """Encrypts and decrypts secret strings with the installation's key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                "A stored secret cannot be decrypted with this installation's key; "
                "set SMSDESK_SECRET_KEY to the key it was saved with, or enter the secret again."
            ) from None
