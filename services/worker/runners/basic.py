"""The `exec`, `echo` and `sleep` commands."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.worker.runners.base import CommandFailed, RunContext, optional_str, str_list
from services.worker.runners.process import run_process
from services.worker.task_env import refused


async def run_exec(params: Mapping[str, Any], ctx: RunContext) -> None:
    argv = str_list("exec", params, "argv")
    if not argv:
        raise CommandFailed("exec: parameter 'argv' must not be empty")
    cwd = optional_str("exec", params, "cwd")
    if cwd is not None and not await asyncio.to_thread(Path(cwd).is_dir):
        raise CommandFailed(f"exec: working directory {cwd!r} does not exist")
    extra_env = params.get("env") or {}
    if not isinstance(extra_env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra_env.items()
    ):
        raise CommandFailed(f"exec: parameter 'env' must map strings to strings, got {extra_env!r}")
    program = shutil.which(argv[0])
    if program is None:
        raise CommandFailed(f"exec: program {argv[0]!r} not found")
    if dropped := refused(extra_env):
        ctx.log(f"exec: not passed on (they change how programs load, or look like secrets): {', '.join(dropped)}")
    status = await run_process([program, *argv[1:]], ctx.log, cwd=cwd, env=extra_env, grace_seconds=ctx.grace_seconds)
    if status != 0:
        raise CommandFailed(f"exec: {argv[0]} exited with status {status}")


async def run_echo(params: Mapping[str, Any], ctx: RunContext) -> None:
    message = params.get("message")
    if not isinstance(message, str):
        raise CommandFailed(f"echo: parameter 'message' must be a string, got {message!r}")
    for line in message.splitlines() or [""]:
        ctx.log(line)


async def run_sleep(params: Mapping[str, Any], ctx: RunContext) -> None:
    duration = params.get("duration")
    if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
        raise CommandFailed(f"sleep: parameter 'duration' must be a number of seconds >= 0, got {duration!r}")
    await asyncio.sleep(float(duration))
