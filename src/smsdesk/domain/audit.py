"""Who did something, for the audit trail: a person, an API key, the command line or smsdesk."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

ActorKind = Literal["user", "api_key", "cli", "system"]
ACTOR_KINDS: tuple[ActorKind, ...] = ("user", "api_key", "cli", "system")


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str
    id: str | None = None
    address: str | None = None

    @classmethod
    def system(cls, job: str = "smsdesk") -> Actor:
        return cls(kind="system", name=job)

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system account that ran the `smsdesk` command."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return cls(kind="cli", name=name[:100])

    @classmethod
    def user(cls, user_id: int, username: str, address: str | None = None) -> Actor:
        return cls(kind="user", name=username, id=str(user_id), address=address)

    @classmethod
    def api_key(cls, key_id: str, key_name: str, address: str | None = None) -> Actor:
        return cls(kind="api_key", name=key_name[:100], id=key_id, address=address)
