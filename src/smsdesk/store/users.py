"""People who log in to the web interface, and their sessions.

Passwords are argon2 hashes; there is no default password and no default user (create one with
`smsdesk users create`). A session is a random token in an HttpOnly cookie; only its SHA-256 is
stored, so a leaked database gives no working session. Each session has its own CSRF token.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy.engine import Connection, Engine

from smsdesk.domain.audit import Actor
from smsdesk.store.audit import AuditTrail
from smsdesk.store.db import write_transaction
from smsdesk.store.tables import users, web_sessions

Role = Literal["admin", "agent"]
ROLES: tuple[Role, ...] = ("admin", "agent")
MIN_PASSWORD_LENGTH = 10
SESSION_IDLE_SECONDS = 8 * 3600
SESSION_MAX_SECONDS = 7 * 24 * 3600

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name takes as long as a wrong
    password. Made on the first such login, not at import: each hash takes argon2's 64 MiB for
    a moment, which would be most of a process's peak memory."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    language: str
    time_zone: str | None = None  # the user's own choice (IANA name); None: not chosen

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Contact:
    """How a user is reached: e-mail address, own mobile number, time zone and notification
    choices (stored JSON: event -> channels)."""

    user_id: int
    username: str
    language: str
    email: str | None
    phone: str | None
    time_zone: str | None
    notify: str


@dataclass(frozen=True, slots=True)
class WebSession:
    user: User
    csrf_token: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        language=row.language,
        time_zone=row._mapping.get("time_zone"),
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    if password.strip() != password or not password.strip():
        raise UserError("The password must not start or end with spaces.")


class UserStore:
    """Users and sessions; changes made with an `actor` are written to the audit trail."""

    def __init__(self, engine: Engine, *, trail: AuditTrail | None = None) -> None:
        self.engine = engine
        self.trail = trail

    def _audit(
        self,
        conn: Connection,
        actor: Actor | None,
        action: str,
        user_id: int,
        details: dict[str, str],
    ) -> None:
        if actor is not None and self.trail is not None:
            self.trail.record(
                conn, actor, action, target_kind="user", target_id=str(user_id), details=details
            )

    def create(
        self,
        username: str,
        password: str,
        role: str,
        language: str,
        now: float,
        actor: Actor | None = None,
    ) -> User:
        username = username.strip()
        if not username or len(username) > 100 or any(c.isspace() for c in username):
            raise UserError("A user name is 1 to 100 characters without spaces.")
        if role not in ROLES:
            raise UserError(f"The role must be one of: {', '.join(ROLES)}.")
        check_password(password)
        with write_transaction(self.engine) as conn, conn.begin():
            taken = conn.execute(
                sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower())
            ).first()
            if taken:
                raise UserError(f"There is already a user named '{username}'.")
            user_id = conn.execute(
                users.insert().values(
                    username=username,
                    password_hash=_hasher.hash(password),
                    role=role,
                    language=language,
                    created_at=now,
                    password_changed_at=now,
                )
            ).inserted_primary_key
            assert user_id is not None
            self._audit(
                conn,
                actor,
                "user.created",
                int(user_id[0]),
                {"username": username, "role": role},
            )
        return User(id=int(user_id[0]), username=username, role=role, language=language)

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
        return [_user(r) for r in rows]

    def get(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(sa.func.lower(users.c.username) == username.lower())
            ).first()
        return _user(row) if row else None

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right; None otherwise (in about the same time)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(sa.func.lower(users.c.username) == username.strip().lower())
            ).first()
        try:
            _hasher.verify(row.password_hash if row else _dummy_hash(), password)
        except VerificationError:
            return None
        return _user(row) if row else None

    def set_password(
        self, username: str, password: str, now: float, actor: Actor | None = None
    ) -> None:
        """A new password ends every session of that user."""
        check_password(password)
        with write_transaction(self.engine) as conn, conn.begin():
            user_id = self._id(conn, username)
            conn.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(password_hash=_hasher.hash(password), password_changed_at=now)
            )
            conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))
            self._audit(conn, actor, "user.password_changed", user_id, {"username": username})

    def set_role(self, username: str, role: str, actor: Actor | None = None) -> None:
        if role not in ROLES:
            raise UserError(f"The role must be one of: {', '.join(ROLES)}.")
        with write_transaction(self.engine) as conn, conn.begin():
            user_id = self._id(conn, username)
            conn.execute(users.update().where(users.c.id == user_id).values(role=role))
            self._audit(
                conn, actor, "user.role_changed", user_id, {"username": username, "role": role}
            )

    def set_language(self, user_id: int, language: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(language=language))

    def contact(self, username: str) -> Contact:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == self._id(conn, username))).one()
        return Contact(
            row.id, row.username, row.language, row.email, row.phone, row.time_zone, row.notify
        )

    def set_contact(
        self, username: str, values: dict[str, str | None], actor: Actor | None = None
    ) -> None:
        """Change some of email, phone, time_zone and notify (checked by the caller)."""
        allowed = {"email", "phone", "time_zone", "notify"}
        assert set(values) <= allowed, set(values) - allowed
        with write_transaction(self.engine) as conn, conn.begin():
            user_id = self._id(conn, username)
            conn.execute(users.update().where(users.c.id == user_id).values(**values))
            self._audit(
                conn,
                actor,
                "user.contact_changed",
                user_id,
                {"username": username, "fields": ", ".join(sorted(values))},
            )

    def delete(self, username: str, actor: Actor | None = None) -> None:
        with write_transaction(self.engine) as conn, conn.begin():
            user_id = self._id(conn, username)
            conn.execute(web_sessions.delete().where(web_sessions.c.user_id == user_id))
            conn.execute(users.delete().where(users.c.id == user_id))
            self._audit(conn, actor, "user.deleted", user_id, {"username": username})

    def _id(self, conn: Connection, username: str) -> int:
        found = conn.execute(
            sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower())
        ).scalar()
        if found is None:
            raise UserError(f"There is no user named '{username}'; see: smsdesk users list")
        return int(found)

    # Sessions

    def start_session(self, user: User, now: float) -> str:
        """A new session; the token goes in the cookie and is not stored."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                web_sessions.insert().values(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    last_seen_at=now,
                )
            )
            conn.execute(
                web_sessions.delete().where(
                    web_sessions.c.last_seen_at < now - SESSION_IDLE_SECONDS
                )
            )
        return token

    def session(self, token: str, now: float) -> WebSession | None:
        """The live session for a cookie's token, or None (unknown, idle too long, too old)."""
        query = (
            sa.select(web_sessions, users)
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.token_hash == _token_hash(token))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if (
            row.last_seen_at < now - SESSION_IDLE_SECONDS
            or row.created_at < now - SESSION_MAX_SECONDS
        ):
            self.end_session(token)
            return None
        if now - row.last_seen_at > 60 or now - (row.last_active_at or 0.0) > 60:
            # At most once a minute: the session's idle time and the user's presence (for
            # round-robin assignment) are both kept to the minute.
            with self.engine.begin() as conn:
                conn.execute(
                    web_sessions.update()
                    .where(web_sessions.c.token_hash == _token_hash(token))
                    .values(last_seen_at=now)
                )
                conn.execute(
                    users.update().where(users.c.id == row.user_id).values(last_active_at=now)
                )
        return WebSession(user=_user(row), csrf_token=row.csrf_token)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                web_sessions.delete().where(web_sessions.c.token_hash == _token_hash(token))
            )
