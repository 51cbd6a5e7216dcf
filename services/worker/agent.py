"""The Worker's main loop: register, sign on, ask for work, run it, heartbeat, obey the Manager, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

import httpx

from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import AssignedTask, Heartbeat, SignOnRequest
from services.protocol.worker_client import (
    ManagerError,
    NoTask,
    NotSignedOn,
    StaleTask,
    Unauthorized,
    WorkerClient,
)
from services.worker import credentials
from services.worker.agent_config import AgentConfig, FatalError, SupersededError, unavailability
from services.worker.buffer import Backoff, BufferFull, UpdateBuffer, open_buffer
from services.worker.joining import sign_on, sign_on_request
from services.worker.prefetcher import Prefetcher
from services.worker.runners import offer, spare
from services.worker.sampler import Sampler
from services.worker.task_policy import effective_policy, forget_rulesets, use_policy
from services.worker.taskrun import TaskRun

log = logging.getLogger("tablao.worker")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_RESTART = 75  # EX_TEMPFAIL: the supervisor (all-in-one, systemd, the tray) starts us again
# EX_CONFIG: another process signed on with this worker's identity; starting again would only take it back from
# that one (the systemd unit's RestartPreventExitStatus, the tray and the local farm do not restart it)
EXIT_SUPERSEDED = 78
# The Manager takes a silent worker's tasks back after its worker timeout (said at sign-on; this from an older
# Manager, its default). A worker that has not heard the Manager for this share of it gives its prefetched task
# back rather than start it unasked: the Manager may have handed it to another worker meanwhile.
MANAGER_WORKER_TIMEOUT = 60.0
TOUCH_SHARE = 0.5
TOUCH_CHECK_SECONDS = 1.0


class _Refused(Exception):
    """The Manager no longer accepts this worker's credentials (the agent registers again)."""


class Agent:
    def __init__(self, config: AgentConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.client = WorkerClient(config.manager_url, transport=transport, ca_bundle=config.ca_bundle)
        self.client.on_superseded = self._superseded
        self.status = WorkerStatus.STARTING
        self.exit_code = EXIT_OK
        self.current: TaskRun | None = None
        self.task_types: list[str] = []
        self.worker_id: str | None = None  # the Manager's id of this worker, once signed on
        self._finished_task: int | None = None  # its final update may ride on the next task request
        self._exit_after_task = False
        self._stopping = False
        self._work: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._heartbeat_now = asyncio.Event()
        self._backoff = Backoff(base=0.2, cap=10.0)
        self.buffer: UpdateBuffer | None = None
        self._sign_on_body: SignOnRequest | None = None
        # set by a local controller (the tray, through services.worker.control): no new work while paused
        self.paused = False
        self.unavailable: str | None = None  # why it claims nothing: "user-active", "outside-hours", ...
        self.reachable = True  # the Manager answered the last request
        self._manager_timeout = MANAGER_WORKER_TIMEOUT  # the Manager's worker timeout, from the sign-on
        self.listeners: list[Callable[[str], None]] = []  # told "state", "task-started", "task-finished:<status>"
        self._poll: asyncio.Task[AssignedTask | None] | None = None
        self._spare: spare.Spare | None = None  # while idle: a process held for the next task (runners/spare.py)
        self._variables: dict[str, str] = {}  # the farm's path variables, for the spare (from sign-on, then tasks)
        self.prefetch = Prefetcher(
            self.client,
            poll_wait=config.poll_wait,
            may_ask=self._may_take,
            in_touch=self._in_touch,
            on=config.prefetch,
            warm_starts=config.warm_start,
        )

    # -- life cycle ----------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run until told to stop; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Windows has no loop signal handlers: Ctrl-C arrives as KeyboardInterrupt in cli.py instead
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop, EXIT_OK, f"signal {sig.name}")
        # set here so every task created below inherits it; the worker's own files are never a task's to read
        use_policy(effective_policy(self.config.task_policy, self.config.data_dir))
        self.buffer = open_buffer(
            self.config.data_dir, self.client, on_stale=self._on_stale, batch_delay=self.config.batch_delay
        )
        self.prefetch.buffer = self.buffer
        background: list[asyncio.Task[None]] = []
        try:
            self._work = asyncio.create_task(self._start_and_work(background))
            try:
                await self._work
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
        except FatalError as exc:
            log.error("%s", exc)
            self.exit_code = EXIT_SUPERSEDED if isinstance(exc, SupersededError) else EXIT_ERROR
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return self.exit_code

    def stop(self, code: int = EXIT_OK, why: str = "asked to stop") -> None:
        """Stop now: a running task is stopped and given back; then flush, sign off and exit with code."""
        if self._stopping:
            return
        log.info("stopping: %s", why)
        self._stopping = True
        self.exit_code = code
        if self._work is not None:
            self._work.cancel()

    def _superseded(self) -> None:
        if self._stopping:
            return
        cfg = self.config
        log.error(
            "another process signed on at %s as this worker (%s): this one stops, and stays stopped when started "
            "again. Two machines cannot share one worker's identity; on the machine copied from the other, "
            "delete %s (or the tray's keyring entry) so that it registers anew",
            cfg.manager_url, self.worker_id, cfg.data_dir / credentials.FILE_NAME,
        )  # fmt: skip
        if self.worker_id is not None:
            try:
                credentials.mark_superseded(cfg.data_dir, self.worker_id)
            except OSError as exc:
                log.warning("cannot write %s: %s", cfg.data_dir / credentials.SUPERSEDED_FILE, exc)
        self.stop(EXIT_SUPERSEDED, "another process signed on with this worker's identity")

    async def _close(self) -> None:
        assert self.buffer is not None
        self.prefetch.give_back("the worker is stopping", now=True)
        self._drop_spare()
        # superseded, every call would be refused: the updates stay in the buffer, the other process signed on
        if self.status != WorkerStatus.STARTING and self.exit_code != EXIT_SUPERSEDED:
            self.buffer.store_unwritten()  # a disk that had filled may have room again: those go out too
            if not await self.buffer.flush(self.config.shutdown_flush_seconds):
                log.warning(
                    "%d updates not delivered yet; they are kept and sent on the next start",
                    self.buffer.pending_count(),
                )
            try:
                await asyncio.wait_for(self.client.sign_off(), self.config.sign_off_seconds)
            except (httpx.HTTPError, ManagerError, TimeoutError) as exc:
                log.warning("sign-off failed: %s", exc)
        self.buffer.close()
        await self.client.aclose()

    async def _start_and_work(self, background: list[asyncio.Task[None]]) -> None:
        while True:
            await self._sign_on()
            assert self.buffer is not None
            if not background:
                background.append(asyncio.create_task(self.buffer.run_sender()))
                background.append(asyncio.create_task(self._heartbeat_loop()))
                background.append(asyncio.create_task(self._touch_loop()))
            try:
                await self._work_loop()
                return
            except _Refused as exc:
                # a Manager that lost its store (started fresh) no longer knows us: register again
                if not self.config.registration_secret:
                    raise FatalError(
                        f"the Manager refused this worker's credentials ({exc}) and no registration secret "
                        "was given to register again (--registration-secret-file or "
                        "TABLAO_WORKER_REGISTRATION_SECRET)"
                    ) from exc
                log.warning("the Manager refused this worker's credentials (%s); registering again", exc)
                self.status = WorkerStatus.STARTING

    # -- registration and sign-on --------------------------------------------------------------------------

    async def _sign_on(self) -> None:
        cfg = self.config
        if self._sign_on_body is None:
            self._sign_on_body = await sign_on_request(cfg)
            self.task_types = list(self._sign_on_body.task_types)
        body = self._sign_on_body
        creds, answer = await sign_on(cfg, self.client, body, self._backoff)
        self.worker_id = creds.worker_id
        self.status = WorkerStatus.AWAKE
        log.info(
            "signed on at %s as %s (%s), task types %s",
            cfg.manager_url, cfg.name, creds.worker_id, ",".join(body.task_types),
        )  # fmt: skip
        self._variables = answer.variables  # (each task carries them too, and the last one's are kept)
        self._manager_timeout = answer.worker_timeout or MANAGER_WORKER_TIMEOUT
        if answer.last_seq is not None and self.buffer is not None:
            try:
                self.buffer.move_past(answer.last_seq)
            except BufferFull as exc:  # the Manager's next acknowledgement says the same, and it is tried again
                log.warning("%s", exc)
        if answer.status_requested is not None:
            self._apply(answer.status_requested, answer.lazy)

    # -- the work loop -------------------------------------------------------------------------------------

    async def _work_loop(self) -> None:
        # a prefetched task that started as the task before ended runs whatever was asked meanwhile
        while not self._exit_after_task or self.prefetch.started_early():
            assert self.buffer is not None
            if not self.buffer.writable.is_set() and not self.prefetch.started_early():
                # a full disk: no new task until the results kept in memory are stored (buffer.py)
                self.prefetch.give_back("the worker cannot store results: its disk is full")
                self._drop_spare()
                # the cached sandbox rules hold open the files beside the folders on the way to each protected
                # one: a file deleted there to make room kept its space, and the disk stayed full for good
                forget_rulesets()
                await self.buffer.writable.wait()
                continue
            if self._held() and not self.prefetch.started_early():
                self.prefetch.give_back("the worker takes no new work")
                self._drop_spare()
                self._state_changed.clear()
                await self._state_changed.wait()
                continue
            self._give_back_if_out_of_touch()
            prefetched = self.prefetch.take()
            if prefetched is not None:
                await self._run(*prefetched)  # prefetched while the task before ran: no round trip in between
                continue
            self._keep_spare()
            self._poll = asyncio.create_task(self._next_task())
            try:
                task = await self._poll
            except asyncio.CancelledError:
                if self._poll.cancelled() and self._held() and not self._stopping:
                    continue  # paused during the long poll: a task handed out meanwhile is given back by the Manager
                raise
            finally:
                self._poll = None
            if task is not None:
                held, self._spare = self._spare, None
                await self._run(task, held)
        # a lazy shutdown or restart: the task is done, leave
        self.prefetch.give_back("the worker is stopping after its task")
        self.stop(self.exit_code, "requested by the Manager")

    def _keep_spare(self) -> None:
        """Idle, about to ask for a task: hold a process ready for its first command, made now or still fit."""
        if self._spare is not None and not self._spare.usable():
            self._drop_spare()
        if self._spare is None:
            self._spare = spare.begin(self._variables, self.config.warm_start)

    def _drop_spare(self) -> None:
        held, self._spare = self._spare, None
        if held is not None:
            held.discard()

    def _held(self) -> bool:
        """Asleep (the Manager) or paused (the local controller): no new work is asked for."""
        return self.status == WorkerStatus.ASLEEP or self.paused

    def _may_take(self) -> bool:
        """May take a next task: not held, not stopping, not told to leave after the running one."""
        full = self.buffer is not None and not self.buffer.writable.is_set()
        return not (self._held() or self._stopping or self._exit_after_task or full)

    async def _next_task(self) -> AssignedTask | None:
        """One task request (long-polling), carrying the previous task's final updates when it can."""
        buffer = self.buffer
        assert buffer is not None
        try:
            async with buffer.lock:
                if self._finished_task:
                    rows = buffer.only_task_pending(self._finished_task)
                else:
                    # nothing just finished here, yet updates may be queued (a run before a restart of this worker,
                    # made while the Manager was away): delivered first, since a worker that asks for a task while
                    # the Manager thinks it holds one has abandoned that one, and the report would come too late
                    rows = None if buffer.pending_count() else []
                if rows is None:
                    # older updates are queued first: send them in order, then ask again
                    await buffer.send_head()
                    return None
                try:
                    answer = await self.client.request_task(
                        wait_seconds=self.config.poll_wait,
                        finished_task_id=self._finished_task if rows else None,
                        finished_updates=[r.body for r in rows],
                    )
                except StaleTask as exc:
                    if not rows or isinstance(exc, NotSignedOn):
                        # "not signed on": the Manager lost track of us (restarted, restored from a backup); the
                        # finished task's updates were not looked at and stay in the buffer for the next request
                        log.warning("the Manager refused the task request (%s); signing on again", exc.detail)
                        await self._sign_on()
                        return None
                    buffer.stale_from(rows, exc)
                    self._finished_task = None
                    return None
                except ManagerError as exc:
                    if exc.status != 413 or not rows:
                        raise
                    buffer.too_large(rows, exc)  # sent again smaller, with the next request
                    return None
                buffer.ack(rows)
                self._finished_task = None
        except Unauthorized as exc:
            raise _Refused(exc.detail) from exc
        except (httpx.TransportError, ManagerError, BufferFull) as exc:
            delay = self._backoff.next_delay()
            log.warning("asking for a task failed (%s); retrying in %.1f s", exc, delay)
            self._set_reachable(False)
            await self._sleep_or_state_change(delay)
            return None
        self._backoff.reset()
        self._set_reachable(True)
        if isinstance(answer, NoTask):
            if answer.status_requested is not None:
                before = (self.status, self._exit_after_task, self._stopping)
                self._apply(answer.status_requested, answer.lazy)  # the wait ended early to say so
                if (self.status, self._exit_after_task, self._stopping) != before:
                    return None  # one already carried out paces like any other answer (below)
            # after a long poll the Manager had nothing; its Retry-After is the pace it wants
            await self._sleep_or_state_change(min(answer.retry_after, self.config.poll_wait or 1.0))
            return None
        return answer

    async def _sleep_or_state_change(self, seconds: float) -> None:
        self._state_changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for, which can lose a cancel on 3.11
                await self._state_changed.wait()

    async def _run(self, task: AssignedTask, warm: offer.Held | None = None) -> None:
        assert self.buffer is not None
        cfg = self.config
        run = TaskRun(
            task,
            client=self.client,
            buffer=self.buffer,
            programs=cfg.programs,
            worker_name=cfg.name,
            may_i_run_interval=cfg.may_i_run_interval,
            may_i_run_wait=cfg.may_i_run_wait,
            flush_interval=cfg.flush_interval,
            grace_seconds=cfg.grace_seconds,
            on_status_request=self._apply,
            on_started=lambda: self._started(task),
            warm=warm,
            hand_on=self.prefetch.last_process_started,
        )
        self.current = run
        self._variables = task.variables
        log.info("task %d (%s) hand-out %d started", task.id, task.name, task.handout)
        self._tell("task-started")
        try:
            wrote_final = await run.run()
        finally:
            self.current = None
        self._finished_task = task.id if wrote_final else None
        if self.prefetch.task is None:
            self.prefetch.cancel()  # nothing leased yet: the work loop asks, carrying this task's final report
        log.info("task %d %s", task.id, run.ending or "ended")
        self._tell(f"task-finished:{run.outcome.value if run.outcome else 'stopped'}")

    def _started(self, task: AssignedTask) -> None:
        if self.current is not None and self.current.task is task:
            # the task before's final report rides on the prefetch request
            finished, self._finished_task = self._finished_task, None
            self.prefetch.start(task, finished)

    def _on_stale(self, task_id: int, handout: int) -> None:
        if self.current is not None and self.current.task.id == task_id and self.current.task.handout <= handout:
            self.current.stale()
        if self._finished_task == task_id:
            self._finished_task = None
        self.prefetch.forget(task_id)

    # -- touch with the Manager ---------------------------------------------------------------------------

    def _in_touch(self) -> bool:
        """The Manager answered recently enough that a task it leased us is still ours to start unasked."""
        return time.monotonic() - self.client.last_heard < self._manager_timeout * TOUCH_SHARE

    def _give_back_if_out_of_touch(self) -> None:
        # a prefetched task whose program started already runs on, as the task before it did (a 409 stops it)
        if self.prefetch.task is None or self.prefetch.started_early() or self._in_touch():
            return
        silent = time.monotonic() - self.client.last_heard
        self.prefetch.give_back(
            f"no answer from the Manager for {silent:.0f} s: past {self._manager_timeout:.0f} s it gives a silent "
            "worker's tasks to others"
        )

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(TOUCH_CHECK_SECONDS)
            self._give_back_if_out_of_touch()

    # -- heartbeats and requested state changes ----------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        sampler = Sampler()
        while True:
            self._heartbeat_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(
                    self.config.heartbeat_interval
                ):  # not wait_for, which can lose a cancel on 3.11
                    await self._heartbeat_now.wait()
            current = self.current.task.id if self.current else None
            body = Heartbeat(
                status=self.status,
                current_task_id=current,
                utilisation=await sampler.sample(),
                unavailable=unavailability(self.unavailable) if self.paused else None,
            )
            try:
                answer = await self.client.heartbeat(body)
            except (httpx.TransportError, ManagerError) as exc:
                log.warning("heartbeat failed: %s", exc)
                self._set_reachable(False)
                continue
            self._set_reachable(True)
            self._tell("state")  # the controller's periodic view of progress
            if answer.status_requested is not None:
                self._apply(answer.status_requested, answer.lazy)

    def _apply(self, request: WorkerStatusRequest, lazy: bool) -> None:
        """Obey a requested state change; lazy ones wait for the running task to end."""
        if request == WorkerStatusRequest.AWAKE:
            if self.status != WorkerStatus.AWAKE:
                log.info("waking up")
                self.status = WorkerStatus.AWAKE
                self._changed()
        elif request == WorkerStatusRequest.ASLEEP:
            if self.status != WorkerStatus.ASLEEP:
                log.info("going to sleep%s", " after the current task" if lazy and self.current else "")
                self.status = WorkerStatus.ASLEEP
                self.prefetch.give_back("the worker was sent to sleep", now=not lazy)
                if not lazy and self.current is not None:
                    self.current.interrupt("the worker was sent to sleep", give_back=True)
                self._changed()
        else:
            code = EXIT_OK if request == WorkerStatusRequest.SHUTDOWN else EXIT_RESTART
            if lazy and self.current is not None:
                log.info("%s requested: after the current task", request.value)
                self.exit_code = code
                self._exit_after_task = True
                self.prefetch.give_back(f"{request.value} requested after the current task")
            else:
                self.stop(code, f"{request.value} requested by the Manager")

    def _changed(self) -> None:
        self._state_changed.set()
        self._heartbeat_now.set()  # tell the Manager at once, so it stops repeating the request
        self._tell("state")

    # -- local control (the tray) ---------------------------------------------------------------------------

    def pause(self, *, now: bool, reason: str | None) -> None:
        """Claim nothing new; `now` also stops the running task and gives it back (not a failure)."""
        self.paused = True
        self.unavailable = reason or "paused-by-user"
        self.prefetch.give_back(f"paused on this computer ({self.unavailable})", now=now)
        if self._poll is not None:
            self._poll.cancel()
        if now and self.current is not None:
            self.current.interrupt(f"paused on this computer ({self.unavailable})", give_back=True)
        log.info("paused (%s)%s", self.unavailable, ", the running task is given back" if now else "")
        self._changed()

    def resume(self) -> None:
        if self.paused:
            log.info("resumed")
        self.paused = False
        self.unavailable = None
        self._changed()

    def _set_reachable(self, reachable: bool) -> None:
        if reachable != self.reachable:
            self.reachable = reachable
            self._tell("state")

    def _tell(self, event: str) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken controller must not stop the renders
                log.exception("a control listener failed")
