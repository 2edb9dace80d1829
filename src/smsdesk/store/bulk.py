"""Multi-row inserts at the driver's speed: the accept path stores thousands of rows a second.

On SQLite the rows go to the driver as tuples: SQLAlchemy's per-row parameter processing
costs about as much as SQLite's own work.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect


@lru_cache(maxsize=32)
def _positional_insert(
    dialect: Dialect, table: sa.Table, keys: tuple[str, ...]
) -> tuple[str, itemgetter[Any]] | None:
    """The INSERT for rows with these keys and a getter putting a row's values in its order.

    None unless the driver takes positional parameters (SQLite) and the statement binds exactly
    these keys (no column defaults filled in by SQLAlchemy).
    """
    compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup or []
    if not compiled.positional or len(order) < 2 or sorted(order) != sorted(keys):
        return None
    return compiled.string, itemgetter(*order)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """A multi-row insert of rows that all have the same keys.

    On SQLite the rows go to the driver as tuples: SQLAlchemy's per-row parameter processing
    costs about as much as SQLite's own work (none of these columns need a bind processor
    there: booleans and floats are stored as they are).
    """
    if not rows:
        return
    prepared = _positional_insert(conn.dialect, table, tuple(rows[0]))
    if prepared is None:
        conn.execute(table.insert(), list(rows))
        return
    sql, values = prepared
    conn.exec_driver_sql(sql, [values(row) for row in rows])
