"""Runs one assigned task: its commands in order, the may-I-run checks, and the final status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from services.protocol.jobs import Command
from services.protocol.states import TaskStatus, WorkerStatusRequest
from services.protocol.worker_api import AssignedTask
from services.protocol.worker_client import ManagerError, StaleTask, WorkerClient
from services.worker import output_roots, task_policy
from services.worker.buffer import UpdateBuffer
from services.worker.previews import PreviewMaker
from services.worker.reporter import TaskReporter
from services.worker.runners import CommandFailed, Programs, RunContext, get_runner, offer, thread_spawn
from services.worker.variables import substitute

log = logging.getLogger("tablao.worker.task")

# a command without a program of its own says `active` this long after it began (one with a program, when that
# program has started)
START_FALLBACK_SECONDS = 0.005
# the first may-i-run of a task leaves after this long (or the poll interval, when shorter): tasks shorter than
# this cost no request; longer ones are watched from here on by one waiting request at a time
FIRST_LOOK = 0.5


@dataclass(slots=True)
class Interrupt:
    """Why a running task is stopped early; `give_back` reports it `queued` so it runs again elsewhere."""

    reason: str
    give_back: bool


class TaskRun:
    def __init__(
        self,
        task: AssignedTask,
        *,
        client: WorkerClient,
        buffer: UpdateBuffer,
        programs: Programs,
        worker_name: str,
        may_i_run_interval: float,
        may_i_run_wait: float,
        flush_interval: float,
        grace_seconds: float,
        on_status_request: Callable[[WorkerStatusRequest, bool], None] = lambda request, lazy: None,
        on_started: Callable[[], None] = lambda: None,
        warm: offer.Held | None = None,
        hand_on: Callable[[thread_spawn.ThreadSpawned], None] | None = None,
    ) -> None:
        self.task = task
        self.client = client
        self.programs = programs
        self.worker_name = worker_name
        self.may_i_run_interval = may_i_run_interval  # the pace when the Manager answers at once, and after errors
        self.may_i_run_wait = may_i_run_wait  # how long one may-i-run may wait at the Manager for news
        self.flush_interval = flush_interval
        self.grace_seconds = grace_seconds
        self.reporter = TaskReporter(buffer, task.id, task.handout, task.steps_total)
        self.previews = PreviewMaker(self.reporter.preview, note=self.reporter.log)
        self.on_status_request = on_status_request
        self.on_started = on_started  # its first command was started (the Worker's prefetch asks then)
        self.warm = warm  # its first command's process, made while the task before ran (or while idle)
        self.hand_on = hand_on  # gets its last command's process (`exec`), so the next task starts as it ends
        self._commands: asyncio.Task[None] | None = None
        self._began = False  # `active` written
        self._start_fallback: asyncio.TimerHandle | None = None
        self._interrupt: Interrupt | None = None
        self.outcome: TaskStatus | None = None  # the final status written, once run() returns
        self.ending = ""  # how it ended, in words, once run() returns: "completed", "failed: why", ...

    def interrupt(self, reason: str, *, give_back: bool) -> None:
        """Stop the running command now (its process gets SIGTERM, then SIGKILL after the grace period)."""
        if self._interrupt is None:
            self._interrupt = Interrupt(reason, give_back)
        if self._commands is not None:
            self._commands.cancel()

    def stale(self) -> None:
        self.reporter.discard()
        self.interrupt("the Manager says this hand-out is stale", give_back=False)

    async def run(self) -> bool:
        """Run to the end; True when a final status was written to the buffer.

        Cancelling the caller (SIGTERM) stops the command, writes `queued` and re-raises.
        """
        task = self.task
        handout = f"hand-out no. {task.handout}"  # the Manager's count of hand-outs, not the task's id
        self.reporter.log(f"task {task.id} ({task.name}, {handout}) started on worker {self.worker_name}")
        self._commands = asyncio.create_task(self._run_commands())
        # `active` is written (and the next task asked for) once the first command's program has started,
        # before any of its output is read: the buffer keeps its order, the start does not wait for a SQLite
        # commit, and the loop's work does not hold up the thread that starts the program. A command without
        # a program (echo, sleep, file copies) gets it a moment later, or when it ends, whichever is first.
        self._start_fallback = asyncio.get_running_loop().call_later(START_FALLBACK_SECONDS, self._started)
        helpers = [
            asyncio.create_task(self._watch()),
            asyncio.create_task(self.reporter.run_flusher(self.flush_interval)),
            asyncio.create_task(self.previews.run()),
        ]
        try:
            try:
                await asyncio.wait({self._commands})
                self._started()  # a command that ended before it was due
                if not self._commands.cancelled():
                    await self.previews.settle()  # the last frame's preview goes before the final status
            except asyncio.CancelledError:
                self._commands.cancel()
                await asyncio.wait({self._commands})
                self._started()
                self.reporter.finish(TaskStatus.QUEUED, "given back: the worker is stopping")
                raise
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        return self._conclude(self._commands)

    def _started(self) -> None:
        if self._began:
            return
        self._began = True
        if self._start_fallback is not None:
            self._start_fallback.cancel()
        self.reporter.flush(TaskStatus.ACTIVE)
        self.on_started()

    def _conclude(self, commands: asyncio.Task[None]) -> bool:
        if commands.cancelled():
            why = self._interrupt or Interrupt("stopped", give_back=True)
            if why.give_back:
                self.ending = f"given back: {why.reason}"
                self.reporter.finish(TaskStatus.QUEUED, self.ending)
                self.outcome = TaskStatus.QUEUED
                return True
            self.ending = f"stopped: {why.reason}"  # canceled, or taken away: the Manager knows it has ended
            self.reporter.log(self.ending)
            self.reporter.flush()
            return False
        exc = commands.exception()
        self.outcome = TaskStatus.COMPLETED if exc is None else TaskStatus.FAILED
        if exc is None:
            self.ending = "completed"
        elif isinstance(exc, CommandFailed):
            self.ending = f"failed: {exc}"
        else:
            log.exception("task %d crashed the runner", self.task.id, exc_info=exc)
            self.ending = f"failed: internal error: {type(exc).__name__}: {exc}"
        self.reporter.finish(self.outcome, self.ending)
        return True

    async def _run_commands(self) -> None:
        commands = self.task.commands
        task_policy.use_variables(self.task.variables)  # for output roots written with path variables
        offer.offer(self.warm)  # to the first command that starts a process (the one it was made for)
        try:
            await self._run_each(commands)
        finally:
            if self.warm is not None:
                self.warm.discard()  # unused (another command, or the task ended first): it never runs

    async def _run_each(self, commands: list[Command]) -> None:
        for i, command in enumerate(commands, 1):
            runner = get_runner(command.name)
            if runner is None:
                raise CommandFailed(f"unknown command {command.name!r}")
            params = substitute(command.parameters, self.task.variables)
            if problem := task_policy.output_problem(command.name, params):
                raise CommandFailed(problem)
            if output_roots.makes_folders(command.name):  # no trip to a thread for the rest (`exec`, most)
                await asyncio.to_thread(task_policy.make_output_folders, command.name, params)
            if i == len(commands) and command.name == "exec":  # one process, whose end is the task's
                offer.hand_on_after(self.hand_on)
            self.reporter.activity(f"command {i}/{len(commands)}: {command.name}")
            ctx = RunContext(
                log=self.reporter.log,
                progress=self.reporter.progress,
                output_file=self._saved,
                programs=self.programs,
                grace_seconds=self.grace_seconds,
                path_mappings=self.task.path_mappings,
                started=self._started,
            )
            await runner(params, ctx)

    def _saved(self, path: str) -> None:
        self.reporter.output_file(path)
        self.previews.offer(path)

    async def _watch(self) -> None:
        """Ask may-I-keep-running while the task runs, long-polled: the Manager answers when its answer changes
        (manager/run_watch.py), so a no stops the command at once, and a status request ("asleep after this
        task") is heard while the task runs, in time to give back a prefetched next task before it starts."""
        heard: WorkerStatusRequest | None = None
        await asyncio.sleep(min(FIRST_LOOK, self.may_i_run_interval))
        while True:
            asked = time.monotonic()
            try:
                answer = await self.client.may_i_run(
                    self.task.id, self.task.handout, wait=self.may_i_run_wait, heard=heard
                )
            except StaleTask:
                self.stale()
                return
            except (httpx.TransportError, ManagerError) as exc:
                # an unreachable Manager is no reason to stop rendering; the lease rules decide later
                log.debug("may-i-run failed: %s", exc)
                await asyncio.sleep(self.may_i_run_interval)
                continue
            if answer.status_requested is not None:
                self.on_status_request(answer.status_requested, answer.lazy)
            if not answer.may_keep_running:
                # asleep, shut down or restart now: the task goes back to the queue, as when a heartbeat says so
                now = answer.status_requested is not None and not answer.lazy
                self.interrupt(f"the Manager stopped it: {answer.reason or 'no reason given'}", give_back=now)
                return
            if answer.status_requested == heard:  # nothing new, yet answered early: a Manager that does not wait
                await asyncio.sleep(max(0.0, self.may_i_run_interval - (time.monotonic() - asked)))
            heard = answer.status_requested
