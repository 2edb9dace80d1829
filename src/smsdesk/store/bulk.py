"""Multi-row writes at the driver's speed: the accept path stores thousands of rows a second,
and the dispatcher updates as many.

On SQLite the rows go to the driver as tuples: SQLAlchemy's per-row parameter processing
costs about as much as SQLite's own work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


Positional = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]


@lru_cache(maxsize=32)
def positional_statement(dialect: Dialect, statement: sa.UpdateBase) -> Positional | None:
    """The SQL of a statement whose every parameter is a row key, and a function putting a
    row's values in its order (through the bind processors some types have, such as a float
    column's); None unless the driver takes positional parameters (SQLite) and no parameter
    has a value of its own."""
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup or []
    binds = compiled.binds
    if (
        not compiled.positional
        or len(order) < 2
        or any(binds[name].value is not None or binds[name].callable for name in order)
    ):
        return None
    getter = itemgetter(*order)
    processors = compiled._bind_processors
    converted: list[tuple[int, Callable[[Any], Any]]] = []
    for i, name in enumerate(order):
        process = processors.get(name)
        if process is None:
            continue
        if not callable(process):  # an expanding parameter's processors: not a row value
            return None
        converted.append((i, process))
    if not converted:
        return compiled.string, getter

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        found = list(getter(row))
        for i, process in converted:
            if found[i] is not None:
                found[i] = process(found[i])
        return tuple(found)

    return compiled.string, values


def execute_rows(
    conn: Connection, statement: sa.UpdateBase, rows: Sequence[dict[str, Any]]
) -> None:
    """Run a statement once per row (an executemany), each row naming every parameter.

    `statement` should be built once (a module constant), so its SQL is compiled once. On
    SQLite the rows go to the driver as tuples, saving SQLAlchemy's per-row parameter work
    (about as much as SQLite's own work for an UPDATE by primary key).
    """
    if not rows:
        return
    prepared = positional_statement(conn.dialect, statement)
    if prepared is None:
        conn.execute(statement, list(rows))
        return
    sql, values = prepared
    conn.exec_driver_sql(sql, [values(row) for row in rows])


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


@lru_cache(maxsize=32)
def _tuple_insert(
    dialect: Dialect, table: sa.Table, keys: tuple[str, ...]
) -> tuple[str, itemgetter[Any] | None] | None:
    """The INSERT for tuples of `keys` and a getter putting a tuple's values in the statement's
    order (None when it is the tuples' own order); None unless the driver takes positional
    parameters and the statement binds exactly these keys."""
    prepared = _positional_insert(dialect, table, keys)
    if prepared is None:
        return None
    sql, by_name = prepared
    order = by_name(dict(zip(keys, range(len(keys)), strict=True)))
    if list(order) == list(range(len(keys))):
        return sql, None
    return sql, itemgetter(*order)


def insert_tuples(
    conn: Connection, table: sa.Table, keys: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """A multi-row insert of tuples holding the values of `keys`, in that order.

    On SQLite the tuples go to the driver without a dictionary per row (a timeline line is
    written several times for every message).
    """
    if not rows:
        return
    prepared = _tuple_insert(conn.dialect, table, keys)
    if prepared is None:
        conn.execute(table.insert(), [dict(zip(keys, row, strict=True)) for row in rows])
        return
    sql, reorder = prepared
    conn.exec_driver_sql(sql, list(rows) if reorder is None else [reorder(row) for row in rows])
