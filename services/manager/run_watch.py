"""Long-polled may-i-run: a running task's question waits at the Manager until its worker's state changes.

A worker asks "may I keep running this task?" while the task runs. Asked with `wait`, the Manager answers at once
only when the answer says something the worker does not know yet (stop, or a status request other than the one it
names as heard); else it waits until something of that worker changes (WorkerRegistry.changed: a status request, a
task taken or canceled, a prefetched task given back) or the wait runs out. So a "stop after this task" reaches a
worker while its task still runs, in time to give back its prefetched next task before that one starts, and a
canceled task stops at once instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib

MAX_WAIT = 60.0  # seconds a may-i-run may wait (the worker's HTTP timeout covers it)


class RunWatch:
    """One event per worker with a waiting may-i-run; a change of the worker sets it (and starts a fresh one)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def tell(self, worker_id: str) -> None:
        event = self._events.pop(worker_id, None)
        if event is not None:
            event.set()

    async def wait(self, worker_id: str, seconds: float) -> None:
        """Until the worker changes or `seconds` pass."""
        event = self._events.setdefault(worker_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
