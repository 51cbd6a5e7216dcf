"""Two Server transactions racing on PostgreSQL, where a read before a write does not serialise writers (SQLite's
write sessions take the database's write lock first): the one begun second runs while the first is open."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from tests.support.databases import database_url


@contextmanager
def postgres_writers(folder: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions of a fresh PostgreSQL database with the Server's schema (skips the test without PostgreSQL)."""
    with database_url("postgres", folder) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield sessionmaker(engine)
        engine.dispose()


def race(writers: sessionmaker[Session], change: Callable[[Session, str], object], first: str, second: str) -> object:
    """`change(session, first)` is made and not yet committed when `change(session, second)` begins in another
    transaction, which must then wait for the first (a lock or a unique index); what did the second get once the
    first committed: "done", or the exception it raised?"""
    outcome: list[object] = []

    def later() -> None:
        with writers() as s:
            try:
                change(s, second)
                s.commit()
                outcome.append("done")
            except Exception as exc:  # the outcome is what the test looks at
                outcome.append(exc)

    with writers() as s:
        change(s, first)
        thread = threading.Thread(target=later)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), f"the second transaction did not wait for the first: {outcome}"
        s.commit()
    thread.join(10)
    return outcome[0]
