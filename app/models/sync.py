"""Keeps a `ClientStore` in step with a Server: snapshots over REST, then the event stream, resumed after drops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any

import httpx

from app.models.store import ClientStore, Reload, TaskRow
from app.qt import QObject, Signal
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.states import TaskStatus

log = logging.getLogger(__name__)

PAGE_SIZE = 500
TASK_PAGE = 1000
# A job's tasks the app holds: the first ones in order, as many as the tasks table is measured with
# (tests/bench/bench_gui_tasks_model.py), then of the rest those a wrangler looks for, as many again. A job of a
# million tasks took 721 MiB and 71 s to load whole. Task events add the tasks that change while it is shown.
TASKS_SHOWN = 100_000
NEED_A_LOOK = (TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED, TaskStatus.FAILED)
MAX_BACKOFF = 3.0
JOB_LOG_DELAY = 0.3  # a burst of job-updated events reloads the job log once


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    UNAUTHORIZED = "not authorised"
    STOPPED = "disconnected"


class FarmSync(QObject):
    """Runs on the qasync loop: the UI thread only ever applies already-parsed events to the store."""

    state_changed = Signal(str)
    error = Signal(str)

    def __init__(self, store: ClientStore, client: ServerClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.client = client
        self.state = ConnectionState.STOPPED
        self.reconnects = 0
        self._main: asyncio.Task[None] | None = None
        self._tasks_load: asyncio.Task[None] | None = None
        self._log_load: asyncio.Task[None] | None = None
        self._spawned: set[asyncio.Task[None]] = set()  # side requests in flight, ended by stop()
        self._stopped = False  # by stop(), until start(): a side request asked for meanwhile is not made

    def _set_state(self, state: ConnectionState) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state.value)

    def start(self) -> None:
        self._stopped = False
        if self._main is None:
            self._main = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """End the stream and every request still in flight, so the client can be closed after it: a request
        cancelled while it connects closes its socket only as it ends."""
        self._stopped = True  # a Qt timer or signal firing from now on starts no request
        me = asyncio.current_task()
        for t in (self._main, self._tasks_load, self._log_load, *self._spawned):
            if t is not None and t is not me:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        self._main = None
        self._set_state(ConnectionState.STOPPED)

    # --- the stream ------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.25
        self._set_state(ConnectionState.CONNECTING)
        while True:
            try:
                # closed on any way out, a cancel while an event is handled included: its connection goes with it
                events = self.client.events(self.store.last_event_id, on_open=self._opened)
                async with contextlib.aclosing(events):
                    async for event in events:
                        backoff = 0.25
                        await self._handle(self.store.apply_event(event))
            except ApiError as exc:
                if exc.status_code in (401, 403):
                    self._set_state(ConnectionState.UNAUTHORIZED)
                    self.error.emit(f"The Server refused the token: {exc.detail}")
                    return
                log.warning("event stream: %s", exc)
            except (httpx.HTTPError, OSError) as exc:
                log.info("event stream dropped: %s", exc)
            self._set_state(ConnectionState.RECONNECTING)
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _opened(self) -> None:
        # The stream's start is fixed now. With no event id yet (first connection) load everything; after a
        # drop, Last-Event-ID replays what was missed, so nothing needs loading.
        if self.store.last_event_id is None:
            await self.load_all()
        self._set_state(ConnectionState.CONNECTED)

    async def _handle(self, reload: Reload | None) -> None:
        if reload is Reload.ALL:
            await self.load_all()
        elif reload is Reload.TASKS:
            self.reload_tasks()
        elif reload is Reload.JOB_LOG and (self._log_load is None or self._log_load.done()):
            self._log_load = asyncio.ensure_future(self._load_job_log(delay=JOB_LOG_DELAY))

    async def load_all(self) -> None:
        jobs = []
        cursor: str | None = None
        while True:
            page = await self.client.list_jobs(limit=PAGE_SIZE, cursor=cursor, sort="created")
            jobs.extend(page.items)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        workers = await self.client.workers()
        managers = await self.client.managers()
        self.store.load_managers(managers)
        self.store.load_workers(workers)
        self.store.load_jobs(jobs)
        if self.store.selected_job_id is not None and self.store.selected_job_id not in self.store.jobs:
            self.store.select_job(None)
        self.reload_tasks()

    # --- the selected job ------------------------------------------------------------------------
    def select_job(self, job_id: int | None) -> None:
        if job_id == self.store.selected_job_id:
            return
        self.store.select_job(job_id)
        self.reload_tasks()

    def reload_tasks(self) -> None:
        if self._tasks_load is not None:
            self._tasks_load.cancel()
        job_id = self.store.selected_job_id
        if job_id is None:
            return
        self.store.begin_tasks_load()
        self._tasks_load = self.spawn(self._load_tasks(job_id))

    async def _load_tasks(self, job_id: int) -> None:
        rest = await self._load_task_pages(job_id, (), None, first=True)
        self.store.set_tasks_cut(job_id, None if rest is None else TASKS_SHOWN)
        if rest is not None:  # more than the app holds: of the rest, those that need a look
            await self._load_task_pages(job_id, NEED_A_LOOK, rest, first=False)
        self.store.end_tasks_load(job_id)
        await self._load_job_log()

    async def _load_task_pages(
        self, job_id: int, status: tuple[TaskStatus, ...], cursor: str | None, *, first: bool
    ) -> str | None:
        """Up to TASKS_SHOWN of the job's tasks in order, after `cursor`, shown as they come; the cursor after
        them when there are more."""
        loaded = 0
        while loaded < TASKS_SHOWN:
            limit = min(TASK_PAGE, TASKS_SHOWN - loaded)
            page = await self.client.list_tasks(job_id, status=status, limit=limit, cursor=cursor)
            self.store.load_task_page(job_id, [TaskRow.from_summary(t) for t in page.items], first=first)
            first = False
            loaded += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                return None
        return cursor

    async def _load_job_log(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        job_id = self.store.selected_job_id
        if job_id is None:
            return
        try:
            entries = await self.client.job_log(job_id)
        except ApiError as exc:
            if exc.status_code == 404:  # deleted meanwhile; its job-deleted event clears the view
                return
            raise
        if job_id == self.store.selected_job_id:
            self.store.set_job_log(entries)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a side request; a failure is reported on `error`, never swallowed."""
        task = asyncio.ensure_future(coro)
        if self._stopped:
            task.cancel()  # before its first step: the coroutine ends at once, having asked nothing
            return task
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        task.add_done_callback(self._report)
        return task

    def _report(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, ApiError):
            self.error.emit(exc.detail)
        elif exc is not None:
            self.error.emit(f"{type(exc).__name__}: {exc}")
