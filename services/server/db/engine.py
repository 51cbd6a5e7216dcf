"""Creates the Server's database engine: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_NAME = "tablao-server.sqlite"
APPLICATION_NAME = "tablao-server"  # PostgreSQL: the Servers' sessions, unless the URL names another
BEGIN_WAITED = "tablao_begin_waited"  # conn.info: seconds a write transaction waited for its turn and SQLite's lock


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / SQLITE_NAME}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, hung_after: float | None = None) -> Engine:
    """`hung_after`: on PostgreSQL, seconds a transaction of this process may wait for its next statement before
    the database ends its session. A Server stopped in the middle of one (SIGSTOP, a paused VM, swapping) held its
    row locks, and every other Server of the farm waited on them for as long (a Manager moved on to another
    Server, which stalled too). One stopped in the middle of a statement is ended by db/stuck_sessions.py."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        writers = _WriterTurn()
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        return engine
    connect_args: dict[str, Any] = {}
    if "application_name" not in make_url(url).query:  # how db/stuck_sessions.py tells the Servers' sessions
        connect_args["application_name"] = APPLICATION_NAME
    if hung_after is not None:
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={round(hung_after * 1000)}"
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener issue BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # keep the WAL from growing without bound under constant writes (a Flamenco 3.8 complaint)
    cur.execute("PRAGMA journal_size_limit=67108864")
    cur.close()
    # Unicode lower case for searches (store/jobs.py): SQLite's own lower() and LIKE fold ASCII only, so `émile`
    # found `Émile-shot` on PostgreSQL and not here
    dbapi_conn.create_function(UNICODE_LOWER, 1, _lower, deterministic=True)


UNICODE_LOWER = "tablao_lower"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class _WriterTurn:
    """Writers of this process take turns on a lock before SQLite's own write lock.

    SQLite's busy handler polls in sleeps of up to 100 ms, so two writers of one process that meet at the lock
    wait far longer than the transaction they wait for; a thread lock wakes the next writer at once. The turn
    passes when SQLAlchemy is about to commit, so the next writer meets SQLite's lock at most for the commit
    itself (its busy handler's first sleep is 1 ms). Other processes (an admin command) still meet the busy
    timeout.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout

    def begin(self, conn: Any) -> None:
        # Writers take SQLite's write lock at BEGIN, so two writers never deadlock upgrading a read lock;
        # readers begin deferred and, in WAL mode, never wait for a writer.
        if not conn.get_execution_options().get("tablao_write", False):
            conn.exec_driver_sql("BEGIN")
            return
        asked = time.monotonic()
        if not self._lock.acquire(timeout=self._timeout):
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked (writer turn timed out)"))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        conn.info["tablao_writer_turn"] = True
        conn.info[BEGIN_WAITED] = time.monotonic() - asked

    def end(self, conn: Any) -> None:
        if conn.info.pop("tablao_writer_turn", False):
            self._lock.release()


def write_waited(session: Session) -> float:
    """Seconds the session's write transaction waited to begin (SQLite: another process held the database's
    write lock, or this one's writers were slow); 0 on PostgreSQL, whose writers do not wait to begin."""
    waited = session.connection().info.get(BEGIN_WAITED, 0.0)
    return float(waited)


def make_sessionmakers(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(readers, writers): sessions of the second kind begin with SQLite's write lock held."""
    read = sessionmaker(engine, expire_on_commit=False)
    write = sessionmaker(engine.execution_options(tablao_write=True), expire_on_commit=False)
    return read, write
