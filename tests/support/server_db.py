"""A Server's SQLite database made as the Server makes it at its first start, without starting a Server."""

from __future__ import annotations

from pathlib import Path

from services.server.db.engine import SQLITE_NAME, make_engine, sqlite_url
from services.server.db.migrate import upgrade


def server_database(folder: Path) -> Path:
    """The Server's database in `folder` (created 0700, the file 0600, the schema current); returns the file."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / SQLITE_NAME).touch(mode=0o600)
    engine = make_engine(sqlite_url(folder))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return folder / SQLITE_NAME
