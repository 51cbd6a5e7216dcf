"""Applies the Server's Alembic migrations at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

# pg_advisory_xact_lock key of schema migrations ("tablao" + 1): Servers starting at once migrate one by one
MIGRATION_LOCK = 0x7461626C616F01

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def take_first_start_turn(conn: Connection | Session) -> None:
    """On PostgreSQL, wait for the other Servers starting at this moment (released when the transaction ends)."""
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    if dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest revision (or to `revision`, for tests of a migration), sharing the engine's
    connection."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        # Several Servers started at the same moment on an empty database would each create the tables; the
        # lock makes them take turns, and the later ones find the schema current. It is released with this
        # transaction, which also holds the migration (PostgreSQL's DDL is transactional).
        take_first_start_turn(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
