"""The full logs of tasks that left this Manager long ago are deleted (TABLAO_TASK_LOG_DAYS, 30 days by default).

Nothing else removed them: a run is capped (log_cap.py) and a task keeps its last 3 hand-outs, but the logs of
tasks long gone stayed for ever, and a busy Manager's disk filled over weeks (100,000 tasks a week with 100 KB
logs: 10 GB a week). A task held here keeps its log whatever its age; one that left keeps it until its newest line
is that old (as the marks tell it: store/old_logs.py). The store is SQLite, shared with the workers' requests, so
the deleting goes in short transactions on the event loop, with a pause between them for the requests.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable

from services.manager.store import old_logs
from services.manager.store.db import transaction
from services.manager.store_health import STORE_ERRORS, StoreHealth

log = logging.getLogger(__name__)

MARK_EVERY = 600.0  # seconds between marks, and between passes: a log's age is known to within this
SCAN = 500  # chunks looked at in one transaction (their ids and tasks, read by the primary key)
BUDGET = 200  # chunks deleted in one transaction at most
TIME_LIMIT = 0.005  # seconds of deleting in one transaction, past which it ends (after the chunk it was deleting)
PAUSE = 0.05  # seconds between the transactions of a pass: worker requests go in between
CLOCK_JUMP = 300.0  # seconds the wall clock may move apart from the monotonic one between passes (NTP slews less)


class LogRetention:
    def __init__(self, conn: Callable[[], sqlite3.Connection], days: int) -> None:
        self._conn = conn  # the core's, read at each use
        self.days = days
        self._up_to: int | None = None  # during a pass: the newest chunk id `days` ago
        self._after = 0  # during a pass: the chunk id it has looked at up to
        self._tasks = 0  # during a pass: tasks whose logs it deleted
        self._clocks: tuple[float, float] | None = None  # (wall, monotonic) at the last pass's start

    def step(self, now: float, mono: float | None = None) -> bool:
        """One short transaction of a pass (the first notes a mark); True while the pass has more to look at.
        `now`: the wall clock; `mono`: the monotonic one (default: time.monotonic())."""
        conn = self._conn()
        mono = time.monotonic() if mono is None else mono
        with transaction(conn):
            if self._up_to is None:
                if self._clocks is not None:
                    # the wall clock jumped (a restored VM, a bad time source): the marks move with it, or a jump
                    # a year ahead took every log for a year old; within this process the monotonic clock says
                    jump = (now - self._clocks[0]) - (mono - self._clocks[1])
                    if abs(jump) > CLOCK_JUMP:
                        old_logs.shift_marks(conn, jump)
                        log.warning("the clock jumped %+.0f s: the ages of task logs are kept as they were", jump)
                self._clocks = (now, mono)
                old_logs.mark(conn, now, MARK_EVERY)
                self._up_to = old_logs.newest_chunk_at(conn, now - self.days * 86400)
                if self._up_to is None:
                    return False  # no mark is that old yet (a new store, or one kept before marks were)
            deadline = time.monotonic() + TIME_LIMIT
            after, tasks = old_logs.delete_old(
                conn, self._up_to, self._after, scan=SCAN, budget=BUDGET, deadline=deadline
            )
        self._tasks += tasks
        if after is not None:
            self._after = after
            return True
        if self._tasks:
            log.info("deleted the logs of %d tasks that left this Manager over %g days ago", self._tasks, self.days)
        self._up_to, self._after, self._tasks = None, 0, 0
        return False


async def run(conn: Callable[[], sqlite3.Connection], days: int, store: StoreHealth) -> None:
    """A pass every MARK_EVERY seconds, for ever."""
    retention = LogRetention(conn, days)
    while True:
        try:
            more = retention.step(time.time())
        except STORE_ERRORS as exc:
            store.failed(exc, "old task logs are deleted later")
            more = False
        await asyncio.sleep(PAUSE if more else MARK_EVERY)
