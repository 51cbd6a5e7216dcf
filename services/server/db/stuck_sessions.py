"""Ends the PostgreSQL sessions of Server processes that stopped in the middle of sending a statement.

PostgreSQL ends a Server's transaction that waits too long for its next statement
(`idle_in_transaction_session_timeout`, db/engine.py), but only between statements. A Server stopped (SIGSTOP, a
paused VM, swapping) while it was sending one, most often in the middle of an `executemany` (psycopg sends its
statements as a pipeline and its end, the Sync, last), leaves a session that has run part of it and waits for the
rest: "active", waiting on `ClientRead`, with no timeout, holding its locks. Holding the farm-wide event lock, it
stalled every other Server's writes with events (the Managers' update batches, every submission) until the
stopped process went on.

Each Server process looks from a connection of its own (its pool may be all waiting behind such a lock) and ends
the sessions of Tablao Servers of its database that have waited on their client for longer than that same timeout
in the middle of a statement: the stopped process, going on, finds its connection gone and answers 503, as it
does when the idle timeout ends its transaction.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from sqlalchemy import URL

from services.server.db.engine import APPLICATION_NAME
from services.server.db.notify import conninfo

log = logging.getLogger(__name__)

WATCHER_NAME = "tablao-server-watch"  # this look's own connection, never in a transaction

# a session in the middle of a statement's messages for longer than the bound: its client went quiet mid-send
_STUCK = """
SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %(name)s AND pid <> pg_backend_pid()
  AND state = 'active' AND wait_event = 'ClientRead' AND xact_start IS NOT NULL
  AND state_change < clock_timestamp() - make_interval(secs => %(after)s)
"""


def application_name(url: URL) -> str:
    """The name the Servers' sessions carry: the database URL's `application_name`, else Tablao's own."""
    named = url.query.get("application_name")
    return named if isinstance(named, str) and named else APPLICATION_NAME


async def end_stuck(conn: psycopg.AsyncConnection[tuple[Any, ...]], name: str, after: float) -> list[int]:
    """End the sessions named `name` stuck mid-statement for more than `after` seconds; their process ids."""
    cur = await conn.execute(_STUCK, {"name": name, "after": after})
    ended = [int(pid) for pid, done in await cur.fetchall() if done]
    for pid in ended:
        log.warning("ended PostgreSQL session %d: a Server stopped in the middle of a statement held its locks for "
                    "over %g s, and the farm's writes waited behind them", pid, after)  # fmt: skip
    return ended


async def watch(url: URL, after: float, *, every: float | None = None, retry_max: float = 5.0) -> None:
    """Look for stuck sessions every `every` seconds (half the bound by default) until cancelled."""
    every = every if every is not None else max(0.5, after / 2)
    name = application_name(url)
    info = conninfo(url.difference_update_query(["application_name"]))
    failures = 0
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(info, autocommit=True, application_name=WATCHER_NAME)
            async with conn:
                failures = 0
                while True:
                    await end_stuck(conn, name, after)
                    await asyncio.sleep(every)
        except psycopg.errors.InsufficientPrivilege as exc:
            # pg_terminate_backend needs the same role as the Servers', or pg_signal_backend
            log.warning("cannot end stuck Server sessions (%s): a Server stopped mid-statement stalls the others "
                        "until it goes on", exc)  # fmt: skip
            return
        except (psycopg.Error, OSError) as exc:
            failures += 1
            if failures == 1:
                log.warning("cannot look for stuck Server sessions (%s); trying again", exc)
            await asyncio.sleep(min(retry_max, 0.1 * 2**failures))
