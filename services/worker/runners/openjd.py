"""The `openjd-task` command as registered: the session that runs it (runners/openjd_session.py) needs
openjd-model and openjd-sessions, about 13 MB and 0.3 s to import, so they are loaded by a worker's first
OpenJD task, in a thread, rather than by every worker as it starts."""

from __future__ import annotations

import asyncio
import importlib

from services.protocol.commands import OpenjdTaskParams
from services.worker.runners.base import RunContext

_SESSION = "services.worker.runners.openjd_session"


async def run_openjd_task(params: OpenjdTaskParams, ctx: RunContext) -> None:
    await asyncio.to_thread(importlib.import_module, _SESSION)  # once per worker; then already loaded
    from services.worker.runners.openjd_session import run_openjd_task as run_in_session

    await run_in_session(params, ctx)
