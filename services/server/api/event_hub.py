"""One database watcher per Server process for the event stream: it reads new events once, keeps the recent
ones as ready-made SSE frames, and wakes every connected client, instead of each connection polling the
database (500 idle connections used to take a core).

The watcher runs while anyone listens. It wakes at every commit with events in this process, at every commit
notice of another Server process on PostgreSQL (db/notify.py), and at least once a second in any case. A client
resuming from further back than the watcher's memory reads those events from the database itself, then follows
the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterator

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from services.server.store import events
from services.server.store.convert import aware

log = logging.getLogger(__name__)

Frame = tuple[int, bytes]
BUFFER = 10_000  # frames kept in memory (~a few MB); older resumes read the database
PAGE = 1000


def frame(event_id: int, type_: str, time: str, data: object) -> bytes:
    body = json.dumps({"id": event_id, "type": type_, "time": time, "data": data}, separators=(",", ":"))
    return f"id: {event_id}\nevent: {type_}\ndata: {body}\n\n".encode()


def read_frames(read_sessions: sessionmaker[Session], after_id: int, limit: int = PAGE) -> list[Frame]:
    """Events after `after_id` from the database, as frames (run in a worker thread)."""
    with read_sessions() as s:
        return [
            (r.id, frame(r.id, r.type, aware(r.time).isoformat(), r.data))
            for r in events.read_after(s, after_id, limit)
        ]


class EventHub:
    def __init__(
        self, read_sessions: sessionmaker[Session], notifier: events.EventNotifier, poll_seconds: float = 1.0
    ) -> None:
        self.read_sessions = read_sessions
        self.notifier = notifier  # this app's: woken by its commits and, on PostgreSQL, by other Servers' notices
        self.poll_seconds = poll_seconds
        self._frames: deque[Frame] = deque(maxlen=BUFFER)
        self._read_up_to: int | None = None  # the newest event id the watcher has seen (None: not started)
        self._tick = asyncio.Event()  # replaced at every batch of new frames; the old one is set
        self._listeners = 0
        self._watcher: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        self._listeners += 1
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="event-hub")
        try:
            yield
        finally:
            self._listeners -= 1

    def frames_after(self, last_id: int) -> list[Frame] | None:
        """Frames newer than `last_id`, or None when they go back further than the watcher's memory.

        Before the watcher's first read there is nothing yet: [] (it wakes its listeners once it has started).
        """
        if self._read_up_to is None:
            return []
        floor = self._frames[0][0] - 1 if self._frames else self._read_up_to
        if last_id < floor:
            return None
        newer: list[Frame] = []
        for f in reversed(self._frames):
            if f[0] <= last_id:
                break
            newer.append(f)
        newer.reverse()
        return newer

    async def wait(self, max_seconds: float) -> None:
        """Until the next batch of frames, at most `max_seconds`."""
        tick = self._tick
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_seconds):  # not wait_for, which can lose a cancel on 3.11
                await tick.wait()

    async def _watch(self) -> None:
        with self.notifier.subscribe() as committed:
            while self._read_up_to is None and self._listeners > 0:
                try:
                    self._read_up_to = await run_in_threadpool(self._newest)
                except Exception:
                    log.warning("cannot read the newest event id; trying again", exc_info=True)
                    await asyncio.sleep(self.poll_seconds)
            self._wake()
            while self._listeners > 0 and self._read_up_to is not None:
                committed.clear()
                try:
                    new = await run_in_threadpool(read_frames, self.read_sessions, self._read_up_to)
                except Exception:  # the database is away for a moment: the clients wait, the watcher retries
                    log.warning("cannot read new events; trying again", exc_info=True)
                    await asyncio.sleep(self.poll_seconds)
                    continue
                if new:
                    self._frames.extend(new)
                    self._read_up_to = new[-1][0]
                    self._wake()
                    if len(new) == PAGE:
                        continue  # more are waiting
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):  # not wait_for, which can lose a cancel on 3.11
                        await committed.wait()

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _newest(self) -> int:
        with self.read_sessions() as s:
            return events.newest_id(s)
