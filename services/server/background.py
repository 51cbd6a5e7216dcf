"""Periodic housekeeping of the Server: pruning old events, expiring leases (registered by the link)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from services.server import events
from services.server.config import ServerConfig
from services.server.store.silent import offline_workers_of_silent_managers

log = logging.getLogger(__name__)

Sweep = Callable[[Session, ServerConfig], None]


def prune_events(session: Session, cfg: ServerConfig) -> None:
    events.prune(session, cfg.event_retention_seconds)


# Each sweep runs in its own write transaction, committed after it returns.
SWEEPS: list[Sweep] = [prune_events, offline_workers_of_silent_managers]


def run_sweeps_once(write_sessions: sessionmaker[Session], cfg: ServerConfig) -> None:
    for sweep in SWEEPS:
        try:
            with write_sessions() as session:
                sweep(session, cfg)
                session.commit()
        except Exception:
            log.exception("sweep %s failed", getattr(sweep, "__name__", sweep))


async def sweep_forever(write_sessions: sessionmaker[Session], cfg: ServerConfig) -> None:
    while True:
        await run_in_threadpool(run_sweeps_once, write_sessions, cfg)
        await asyncio.sleep(cfg.sweep_interval)
