"""The Alembic migrations build exactly the schema the tables describe, on SQLite and PostgreSQL.

A table or column added to db/tables.py without a migration (or a migration that differs from it) fails here,
not on a studio's database at its next upgrade.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from services.server.db.migrate import upgrade
from services.server.db.tables import Base


def test_migrations_match_the_tables(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
