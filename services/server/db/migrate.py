"""Applies the Server's Alembic migrations at start-up."""

from __future__ import annotations

import contextlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# pg_advisory_xact_lock key of schema migrations ("tablao" + 1): Servers starting at once migrate one by one
MIGRATION_LOCK = 0x7461626C616F01
# pg_advisory_lock_shared key each serving Server process holds for its life (serving_lock): a start that would
# change the schema sees them, and refuses rather than change it under their feet
SERVING_LOCK = 0x7461626C616F02


class SchemaProblem(RuntimeError):
    """The database's schema cannot be brought to this version's now; the message says why and what to do."""


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
        _check_may_upgrade(conn, ScriptDirectory.from_config(cfg))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _check_may_upgrade(conn: Connection, scripts: ScriptDirectory) -> None:
    """SchemaProblem for a database a newer Tablao made (a revision these scripts do not know: alembic said only
    "Can't locate revision identified by '0016'"), and for one that needs migrating while other Servers serve it
    (the migration ran under them, whose code expects the schema it changes)."""
    current = MigrationContext.configure(conn).get_current_revision()
    head = scripts.get_current_head()
    if current is None or current == head:
        return
    try:
        scripts.get_revision(current)
    except CommandError:
        raise SchemaProblem(
            f"the database was made by a newer version of Tablao (its schema revision {current!r}; this version "
            f"knows up to {head!r}): run that version, or restore the backup made before upgrading"
        ) from None
    if conn.dialect.name != "postgresql":
        return  # SQLite: this process holds the one-Server lock (server_lock.py)
    if conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SERVING_LOCK}).scalar():
        return  # nobody serves it; held to the migration's commit, so none starts serving meanwhile
    serving = conn.execute(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1"
        ),
        {"high": SERVING_LOCK >> 32, "low": SERVING_LOCK & 0xFFFFFFFF},
    ).scalar()
    raise SchemaProblem(
        f"{serving or 'other'} Server process(es) of an older version serve this database (schema revision "
        f"{current!r}; this version migrates it to {head!r}): stop them, then start this version, and the others "
        "only once they are upgraded too (docs/operations.md, Upgrading)"
    )


class ServingLock:
    """SERVING_LOCK held for as long as this Server serves, taken again when its connection was ended (a PostgreSQL
    restart or fail-over, an idle-connection reaper, `pg_terminate_backend`): taken once at the start, it was lost
    for good then, and a newer version's start migrated the schema under this Server (a multi-Server audit)."""

    def __init__(self, engine: Engine, conn: Connection) -> None:
        self.engine = engine
        self.taken = 0  # times the lock was taken
        self._hold(conn)

    def _hold(self, conn: Connection) -> None:
        self.conn, self.taken = conn, self.taken + 1
        # the driver's own connection: one whose server ended it is closed through it (SQLAlchemy's close of an
        # invalidated detached connection left it open, a ResourceWarning at its collection)
        self._driver = conn.connection.driver_connection

    def check(self) -> bool:
        """Whether the lock is held (its connection answers, or a new one took it again). A database out of reach
        raises, as any query does; False when a newer version's migration holds the lock now (said by the caller)."""
        if not self.conn.closed:
            try:
                self.conn.execute(text("SELECT 1"))
                self.conn.commit()
                return True
            except DBAPIError:
                self.close()
        conn = self.engine.connect()
        conn.detach()
        took = bool(conn.execute(text("SELECT pg_try_advisory_lock_shared(:key)"), {"key": SERVING_LOCK}).scalar())
        conn.commit()
        if not took:
            conn.close()
            return False
        self._hold(conn)
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        with contextlib.suppress(Exception):
            self._driver.close()  # type: ignore[union-attr]


def serving_lock(engine: Engine) -> Connection | None:
    """On PostgreSQL, a connection of its own holding SERVING_LOCK shared for as long as it stays open: the sign
    of a Server process serving the database that a newer version's start looks for (None on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    conn = engine.connect()
    conn.detach()  # closed for good when closed, its lock with it, rather than kept in the pool holding it
    conn.execute(text("SELECT pg_advisory_lock_shared(:key)"), {"key": SERVING_LOCK})
    conn.commit()  # a session-level lock outlives the transaction; an idle one is not ended by the hang timeout
    return conn
