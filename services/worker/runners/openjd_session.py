"""One Open Job Description task run through openjd-sessions (the `openjd-task` command; runners/openjd.py loads it).

The command carries its step's part of the job template, the job parameter values and the task's parameter
set. A Session enters the job's and the step's environments in order, runs the task, and exits the entered
environments in reverse order even after a failure or a cancel, as the specification asks. Cancelling uses the
action's own cancelation mode (e.g. NOTIFY_THEN_TERMINATE with its notify period). The session's log lines go
to the task log; they do not also go to the Worker's own log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from openjd.model import (
    DecodeValidationError,
    Job,
    JobParameterValues,
    ParameterValue,
    ParameterValueType,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)
from openjd.sessions import LOG, ActionState, ActionStatus, PathFormat, PathMappingRule, Session, SessionState

from services.protocol.commands import OpenjdTaskParams
from services.protocol.openjd_template import SUPPORTED_EXTENSIONS
from services.protocol.path_mapping import PathMapping
from services.worker.runners.base import CommandFailed, RunContext

COMMAND = "openjd-task"
_POLL_SECONDS = 1.0


class _Forward(logging.Handler):
    """Sends one session's log records to its task log, from whichever thread openjd-sessions logs on."""

    def __init__(self, session_id: str, loop: asyncio.AbstractEventLoop, ctx: RunContext) -> None:
        super().__init__(logging.INFO)
        self.session_id = session_id
        self.loop = loop
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "session_id", None) != self.session_id:
            return
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break the task
            return
        for line in text.splitlines() or [""]:
            self.loop.call_soon_threadsafe(self.ctx.log, line)


def load_job(params: Mapping[str, Any]) -> tuple[Job, JobParameterValues]:
    template = params.get("template")
    given = params.get("job_parameters") or {}
    if not isinstance(template, dict):
        raise CommandFailed(f"{COMMAND}: parameter 'template' must be a job template object")
    if not isinstance(given, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
        raise CommandFailed(f"{COMMAND}: parameter 'job_parameters' must map names to strings")
    try:
        decoded = decode_job_template(template=template, supported_extensions=list(SUPPORTED_EXTENSIONS))
        values = preprocess_job_parameters(
            job_template=decoded,
            job_parameter_values=given,
            job_template_dir=Path(),
            current_working_dir=Path(),
            allow_job_template_dir_walk_up=True,
        )
        return create_job(job_template=decoded, job_parameter_values=values), values
    except (DecodeValidationError, ValueError, NotImplementedError) as exc:
        reason = " ".join(str(exc).split())
        raise CommandFailed(f"{COMMAND}: the job template does not load here: {reason}") from exc


def task_parameters(params: Mapping[str, Any]) -> dict[str, ParameterValue]:
    raw = params.get("task_parameters") or {}
    out: dict[str, ParameterValue] = {}
    if not isinstance(raw, dict):
        raise CommandFailed(f"{COMMAND}: parameter 'task_parameters' must be an object")
    for name, item in raw.items():
        try:
            out[name] = ParameterValue(type=ParameterValueType(item["type"]), value=str(item["value"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CommandFailed(f"{COMMAND}: task parameter {name!r} is not {{type, value}}: {item!r}") from exc
    return out


def mapping_rules(mappings: Sequence[PathMapping]) -> list[PathMappingRule]:
    """The farm's path variables as openjd-sessions rules: PATH values written with another platform's folder
    are read as under this worker's (Windows sources match regardless of case and slash direction)."""
    rules = []
    for m in mappings:
        windows = m.source_format == "windows"
        source: PurePath = PureWindowsPath(m.source_path) if windows else PurePosixPath(m.source_path)
        rules.append(
            PathMappingRule(
                source_path_format=PathFormat.WINDOWS if windows else PathFormat.POSIX,
                source_path=source,
                destination_path=PurePath(m.destination_path),
            )
        )
    return rules


class _Run:
    """One session driven from the event loop: each action is started, then awaited through the callback."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()

    def callback(self, _session_id: str, status: ActionStatus) -> None:
        if status.state == ActionState.RUNNING and status.progress is not None:
            # `openjd_progress: N` lines (0-100) become the task's progress
            done = max(0, min(100, round(status.progress)))
            self.loop.call_soon_threadsafe(self.ctx.progress, done, 100)
        self.loop.call_soon_threadsafe(self.changed.set)

    async def finished(self, session: Session) -> ActionStatus:
        """Wait until the running action ends (the callback wakes us; the poll is a safety net)."""
        while True:
            self.changed.clear()  # cleared before looking, so a callback after the look still wakes us
            if session.state not in (SessionState.RUNNING, SessionState.CANCELING):
                break
            # not wait_for: on Python 3.11 it can swallow a cancel that lands as the event is set (bpo-42130),
            # and a canceled task would then run to its end
            woken = asyncio.ensure_future(self.changed.wait())
            try:
                await asyncio.wait({woken}, timeout=_POLL_SECONDS)
            finally:
                woken.cancel()
        status = session.action_status
        if status is None:
            raise CommandFailed(f"{COMMAND}: the session reported no action status")
        return status

    async def cancel(self, session: Session) -> None:
        if session.state == SessionState.RUNNING:
            self.ctx.log("canceling the running action (as its cancelation mode says)")
            session.cancel_action()
        await self.finished(session)

    async def exit_all(self, session: Session) -> None:
        """Exit every entered environment, last entered first; keep going after a failed exit."""
        for identifier in reversed(session.environments_entered):
            session.exit_environment(identifier=identifier)
            try:
                status = await self.finished(session)
            except asyncio.CancelledError:
                await self.cancel(session)
                raise
            if status.state != ActionState.SUCCESS:
                self.ctx.log(f"leaving an environment {status.state.value}: {_why(status)}")


def _why(status: ActionStatus) -> str:
    if status.fail_message:
        return status.fail_message
    if status.exit_code is not None:
        return f"exit status {status.exit_code}"
    return status.state.value


async def run_openjd_task(params: OpenjdTaskParams, ctx: RunContext) -> None:
    step_name = params["step"]
    job, values = load_job(params)
    step = next((s for s in job.steps if s.name == step_name), None)
    if step is None:
        raise CommandFailed(f"{COMMAND}: the template has no step {step_name!r}")
    task_values = task_parameters(params)
    rules = mapping_rules(ctx.path_mappings)
    for m in ctx.path_mappings:
        ctx.log(f"path mapping: {m.source_path} ({m.source_format}) -> {m.destination_path}")
    run = _Run(ctx)
    session_id = f"tablao-{uuid.uuid4().hex[:12]}"
    forward = _Forward(session_id, run.loop, ctx)
    LOG.addHandler(forward)
    LOG.propagate = False  # task output belongs in the task log, not the Worker's own log
    failure: str | None = None
    try:
        with Session(
            session_id=session_id,
            job_parameter_values=values,
            job_name=job.name,
            callback=run.callback,
            path_mapping_rules=rules or None,
        ) as session:
            try:
                for env in [*(job.jobEnvironments or []), *(step.stepEnvironments or [])]:
                    session.enter_environment(environment=env)
                    status = await run.finished(session)
                    if status.state != ActionState.SUCCESS:
                        failure = f"entering environment {env.name!r} {status.state.value}: {_why(status)}"
                        break
                if failure is None:
                    session.run_task(step_script=step.script, task_parameter_values=task_values)
                    status = await run.finished(session)
                    if status.state != ActionState.SUCCESS:
                        failure = f"step {step.name!r} {status.state.value}: {_why(status)}"
            except asyncio.CancelledError:
                await run.cancel(session)
                await run.exit_all(session)
                raise
            await run.exit_all(session)
    finally:
        LOG.removeHandler(forward)
    if failure is not None:
        raise CommandFailed(f"{COMMAND}: {failure}")
