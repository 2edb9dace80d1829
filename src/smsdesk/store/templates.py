"""Reply templates in the database: one row per (name, language).

Values are checked by `conversations.templates` before they get here. Writes take the
writer's connection; reads any connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from smsdesk.domain.ids import new_id
from smsdesk.store.tables import reply_templates
from smsdesk.store.writer import Writer

T = TypeVar("T")


class NameClash(Exception):
    """Another process gave a template this name in this language meanwhile."""


def written(writer: Writer, job: Callable[[Connection], T]) -> T:
    """Run `job` through the writer; a unique (name, language) clash becomes NameClash."""
    try:
        return writer.run_sync(job)
    except IntegrityError:
        raise NameClash from None


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    id: str
    name: str
    language: str
    body: str
    created_at: float
    updated_at: float


def _template(row: Any) -> ReplyTemplate:
    return ReplyTemplate(
        id=row.id,
        name=row.name,
        language=row.language,
        body=row.body,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_template(conn: Connection, template_id: str) -> ReplyTemplate | None:
    row = conn.execute(
        sa.select(reply_templates).where(reply_templates.c.id == template_id)
    ).first()
    return _template(row) if row is not None else None


def template_by_name(conn: Connection, name: str, language: str) -> ReplyTemplate | None:
    """The template with exactly this name in this language (names compare case-insensitively)."""
    row = conn.execute(
        sa.select(reply_templates).where(
            sa.func.lower(reply_templates.c.name) == name.lower(),
            reply_templates.c.language == language,
        )
    ).first()
    return _template(row) if row is not None else None


def templates_named(conn: Connection, name: str) -> list[ReplyTemplate]:
    """Every language's template of this name."""
    rows = conn.execute(
        sa.select(reply_templates)
        .where(sa.func.lower(reply_templates.c.name) == name.lower())
        .order_by(reply_templates.c.language)
    )
    return [_template(row) for row in rows]


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_templates(
    conn: Connection,
    *,
    search: str = "",
    language: str | None = None,
    first_language: str | None = None,
    limit: int = 500,
) -> list[ReplyTemplate]:
    """By name; `search` matches part of the name or the text (any case), `language` narrows
    to one language, `first_language` puts that language's templates first."""
    query = sa.select(reply_templates)
    if search:
        pattern = f"%{_escaped(search.lower())}%"
        query = query.where(
            sa.or_(
                sa.func.lower(reply_templates.c.name).like(pattern, escape="\\"),
                sa.func.lower(reply_templates.c.body).like(pattern, escape="\\"),
            )
        )
    if language:
        query = query.where(reply_templates.c.language == language)
    order: list[Any] = []
    if first_language:
        order.append(sa.case((reply_templates.c.language == first_language, 0), else_=1))
    order += [sa.func.lower(reply_templates.c.name), reply_templates.c.language]
    return [_template(row) for row in conn.execute(query.order_by(*order).limit(limit))]


def languages(conn: Connection) -> list[str]:
    """The languages templates exist in."""
    query = sa.select(reply_templates.c.language).distinct().order_by(reply_templates.c.language)
    return list(conn.execute(query).scalars())


def insert_template(conn: Connection, *, name: str, language: str, body: str, now: float) -> str:
    template_id = new_id()
    conn.execute(
        reply_templates.insert().values(
            id=template_id, name=name, language=language, body=body, created_at=now, updated_at=now
        )
    )
    return template_id


def update_template(
    conn: Connection, template_id: str, changes: dict[str, str], now: float
) -> bool:
    """Change name, language and/or body; False when there is no such template."""
    result = conn.execute(
        reply_templates.update()
        .where(reply_templates.c.id == template_id)
        .values(**changes, updated_at=now)
    )
    return result.rowcount > 0


def delete_template(conn: Connection, template_id: str) -> bool:
    result = conn.execute(reply_templates.delete().where(reply_templates.c.id == template_id))
    return result.rowcount > 0
