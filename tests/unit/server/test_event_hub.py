"""The event hub: one database watcher fans events out to every listener of the process, in order, and a
listener resuming from before the hub's memory catches up from the database first."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.server.api import event_hub
from services.server.api.event_hub import EventHub
from services.server.db.engine import make_engine, sqlite_url
from services.server.db.migrate import upgrade
from services.server.store import events
from services.server.store.sessions import open_sessions

NOTIFIER = events.EventNotifier()  # the app's, woken by the commits of the sessions opened with it


@pytest.fixture
def makers(tmp_path: Path) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine)
    return open_sessions(engine, NOTIFIER)


def _publish(writers: sessionmaker[Session], n: int, tag: str) -> None:
    with writers() as session:
        for i in range(n):
            events.publish(session, "test", {"tag": tag, "i": i})
        session.commit()


async def _listen(hub: EventHub, last: int, want: int, got: list[int]) -> None:
    with hub.listening():
        while len(got) < want:
            frames = hub.frames_after(last)
            if frames is None:
                frames = await asyncio.to_thread(event_hub.read_frames, hub.read_sessions, last)
            for event_id, _data in frames:
                got.append(event_id)
                last = event_id
            if not frames:
                await hub.wait(1.0)


@pytest.mark.timeout(60)
async def test_one_watcher_serves_every_listener(
    makers: tuple[sessionmaker[Session], sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    readers, writers = makers
    _publish(writers, 5, "before")
    reads = 0
    real = event_hub.read_frames

    def counted(*args: object) -> list[event_hub.Frame]:
        nonlocal reads
        reads += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(event_hub, "read_frames", counted)
    hub = EventHub(readers, NOTIFIER, poll_seconds=0.2)
    with readers() as s:
        newest = events.newest_id(s)
    results: list[list[int]] = [[] for _ in range(200)]
    listeners = [asyncio.create_task(_listen(hub, newest, 30, got)) for got in results]
    await asyncio.sleep(0.5)
    for batch in range(3):
        await asyncio.to_thread(_publish, writers, 10, f"b{batch}")
        await asyncio.sleep(0.1)
    await asyncio.wait_for(asyncio.gather(*listeners), 30)
    expected = list(range(newest + 1, newest + 31))
    assert all(got == expected for got in results)
    # one watcher: a few reads per wake-up in all, not one per listener (200 listeners here)
    assert reads < 40, reads
    await asyncio.sleep(0.5)  # with no listener left the watcher stops
    assert hub._watcher is not None and hub._watcher.done()


@pytest.mark.timeout(60)
async def test_a_listener_from_far_back_catches_up_from_the_database(
    makers: tuple[sessionmaker[Session], sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    readers, writers = makers
    monkeypatch.setattr(event_hub, "BUFFER", 5)
    _publish(writers, 20, "old")
    hub = EventHub(readers, NOTIFIER, poll_seconds=0.2)
    hub._frames = deque(maxlen=5)
    early: list[int] = []
    with hub.listening():
        await asyncio.sleep(0.3)  # the hub starts at the newest event
        await asyncio.to_thread(_publish, writers, 12, "new")
        await _listen(hub, 0, 32, early)
    assert early == list(range(1, 33))
