"""Commit notices between the Server processes of one PostgreSQL database (LISTEN/NOTIFY).

A transaction that wrote events also sends a notice, in the same transaction: PostgreSQL delivers it only if
and when that transaction commits. Every Server process listens on one connection of its own and, on a notice
from another process, wakes its event-stream readers and its waiting claims, which then read the database.
The commit stays the only source of truth: a notice says "look again", never what changed, so a lost notice
costs a delay (the next one, or the reader's own timeout), never a wrong answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable

import psycopg
from sqlalchemy import URL, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "tablao_commits"
# this process's notices wake its readers directly, at commit: its listener skips them
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def send(session: Session) -> None:
    """Notify the other Server processes when the session's transaction commits (PostgreSQL only)."""
    session.execute(text("SELECT pg_notify(:channel, :sender)"), {"channel": CHANNEL, "sender": PROCESS_ID})


def conninfo(url: URL) -> str:
    """The psycopg connection string of a SQLAlchemy PostgreSQL URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: URL, on_notice: Callable[[], None], *, retry_max: float = 5.0) -> None:
    """Call `on_notice` for every commit notice of another process, until cancelled; reconnects on errors.

    After each (re)connection `on_notice` is called once: commits made while nobody listened are looked at.
    """
    failures = 0
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                if failures:
                    log.info("listening for other Servers' commits again")
                failures = 0
                on_notice()
                async for notice in conn.notifies():
                    if notice.payload != PROCESS_ID:
                        on_notice()
        except (psycopg.Error, OSError) as exc:
            failures += 1
            if failures == 1:
                log.warning("lost the notices of other Servers' commits (%s); reconnecting", exc)
            await asyncio.sleep(min(retry_max, 0.1 * 2**failures))
