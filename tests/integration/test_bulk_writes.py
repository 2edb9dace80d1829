"""Multi-row writes at the driver's speed store the same values as SQLAlchemy would."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import bindparam
from sqlalchemy.engine import Engine

from smsdesk.store.bulk import execute_rows, insert_rows

metadata = sa.MetaData()
things = sa.Table(
    "bulk_things",
    metadata,
    sa.Column("id", sa.String(10), primary_key=True),
    sa.Column("name", sa.String(20)),
    sa.Column("score", sa.Double),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
    sa.Column("note", sa.Text),
)

RENAME = (
    things.update()
    .where(things.c.id == bindparam("key"))
    .values(
        name=bindparam("new_name"),
        score=bindparam("new_score"),
        note=sa.null(),
    )
)
KEEP_SCORE = (
    things.update()
    .where(things.c.id == bindparam("key"))
    .values(score=sa.func.coalesce(things.c.score, bindparam("fallback", type_=sa.Double)))
)
# A parameter with a value of its own cannot come from the rows: SQLAlchemy runs it.
MARK_DONE = things.update().where(things.c.id == bindparam("key")).values(done=True)


def _table(engine: Engine) -> None:
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        insert_rows(
            conn,
            things,
            [
                {"id": "a", "name": "first", "score": 1.5, "done": False, "note": "x"},
                {"id": "b", "name": "second", "score": None, "done": False, "note": "y"},
                {"id": "c", "name": "third", "score": 3.0, "done": False, "note": "z"},
            ],
        )


def _rows(engine: Engine) -> dict[str, tuple[object, ...]]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(things).order_by(things.c.id)).all()
    return {row.id: (row.name, row.score, row.done, row.note) for row in found}


def test_rows_update_each_named_row_with_their_own_values(engine: Engine) -> None:
    _table(engine)
    with engine.begin() as conn:
        # An int for a float column is stored as a float, as SQLAlchemy would store it.
        execute_rows(
            conn,
            RENAME,
            [
                {"key": "a", "new_name": "one", "new_score": 10},
                {"key": "c", "new_name": "three", "new_score": None},
            ],
        )
        execute_rows(conn, KEEP_SCORE, [{"key": "a", "fallback": 7.0}, {"key": "b", "fallback": 2}])
        execute_rows(conn, MARK_DONE, [{"key": "b"}])
        execute_rows(conn, RENAME, [])
    rows = _rows(engine)
    assert rows == {
        "a": ("one", 10.0, False, None),
        "b": ("second", 2.0, True, "y"),
        "c": ("three", None, False, None),
    }
    assert isinstance(rows["a"][1], float)


def test_a_row_without_a_parameter_changes_nothing(engine: Engine) -> None:
    _table(engine)
    before = _rows(engine)
    try:
        with engine.begin() as conn:
            execute_rows(conn, RENAME, [{"key": "a", "new_name": "one"}])
    except (KeyError, sa.exc.StatementError):
        pass
    else:
        raise AssertionError("a row missing a parameter was accepted")
    assert _rows(engine) == before
