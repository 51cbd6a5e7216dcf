"""Periodic housekeeping of the Server: each sweep runs in a write transaction of its own, one after another.

A sweep with work in batches (`repeat_for`) says whether there is more by returning True; it runs again, each
step in a transaction of its own with a short pause between, for up to that many seconds a round.

The app factory (app.py) decides which sweeps run; nothing registers itself here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[Session], object]
    repeat_for: float = 0.0  # seconds a round may spend repeating a sweep whose step returned True


BATCH_PAUSE = 0.01  # between two steps of a repeated sweep, so other writers get their turn


def run_sweeps_once(write_sessions: sessionmaker[Session], sweeps: Sequence[Sweep]) -> None:
    for sweep in sweeps:
        until = time.monotonic() + sweep.repeat_for
        try:
            while True:
                with write_sessions() as session:
                    more = sweep.run(session)
                    session.commit()
                if not (sweep.repeat_for and more is True and time.monotonic() < until):
                    break
                time.sleep(BATCH_PAUSE)
        except Exception:
            log.exception("sweep %r failed", sweep.name)


async def sweep_forever(write_sessions: sessionmaker[Session], sweeps: Sequence[Sweep], interval: float) -> None:
    while True:
        await run_in_threadpool(run_sweeps_once, write_sessions, sweeps)
        await asyncio.sleep(interval)
