"""Periodic housekeeping of the Server: each sweep runs in a write transaction of its own, one after another.

A sweep with work in batches (`repeat_for`) says whether there is more by returning True; it runs again, each
step in a transaction of its own with a short pause between, for up to that many seconds a round.

The app factory (app.py) decides which sweeps run; nothing registers itself here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from services.protocol.trouble_log import TroubleLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[Session], object]
    repeat_for: float = 0.0  # seconds a round may spend repeating a sweep whose step returned True


class Awake:
    """Since when this process has been serving without a stall: its start, or the end of the last time it was
    stopped (SIGSTOP, a paused VM, a suspended host) or blocked for longer than `stall_after` seconds.

    Leases expire on the database's wall-clock times, which ran on while the process did not: without this, a
    Server resumed after more than a lease period expired every lease at its first sweep, before the Managers'
    waiting batches (which renew them and report finished tasks) were applied, and finished work ran again.
    `tick` comes before each round of sweeps; both clocks count (the monotonic clock stands still while a host
    sleeps).

    A database that refused writes (a full disk, out of reach) is such a time too: the Managers' batches were
    refused with it, so their leases were not renewed, and the first sweep after the disk had room again expired
    them before the Managers' next try, a few seconds later; finished work ran again. Each refusal
    (`storage_refused`, from a sweep or a request) starts the grace again."""

    def __init__(self, stall_after: float, write_waited: Callable[[Session], float] = lambda _s: 0.0) -> None:
        self.stall_after = stall_after
        self.write_waited = write_waited  # seconds a session's write waited to begin (db/engine.write_waited)
        self.since = time.monotonic()
        self._mono, self._wall = self.since, time.time()
        self._refusals = TroubleLog()

    def storage_refused(self) -> None:
        if self._refusals.due():  # not at every refused request
            log.warning("the database refused a write: Managers get one lease period to renew their leases after it "
                        "takes writes again")  # fmt: skip
        self.since = time.monotonic()

    def waited(self, seconds: float) -> None:
        """A sweep's write waited this long to begin: the Managers' batches waited with it (a lock another process
        held on the database), so their leases were not renewed meanwhile. A wait past `stall_after` starts the
        grace again, as a stall does: before, the sweep that got the lock first expired them all."""
        if seconds <= self.stall_after:
            return
        if self._refusals.due():
            log.warning("a write waited %.0f s for the database: Managers get one lease period to renew their "
                        "leases", seconds)  # fmt: skip
        self.since = time.monotonic()

    def rested(self) -> None:
        """A round of sweeps ended: the next tick measures the wait from here (a slow round is no stall)."""
        self._mono, self._wall = time.monotonic(), time.time()

    def tick(self) -> None:
        mono, wall = time.monotonic(), time.time()
        gap = max(mono - self._mono, wall - self._wall)
        self._mono, self._wall = mono, wall
        if gap > self.stall_after:
            log.warning(
                "this Server process did not run for %.0f s (stopped, suspended or blocked): Managers get one lease "
                "period to renew their leases, as after a start", gap,
            )  # fmt: skip
            self.since = mono


BATCH_PAUSE = 0.01  # between two steps of a repeated sweep, so other writers get their turn


# an error -> one line saying what is wrong with the storage, or None when it is not the storage's (app.py's)
Describe = Callable[[BaseException], str | None]


def run_sweeps_once(
    write_sessions: sessionmaker[Session],
    sweeps: Sequence[Sweep],
    describe: Describe = lambda _exc: None,
    awake: Awake | None = None,
) -> None:
    for sweep in sweeps:
        until = time.monotonic() + sweep.repeat_for
        try:
            while True:
                with write_sessions() as session:
                    if awake is not None:  # before the sweep: the lease expiry, of this round or a later one
                        awake.waited(awake.write_waited(session))
                    more = sweep.run(session)
                    session.commit()
                if not (sweep.repeat_for and more is True and time.monotonic() < until):
                    break
                time.sleep(BATCH_PAUSE)
        except Exception as exc:
            if _sweep_failed(sweep.name, exc, describe) and awake is not None:
                awake.storage_refused()


_storage_said: defaultdict[str, TroubleLog] = defaultdict(TroubleLog)  # by sweep: what was said of its storage


def _sweep_failed(name: str, exc: Exception, describe: Describe) -> bool:
    """A traceback for a bug; for the storage's trouble (a full disk, a database out of reach) the one line the
    requests give, again when it changes or a minute later: the sweep runs again every few seconds meanwhile.
    True when it was the storage's."""
    message = describe(exc)
    if message is None:
        log.exception("sweep %r failed", name)
        return False
    if _storage_said[name].due(message):
        log.error("sweep %r waits: %s", name, message)
    return True


async def sweep_forever(
    write_sessions: sessionmaker[Session],
    sweeps: Sequence[Sweep],
    interval: float,
    awake: Awake | None = None,
    describe: Describe = lambda _exc: None,
) -> None:
    while True:
        if awake is not None:
            awake.tick()  # before the round, so a stall just ended gives its grace to this round's sweeps
        await run_in_threadpool(run_sweeps_once, write_sessions, sweeps, describe, awake)
        if awake is not None:
            awake.rested()
        await asyncio.sleep(interval)
