"""Database failures in plain words: a full disk, a damaged file, a database that cannot be reached or is too
busy to take a write."""

from __future__ import annotations

import errno
import re
import sqlite3

from sqlalchemy.exc import SQLAlchemyError

_FULL = re.compile(r"disk is full|no space left|could not extend file|disk full|quota exceeded", re.IGNORECASE)
_DAMAGED = re.compile(r"not a database|malformed|disk image|corrupt|file is encrypted", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"connection refused|could not connect|connection failed|timeout expired|name or service not known|"
    r"no such host|unable to open database file|server closed the connection|consuming input failed|"
    r"terminating connection|the connection is (?:closed|lost)",
    re.IGNORECASE,
)
# PostgreSQL's connection exceptions (class 08), and its backend ended under a request (an administrator's
# pg_terminate_backend, a shutdown or crash of the server, or one starting up; this process's own transaction left
# waiting past its idle timeout, db/engine.py): the database is out of reach for now, as when it refuses
# connections, and the request may be tried again
_UNREACHABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "25P03"})
# SQLite's busy timeout, or the wait for this process's writer turn (db/engine.py), ran out behind another write
_BUSY = re.compile(r"database is locked|database table is locked", re.IGNORECASE)
# PostgreSQL gave the transaction up for another's sake (a deadlock between a claim, which locks tasks then their
# job, and a pause, which locks the job then its tasks; a serialization failure): it is to be tried again
_TRY_AGAIN_SQLSTATES = frozenset({"40P01", "40001"})


def _driver_errors() -> tuple[type[Exception], ...]:
    found: list[type[Exception]] = [SQLAlchemyError, OSError, sqlite3.Error]
    try:  # PostgreSQL's driver, for the raw cursor the bulk task insert uses
        import psycopg

        found.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(found)


# what a database call may raise: SQLAlchemy's wrappers, or a driver's own errors from a raw cursor
DATABASE_ERRORS = _driver_errors()


def _root(exc: BaseException) -> BaseException:
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def kind(exc: BaseException) -> str | None:
    """`full`, `damaged`, `unreachable`, `busy` (another write held it too long, or PostgreSQL gave this one up
    for another's sake), or None when the error is none of these."""
    root = _root(exc)
    if isinstance(root, OSError) and root.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    if not isinstance(exc, DATABASE_ERRORS):
        return None
    text = str(root)
    sqlstate = getattr(root, "sqlstate", None) or ""
    if _BUSY.search(text) or sqlstate in _TRY_AGAIN_SQLSTATES:
        return "busy"
    if sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES or getattr(exc, "connection_invalidated", 0):
        return "unreachable"
    for name, pattern in (("full", _FULL), ("damaged", _DAMAGED), ("unreachable", _UNREACHABLE)):
        if pattern.search(text):
            return name
    return None


def describe(exc: BaseException, where: str, *, detail: bool = True) -> str | None:
    """One line saying what is wrong with the database at `where` and what to do, or None if unknown; without
    `detail`, not the driver's words (they may name the database's host, port and role: an API client's answer)."""
    found = kind(exc)
    first = str(_root(exc)).strip().splitlines()[0] if str(_root(exc)).strip() else type(exc).__name__
    said = f" ({first})" if detail else ""
    if found == "full":
        return f"the disk holding the database {where} is full{said}: free some space; nothing was lost"
    if found == "damaged":
        return f"the database {where} is damaged{said}: restore it from a backup"
    if found == "busy":
        return f"storage busy: the database {where} took no write in time{said}; try again in a moment"
    if found == "unreachable":
        return f"cannot reach the database {where}{said}"
    return None


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
