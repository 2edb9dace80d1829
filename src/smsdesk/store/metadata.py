"""The SQLAlchemy `MetaData` every table of the schema is declared on."""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
