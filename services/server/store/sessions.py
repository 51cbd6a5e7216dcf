"""Opens the Server's store on an engine: session factories carrying the store's commit hooks.

The hooks act only on sessions of these factories, so two Servers in one process (tests, the desktop app's
embedded farm) and plain sessions of other code never see each other's hooks.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.server.db.engine import make_sessionmakers
from services.server.store import events, tasks


def open_sessions(
    engine: Engine, notifier: events.EventNotifier | None = None
) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(readers, writers) of `engine`; commits with events wake `notifier`'s readers (when given)."""
    read_sessions, write_sessions = make_sessionmakers(engine)
    for sessions in (read_sessions, write_sessions):
        # dependency shifts first: they are statements of the transaction the events then describe
        tasks.install(sessions)
        events.install(sessions, notifier)
    return read_sessions, write_sessions
