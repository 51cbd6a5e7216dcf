"""Periodic housekeeping of the Server: each sweep runs in a write transaction of its own, one after another.

The app factory (app.py) decides which sweeps run; nothing registers itself here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    name: str
    run: Callable[[Session], object]


def run_sweeps_once(write_sessions: sessionmaker[Session], sweeps: Sequence[Sweep]) -> None:
    for sweep in sweeps:
        try:
            with write_sessions() as session:
                sweep.run(session)
                session.commit()
        except Exception:
            log.exception("sweep %r failed", sweep.name)


async def sweep_forever(write_sessions: sessionmaker[Session], sweeps: Sequence[Sweep], interval: float) -> None:
    while True:
        await run_in_threadpool(run_sweeps_once, write_sessions, sweeps)
        await asyncio.sleep(interval)
