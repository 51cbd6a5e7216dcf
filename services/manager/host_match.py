"""OpenJD host requirements at the Manager: which workers meet a task's step, and saying so when none does.

A task's requirements are read once, when it arrives (`HeldTask.requirements`); a task without any costs the
scheduler one attribute test. Workers' capabilities come with their sign-on and are kept in the Manager's
database, so a restarted Manager still knows them. A task that no worker of this Manager meets waits with an
activity that says why, and does not count against the claim's prefetch (so it cannot starve other jobs).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from services.manager.model import HeldTask, WorkerState
from services.protocol.host_requirements import OS_FAMILY, HostCapabilities, Offer, describe, offer, unmet

SCHEMA = "CREATE TABLE IF NOT EXISTS worker_capabilities (worker_id TEXT PRIMARY KEY, body TEXT NOT NULL);"


def capabilities_of(worker: WorkerState) -> HostCapabilities:
    """What the worker reported, or (an older worker) only the OS family its platform gives."""
    if worker.capabilities is not None:
        return worker.capabilities
    return HostCapabilities(attributes={OS_FAMILY: [worker.platform]})


_offers: dict[str, tuple[HostCapabilities | None, str, Offer]] = {}  # worker id -> (its capabilities, platform, offer)


def _offer(worker: WorkerState) -> Offer:
    """The worker's capabilities made ready for matching, remade only when it signs on with others."""
    cached = _offers.get(worker.id)
    if cached is None or cached[0] is not worker.capabilities or cached[1] != worker.platform:
        cached = (worker.capabilities, worker.platform, offer(capabilities_of(worker)))
        _offers[worker.id] = cached
    return cached[2]


def meets(task: HeldTask, worker: WorkerState) -> bool:
    return task.requirements is None or unmet(task.requirements, _offer(worker)) is None


def why_none(task: HeldTask, workers: Iterable[WorkerState]) -> str | None:
    """None when a worker of this Manager meets the task's requirements; else a sentence saying why not."""
    if task.requirements is None:
        return None
    c = task.claim
    reasons = []
    for w in workers:
        if c.type not in w.task_types or not w.tags.issuperset(c.job_tags):
            continue
        reason = unmet(task.requirements, _offer(w))
        if reason is None:
            return None
        reasons.append(f"{w.name}: {reason}")
    found = "; ".join(reasons[:3]) + (f"; {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return f"waiting for a worker that meets its host requirements ({describe(task.requirements)}): " + (
        found if found else f"no {c.type} worker here"
    )


def save(conn: sqlite3.Connection, worker: WorkerState) -> None:
    if worker.capabilities is None:
        conn.execute("DELETE FROM worker_capabilities WHERE worker_id = ?", (worker.id,))
        return
    conn.execute(
        "INSERT INTO worker_capabilities (worker_id, body) VALUES (?, ?)"
        " ON CONFLICT(worker_id) DO UPDATE SET body = excluded.body",
        (worker.id, worker.capabilities.model_dump_json()),
    )


def load_into(conn: sqlite3.Connection, workers: dict[str, WorkerState]) -> None:
    for worker_id, body in conn.execute("SELECT worker_id, body FROM worker_capabilities"):
        if (w := workers.get(worker_id)) is not None:
            w.capabilities = HostCapabilities.model_validate(json.loads(body))
