"""The Server's wiring is per app: two apps in one process do not see each other's hooks, sweeps or notifier."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import services.server.api  # noqa: F401  (every Server module is imported: none may register anything)
from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.tables import EventRow
from services.server.jobtypes import registry
from services.server.store import events

pytestmark = pytest.mark.timeout(60)


def _app(tmp_path: Path, name: str) -> FastAPI:
    return create_app(ServerConfig(data_dir=tmp_path / name, admin_token=f"token-{name}"))


def _event_count(app: FastAPI) -> int:
    with app.state.read_sessions() as s:
        return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)


def test_no_listener_acts_on_every_session_of_the_process() -> None:
    plain = Session()
    for name in ("before_commit", "after_commit", "after_rollback", "before_flush"):
        assert len(getattr(plain.dispatch, name)) == 0, f"a class-wide Session {name} listener is registered"


async def test_a_commit_wakes_only_its_own_apps_readers(tmp_path: Path) -> None:
    a, b = _app(tmp_path, "a"), _app(tmp_path, "b")
    assert a.state.notifier is not b.state.notifier
    before_a, before_b = _event_count(a), _event_count(b)
    with a.state.notifier.subscribe() as woke_a, b.state.notifier.subscribe() as woke_b:
        with a.state.write_sessions() as session:
            events.publish(session, "test", {"n": 1})
            session.commit()
        await asyncio.sleep(0.05)  # the wake-up is scheduled on the loop with call_soon_threadsafe
        assert woke_a.is_set()
        assert not woke_b.is_set()
    assert _event_count(a) == before_a + 1
    assert _event_count(b) == before_b


def test_sessions_not_made_by_an_app_carry_no_hooks(tmp_path: Path) -> None:
    a = _app(tmp_path, "a")
    _app(tmp_path, "b")
    before = _event_count(a)
    with Session(a.state.engine) as session:
        events.publish(session, "test", {"n": 1})
        session.commit()
    assert _event_count(a) == before  # nothing wrote the queued event: no hook of either app acts here


def test_each_app_lists_its_own_sweeps(tmp_path: Path) -> None:
    a, b = _app(tmp_path, "a"), _app(tmp_path, "b")
    names = [
        "prune events",
        "expire leases",
        "offline workers of silent managers",
        "offline workers nobody reports",
        "prune worker history",
        "tokens last used",
        "prune canceled submission keys",
        "prune expired tokens",
        "prune log uploads asked for",
        "orphaned jobs under construction",
    ]
    assert [s.name for s in a.state.sweeps] == names
    assert [s.name for s in b.state.sweeps] == names
    assert a.state.sweeps is not b.state.sweeps


async def test_the_job_types_load_at_start_and_a_broken_one_does_not_stop_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry.job_types.cache_clear()
    app = _app(tmp_path, "a")
    async with app.router.lifespan_context(app):
        for _ in range(200):  # loaded beside the first requests, not inside the first submission
            if registry.job_types.cache_info().currsize:
                break
            await asyncio.sleep(0.05)
        assert registry.job_types.cache_info().currsize == 1, "nothing loaded the job types as the Server started"
        assert "exec" in registry.job_types()
    registry.job_types.cache_clear()

    class Broken:
        name = "broken"

        def load(self) -> object:
            return object  # not a JobType

    monkeypatch.setattr(registry, "entry_points", lambda group: [Broken()])
    app = _app(tmp_path, "b")
    async with app.router.lifespan_context(app):
        pass  # the start finished, the load was awaited at the stop
    assert "could not load the job types" in caplog.text
    monkeypatch.undo()
    registry.job_types.cache_clear()
