"""The `exec`, `echo` and `sleep` commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.protocol.commands import EchoParams, ExecParams, SleepParams
from services.worker.runners.base import CommandFailed, RunContext, exec_argv
from services.worker.runners.process import run_process
from services.worker.task_env import refused


async def run_exec(params: ExecParams, ctx: RunContext) -> None:
    argv = params["argv"]
    cwd = params.get("cwd")
    if cwd is not None and not await asyncio.to_thread(Path(cwd).is_dir):
        raise CommandFailed(f"exec: working directory {cwd!r} does not exist")
    extra_env = params.get("env")
    command_line = exec_argv(argv)
    if command_line is None:
        raise CommandFailed(f"exec: program {argv[0]!r} not found")
    if dropped := refused(extra_env):
        ctx.log(f"exec: not passed on (they change how programs load, or look like secrets): {', '.join(dropped)}")
    status = await run_process(
        command_line, ctx.log, cwd=cwd, env=extra_env, grace_seconds=ctx.grace_seconds, started=ctx.started
    )
    if status != 0:
        raise CommandFailed(f"exec: {argv[0]} exited with status {status}")


async def run_echo(params: EchoParams, ctx: RunContext) -> None:
    for line in params["message"].splitlines() or [""]:
        ctx.log(line)


async def run_sleep(params: SleepParams, ctx: RunContext) -> None:
    await asyncio.sleep(float(params["duration"]))
