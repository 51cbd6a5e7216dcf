"""The Worker's prefetch of one: while a task runs, ask for the next one, so it starts with no round trip.

Once the running task's command has started, `start()` sends the previous task's final updates (when they
are still in the buffer) together with a request for the next task (`running_task_id`), then long-polls
until the Manager leases one, and has the first process of that task made, held before its program
(runners/warm_start.py). When the running task ends, `take()` hands the prefetched task over, or None.
A worker that will not run it next (asleep, paused, stopping, told to stop after this task) gives it back
at once (`give_back`): a `queued` update on a task it never started, which the Manager puts back in its
ready queue. See services/manager/prefetch.py for the Manager's half and the guarantees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from services.protocol.states import TaskStatus
from services.protocol.worker_api import AssignedTask
from services.protocol.worker_client import ManagerError, NoTask, NotSignedOn, StaleTask, WorkerClient
from services.worker.buffer import UpdateBuffer
from services.worker.runners import thread_spawn, warm_start

log = logging.getLogger("tablao.worker.prefetch")

RETRY_MAX = 2.0  # seconds between prefetch attempts the Manager answered with no task at once


class Prefetcher:
    def __init__(
        self,
        client: WorkerClient,
        *,
        poll_wait: float,
        may_ask: Callable[[], bool],
        in_touch: Callable[[], bool] = lambda: True,
        on: bool = True,
        warm_starts: bool = True,
    ) -> None:
        self.client = client
        self.on = on  # off: the worker asks for its next task only when the running one ended
        self.warm_starts = warm_starts  # off: the prefetched task's process is made when it starts
        self.buffer: UpdateBuffer | None = None  # the agent's, set once it is open
        self.poll_wait = poll_wait
        self.may_ask = may_ask  # False while the worker takes no new work (asleep, paused, stopping)
        # False when the Manager has been silent long enough that it may have given our task away: the task's
        # program is then not arranged to start by itself (the agent gives the task back)
        self.in_touch = in_touch
        self.task: AssignedTask | None = None  # leased to us: the one we run next
        self.warm: warm_start.WarmStart | None = None  # its first process, made ahead (runners/warm_start.py)
        self._poll: asyncio.Task[None] | None = None
        self._last: thread_spawn.ThreadSpawned | None = None  # the running task's last process, once started

    def start(self, running: AssignedTask, finished: int | None) -> None:
        """The command of `running` has started: ask for the next task, carrying `finished`'s final report."""
        self.cancel()
        if self.on and self.buffer is not None and self.task is None and self.may_ask():
            self._poll = asyncio.create_task(self._ask(running.id, finished))

    def take(self) -> tuple[AssignedTask, warm_start.WarmStart | None] | None:
        """The running task ended: stop asking; the prefetched task (if any) and its process made ahead (if
        any) are the caller's to run now."""
        self.cancel()
        self._last = None
        task, self.task = self.task, None
        warm, self.warm = self.warm, None
        if task is None:
            return None
        return task, warm

    def started_early(self) -> bool:
        """The prefetched task's program runs already: it started as the task before's last process ended."""
        return self.warm is not None and self.warm.opened_early

    def last_process_started(self, proc: thread_spawn.ThreadSpawned) -> None:
        """The running task's last command has started its process: the prefetched task's process made ahead
        starts the moment that one ends (runners/warm_start.py), once both exist."""
        self._last = proc
        self._hand_on()

    def _hand_on(self) -> None:
        warm, last = self.warm, self._last
        if warm is None or last is None or not warm.made() or not self.in_touch():
            return
        self._last = None  # one try: a process that does not fit now starts when its task does
        if warm.open_when_ended(last):
            log.debug("task %d starts as the running task's process ends", warm.task_id)

    def cancel(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def give_back(self, why: str, *, now: bool = False) -> None:
        """This worker will not run the prefetched task next: it goes back to the Manager (through the buffer).

        A task that started already as the task before ended (`started_early`) is running: it is kept and runs
        to its end, unless `now`, when its process is stopped and it is given back as any running task is."""
        self.cancel()
        self._last = None
        if not now and self.warm is not None and not self.warm.withdraw():
            log.info("task %d (prefetched) started already as the task before ended: it runs", self.warm.task_id)
            return
        task, self.task = self.task, None
        self._drop_warm()
        if task is not None and self.buffer is not None:
            log.info("task %d (prefetched) given back: %s", task.id, why)
            self.buffer.put(task.id, task.handout, status=TaskStatus.QUEUED.value, activity=f"given back: {why}")

    def forget(self, task_id: int) -> None:
        """The Manager took this task from us (409): it is not ours to run (a program started early is stopped)."""
        if self.task is not None and self.task.id == task_id:
            self.task = None
            self._drop_warm()

    def _drop_warm(self) -> None:
        warm, self.warm = self.warm, None
        if warm is not None:
            warm.discard()

    async def _ask(self, running: int, finished: int | None) -> None:
        first = True
        while self.task is None and self.may_ask():
            try:
                answer = await self._request(running, finished if first else None, wait=0 if first else None)
            except (httpx.TransportError, ManagerError) as exc:
                # the work loop's own request meets the same trouble after this task and deals with it
                log.debug("prefetch failed: %s", exc)
                await asyncio.sleep(RETRY_MAX)
                continue
            if isinstance(answer, AssignedTask):
                if self.may_ask():
                    self.task = answer
                    log.debug("task %d prefetched (hand-out %d)", answer.id, answer.handout)
                    if self.warm_starts:
                        self.warm = warm = warm_start.begin(answer, self._last)
                        if warm is not None:
                            warm.when_made(self._hand_on)
                else:  # went to sleep or paused while the answer was on its way
                    self.task = answer
                    self.give_back("the worker takes no new work")
                return
            if not first:
                await asyncio.sleep(min(answer.retry_after, RETRY_MAX))
            first = False

    async def _request(self, running: int, finished: int | None, wait: float | None) -> AssignedTask | NoTask:
        """One prefetch request; the first carries the finished task's updates and does not wait (the buffer's
        lock is held meanwhile, and the running task's own updates must not wait behind a long poll)."""
        buffer = self.buffer
        assert buffer is not None
        if wait is None:
            async with buffer.lock:
                await self._send_older(running)
            return await self.client.request_task(wait_seconds=self.poll_wait, running_task_id=running)
        async with buffer.lock:
            await self._send_older(running, keep=finished)
            rows = buffer.head() if finished is not None else []
            if not rows or rows[0].task_id != finished:
                rows = []
            try:
                answer = await self.client.request_task(
                    wait_seconds=wait,
                    finished_task_id=finished if rows else None,
                    finished_updates=[r.body for r in rows],
                    running_task_id=running,
                )
            except StaleTask as exc:
                if not rows or isinstance(exc, NotSignedOn):
                    # a Manager with no sign-on of this worker (restarted) looked at nothing: the finished
                    # task's updates stay in the buffer, to be sent again (the work loop signs on)
                    raise
                buffer.stale_from(rows, exc)
                return NoTask(0)
            buffer.ack(rows)
            return answer

    async def _send_older(self, running: int, keep: int | None = None) -> None:
        """Deliver the queued updates of tasks before `running` (bar `keep`'s, which ride on the request), so
        the Manager has its report of the task before when it reads the request."""
        assert self.buffer is not None
        while (batch := self.buffer.head()) and batch[0].task_id not in (running, keep):
            await self.buffer.send_head()
