"""Whether the database answers: what /healthz reports to load balancers and monitoring."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def check_database(engine: Engine) -> None:
    """Run a trivial query; raises whatever the driver raises when the database is unreachable."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
