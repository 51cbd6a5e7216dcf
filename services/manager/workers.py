"""The workers a Manager serves: registration, authentication, their records, and what the Server hears of them.

Records live in memory and are written through to SQLite (store/tasks.py) in the caller's transaction. What a
worker's change does to tasks (sign-off, time-out, a worker waking up) is the core's business (core.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from services.manager import host_match, worker_controls
from services.manager.config import ManagerConfig
from services.manager.errors import Conflict, Superseded, Unauthorized
from services.manager.model import WorkerState
from services.manager.run_watch import RunWatch
from services.manager.store import tasks as store
from services.manager.store.db import transaction
from services.protocol.link import WorkerInstruction, WorkerReport, WorkerTags
from services.protocol.states import Unavailability, WorkerStatus
from services.protocol.worker_api import INSTANCE_HEADER

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60.0  # a worker signed on from another process: at most one warning line a minute


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _superseded(worker: WorkerState) -> Superseded:
    since = worker.instance_since.strftime("%Y-%m-%d %H:%M:%S UTC") if worker.instance_since else "since"
    peer = f" from {worker.instance_peer}" if worker.instance_peer else ""
    return Superseded(
        f"another process signed on as worker {worker.name!r} ({worker.id}){peer} at {since}; this one must "
        "stop. Two machines cannot share one worker's identity: on a machine copied from another with its "
        "worker's data folder, delete worker.json there (or the tray's keyring entry) so it registers anew",
        INSTANCE_HEADER.lower(),
    )


def _report(w: WorkerState) -> WorkerReport:
    return WorkerReport(
        id=w.id, name=w.name, platform=w.platform, task_types=sorted(w.task_types), tags=sorted(w.tags),
        software=w.software, status=w.status, current_task_id=w.current_task_id, next_task_id=w.next_task_id,
        last_seen=w.last_seen_wall, utilisation=w.utilisation, capabilities=w.capabilities,
        unavailable=w.unavailable or (Unavailability.ASLEEP if w.status == WorkerStatus.ASLEEP else None),
        status_requested=w.status_requested, request_id=w.request_id,
    )  # fmt: skip


class WorkerRegistry:
    def __init__(
        self, conn: sqlite3.Connection, config: ManagerConfig, on_change: Callable[[], None] | None = None
    ) -> None:
        self.conn = conn
        self.config = config
        self._on_change = on_change  # told of every change of a worker
        self.run_watch = RunWatch()  # a running task's long-polled may-i-run looks again at each change
        self._workers: dict[str, WorkerState] = {w.id: w for w in store.load_workers(conn)}
        host_match.load_into(conn, self._workers)
        worker_controls.load(conn, self._workers)
        self._load_instances()
        # workers whose report the Server has not had yet (all of them after a start)
        self.dirty: set[str] = set(self._workers)
        # a worker came or went (signed on or off): its report goes at once, not with the next few seconds' (a
        # wrangler who starts a worker looks for it in the app)
        self.news = False
        self.awake_since = 0.0  # monotonic: the end of this process's last stall (server_link.ServerLink._sweep)

    def __getitem__(self, worker_id: str) -> WorkerState:
        return self._workers[worker_id]

    def __iter__(self) -> Iterator[WorkerState]:
        return iter(self._workers.values())

    def __len__(self) -> int:
        return len(self._workers)

    def get(self, worker_id: str | None) -> WorkerState | None:
        return self._workers.get(worker_id) if worker_id is not None else None

    def available(self) -> list[WorkerState]:
        return [w for w in self._workers.values() if w.available]

    def register(self, registration_secret: str, expected: str, name: str, platform: str) -> tuple[str, str]:
        if not hmac.compare_digest(registration_secret.encode(), expected.encode()):
            raise Unauthorized("wrong registration_secret", "registration_secret")
        limit = self.config.max_workers
        if limit is not None and len(self._workers) >= limit:
            raise Conflict(
                f"this Manager has {len(self._workers)} workers registered, its limit (TABLAO_MAX_WORKERS): a "
                "wrangler forgets the workers that are gone (the app's Workers tab, or DELETE /api/v1/workers/ID "
                "at the Server) to make room",
                "quota",
            )
        worker_id = str(uuid.uuid4())
        secret = secrets.token_urlsafe(32)
        worker = WorkerState(
            id=worker_id, secret_hash=hash_secret(secret), name=name, platform=platform,
            status=WorkerStatus.STARTING,
        )  # fmt: skip
        with transaction(self.conn):
            store.insert_worker(self.conn, worker)
        self._workers[worker_id] = worker
        return worker_id, secret

    def authenticate(
        self, worker_id: str, secret: str, instance: str | None = None, *, signing_on: bool = False
    ) -> WorkerState:
        """The worker whose credentials these are. `instance`: the calling process's number; a process that
        another one signed on after is refused (Superseded), unless it is signing on (take_instance follows)."""
        worker = self.check_secret(worker_id, secret)
        now = time.monotonic()
        if instance is not None and not signing_on:
            if worker.instance is None:  # a worker that has not signed on with a number since this store began
                worker.instance, worker.instance_since = instance, datetime.now(UTC)
            elif instance != worker.instance:
                raise _superseded(worker)
            worker.instance_heard = now
        worker.last_seen = now
        worker.last_seen_wall = datetime.now(UTC)
        if worker.status == WorkerStatus.OFFLINE and worker.signed_on:
            worker.status = WorkerStatus.AWAKE
        return worker

    def check_secret(self, worker_id: str, secret: str) -> WorkerState:
        """The worker whose credentials these are, nothing noted of the call; Unauthorized if none is."""
        worker = self._workers.get(worker_id)
        if worker is None or not hmac.compare_digest(worker.secret_hash, hash_secret(secret)):
            raise Unauthorized("unknown worker id or wrong secret", "authorization")
        return worker

    def still_current(self, worker: WorkerState, instance: str | None) -> None:
        """Superseded if another process signed on as this worker since `instance`'s call began."""
        if instance is not None and worker.instance is not None and instance != worker.instance:
            raise _superseded(worker)

    def take_instance(self, worker: WorkerState, instance: str, peer: str, *, was_signed_on: bool) -> None:
        """After a sign-on the Manager accepted: the calling process is the worker's from now on. Kept in the
        store, so a restarted Manager still refuses the process this one superseded."""
        now = time.monotonic()
        if instance != worker.instance:
            if worker.instance is not None and was_signed_on:
                self._warn_signed_on_again(worker, peer, now)
            worker.instance, worker.instance_peer, worker.instance_since = instance, peer, datetime.now(UTC)
            with transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO worker_instances (worker_id, instance, peer, since) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(worker_id) DO UPDATE SET instance = excluded.instance, peer = excluded.peer,"
                    " since = excluded.since",
                    (worker.id, instance, peer, worker.instance_since.isoformat()),
                )
        worker.instance_heard = now

    def _warn_signed_on_again(self, worker: WorkerState, peer: str, now: float) -> None:
        # a restart after a crash looks the same; two machines sharing one identity repeat it, and a client with
        # the credentials could repeat it in a loop: one line a minute per worker, counting the rest
        if now - worker.instance_warned < WARN_EVERY_SECONDS:
            worker.instance_unwarned += 1
            return
        more = f" ({worker.instance_unwarned} more times since the last such line)" if worker.instance_unwarned else ""
        # the age only of a call this Manager heard: one restored from the store has none (a monotonic 0 gave the
        # machine's uptime)
        heard = worker.instance_heard
        when = (
            f"heard from {now - heard:.0f} s ago" if heard is not None else "not heard from since this Manager started"
        )
        log.warning(
            "worker %s (%s) signed on from %s in a new process while %s was signed on, %s; "
            "the earlier process's calls are refused from now on%s",
            worker.name, worker.id, peer, worker.instance_peer or "another process", when, more,
        )  # fmt: skip
        worker.instance_warned, worker.instance_unwarned = now, 0

    def _load_instances(self) -> None:
        for worker_id, instance, peer, since in self.conn.execute(
            "SELECT worker_id, instance, peer, since FROM worker_instances"
        ):
            if (w := self._workers.get(worker_id)) is not None:
                w.instance, w.instance_peer = instance, peer
                with contextlib.suppress(ValueError):
                    w.instance_since = datetime.fromisoformat(since)

    def save(self, worker: WorkerState) -> None:
        """Write the worker's record (in the caller's transaction); the Server hears of it in the next report."""
        store.save_worker(self.conn, worker)
        self.changed(worker)

    def came_or_went(self, worker: WorkerState) -> None:
        """Write the worker's record, to be reported with the next batch, without waiting for the reports' turn."""
        self.save(worker)
        self.news = True

    def changed(self, worker: WorkerState) -> None:
        self.dirty.add(worker.id)
        self.run_watch.tell(worker.id)
        if self._on_change is not None:
            self._on_change()

    def silent(self, now: float) -> list[WorkerState]:
        """Workers not offline that were not heard of for longer than the worker timeout, counted from the end of
        this Manager's last stall at the earliest (`awake_since`): a Manager that was stopped or starved heard
        nobody meanwhile, and its workers' requests are still waiting to be read."""
        timeout = self.config.worker_timeout
        since = self.awake_since
        return [
            w
            for w in self._workers.values()
            if w.status != WorkerStatus.OFFLINE and now - max(w.last_seen, since) > timeout
        ]

    def apply_instructions(self, requests: list[WorkerInstruction]) -> list[WorkerState]:
        """Status changes the Server asks of workers; each worker hears of its own at its next request.
        Returns the workers whose request changed.

        The Server repeats a request until a report says it is done; a numbered request already taken on is
        not taken again (a worker that restarted would otherwise restart once more).
        """
        changed: list[WorkerState] = []
        with transaction(self.conn):
            for req in requests:
                worker = self._workers.get(req.worker_id)
                if worker is None:
                    continue
                if req.request_id:
                    if req.request_id == worker.request_id:
                        continue
                elif (worker.status_requested, worker.lazy) == (req.status, req.lazy):
                    continue
                worker.status_requested, worker.lazy = req.status, req.lazy
                worker.request_id = req.request_id
                store.save_worker(self.conn, worker)
                worker_controls.save(self.conn, worker)
                self.changed(worker)
                changed.append(worker)
        return changed

    def apply_tags(self, edits: list[WorkerTags]) -> None:
        """Tags a wrangler gave workers: they replace the workers' own from now on (kept across sign-ons)."""
        with transaction(self.conn):
            for edit in edits:
                worker = self._workers.get(edit.worker_id)
                tags = frozenset(edit.tags)
                if worker is None or (worker.tags_override == tags and worker.tags == tags):
                    continue
                worker.tags = worker.tags_override = tags
                store.save_worker(self.conn, worker)
                worker_controls.save(self.conn, worker)
                self.changed(worker)

    def forget(self, worker_id: str) -> WorkerState | None:
        """Drop the worker and its credentials (a wrangler forgot it); the caller holds the transaction."""
        worker = self._workers.pop(worker_id, None)
        if worker is not None:
            worker_controls.forget(self.conn, worker_id)
            self.dirty.discard(worker_id)
        return worker

    def reports(self, everything: bool = False) -> list[WorkerReport]:
        """Reports of the workers that changed since the last call (or of all of them) for the Server."""
        ids = list(self._workers) if everything else list(self.dirty)
        self.dirty.clear()
        self.news = False
        return [_report(self._workers[i]) for i in ids if i in self._workers]
