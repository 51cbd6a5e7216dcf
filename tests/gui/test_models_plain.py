"""The table models over a plain store: rows follow the collection, changes are coalesced per frame."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.models.farm_models import JobsModel, ManagersModel, RecordFilterProxy, TasksModel, WorkersModel
from app.models.store import ClientStore, Reload, TaskRow
from app.models.table import KeyRole, ProgressRole, contiguous_ranges
from app.qt import QModelIndex, QPersistentModelIndex, Qt
from services.protocol.farm import Event

NOW = "2026-11-28T15:00:00+00:00"


def job(i: int, status: str = "queued", done: int = 0, name: str | None = None) -> dict[str, Any]:
    return {
        "id": i,
        "name": name or f"job {i}",
        "type": "exec",
        "settings": {},
        "priority": 50,
        "submitter": "ana",
        "tags": [],
        "manager_id": None,
        "depends_on": [],
        "max_task_failures": 3,
        "on_task_failure": "fail-job",
        "status": status,
        "activity": "",
        "created": NOW,
        "updated": NOW,
        "tasks_total": 10,
        "tasks_completed": done,
        "tasks_failed": 0,
        "tasks_active": 0,
    }


def task(i: int, job_id: int = 1, status: str = "queued") -> dict[str, Any]:
    return {
        "id": i,
        "job_id": job_id,
        "index": i,
        "name": f"t{i}",
        "type": "exec",
        "status": status,
        "attempt": 0,
        "failure_count": 0,
        "manager_id": None,
        "worker_id": None,
        "worker_name": None,
        "activity": "",
        "steps_done": 1,
        "steps_total": 4,
        "updated": NOW,
    }


def worker(i: int, status: str = "awake", task_id: int | None = None, cpu: float = 10.0) -> dict[str, Any]:
    return {
        "id": f"w{i}",
        "name": f"worker-{i}",
        "manager_id": 1,
        "platform": "linux",
        "task_types": ["exec"],
        "tags": ["gpu"],
        "software": {},
        "status": status,
        "status_requested": None,
        "current_task_id": task_id,
        "last_seen": NOW,
        "utilisation": {
            "time": datetime.now(UTC).isoformat(),
            "cpu_percent": cpu,
            "memory_percent": 40.0,
            "memory_used_mb": 1000.0,
        },
    }


def ev(i: int, type_: str, data: dict[str, Any]) -> Event:
    return Event(id=i, type=type_, time=datetime.now(UTC), data=data)


def test_ranges() -> None:
    assert contiguous_ranges([7, 1, 2, 3]) == [(1, 3), (7, 7)]
    assert contiguous_ranges([]) == []


def test_jobs_model_follows_events(qtmodeltester, qtbot) -> None:
    store = ClientStore()
    model = JobsModel(store)
    qtmodeltester.check(model)
    store.apply_event(ev(1, "job-created", job(1)))
    store.apply_event(ev(2, "job-created", job(2)))
    assert model.rowCount() == 0, "rows arrive at the next frame, not per event"
    with qtbot.waitSignal(model.flushed, timeout=1000):
        pass
    assert model.rowCount() == 2
    assert model.data(model.index(0, 0)) == "job 1"
    assert model.data(model.index(1, 1)) == "queued"
    assert model.data(model.index(1, 0), KeyRole) == 2
    qtmodeltester.check(model)

    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    store.apply_event(ev(3, "job-updated", job(2, "active", done=5)))
    store.apply_event(ev(4, "job-updated", job(2, "active", done=6)))
    model.flush()
    assert changed == [(1, 1)], "two updates of one row → one dataChanged"
    assert model.data(model.index(1, 1)) == "active"
    assert model.data(model.index(1, 2), ProgressRole) == 0.6
    assert model.data(model.index(1, 1), Qt.ItemDataRole.ForegroundRole) is not None

    store.apply_event(ev(5, "job-deleted", {"id": 1}))
    model.flush()
    assert model.rowCount() == 1
    assert model.data(model.index(0, 0)) == "job 2"
    assert store.last_event_id == 5
    qtmodeltester.check(model)


def test_add_then_remove_within_a_frame_never_shows(qtmodeltester) -> None:
    store = ClientStore()
    model = JobsModel(store)
    inserted: list[int] = []
    model.rowsInserted.connect(lambda *_: inserted.append(1))
    store.apply("job-created", job(1))
    store.apply("job-deleted", {"id": 1})
    model.flush()
    assert model.rowCount() == 0
    assert inserted == []
    qtmodeltester.check(model)


def test_burst_of_task_updates_is_one_flush(qtmodeltester, qtbot) -> None:
    store = ClientStore()
    store.select_job(1)
    store.load_tasks(1, [TaskRow.from_wire(task(i)) for i in range(2000)])
    model = TasksModel(store)
    model.flush()
    assert model.rowCount() == 2000
    flushes: list[int] = []
    changed: list[tuple[int, int]] = []
    model.flushed.connect(lambda: flushes.append(1))
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    for i in range(0, 2000, 2):
        store.apply("task-updated", task(i, status="active"))
    qtbot.waitUntil(lambda: bool(flushes), timeout=1000)
    qtbot.wait(50)
    assert len(flushes) == 1
    assert changed == [(0, 1998)], "very many scattered ranges are sent as one span"
    assert model.data(model.index(2, 2)) == "active"
    assert model.data(model.index(3, 2)) == "queued"
    changed.clear()
    for i in (5, 6, 7, 100):
        store.apply("task-updated", task(i, status="failed"))
    model.flush()
    assert changed == [(5, 7), (100, 100)], "a few ranges are sent as they are"
    # tasks of another job are not this table's business
    store.apply("task-updated", task(5000, job_id=2))
    assert 5000 not in store.tasks
    assert store.apply("job-tasks-changed", {"job_id": 1}) is Reload.TASKS
    assert store.apply("reset", {}) is Reload.ALL
    qtmodeltester.check(model)


def test_model_sorts_itself_and_keeps_selection_anchors(qtmodeltester) -> None:
    store = ClientStore()
    store.select_job(1)
    store.load_tasks(1, [TaskRow.from_wire(task(i)) for i in range(5)])
    model = TasksModel(store)
    model.flush()
    persistent = QPersistentModelIndex(model.index(1, 0))
    model.sort(0, Qt.SortOrder.DescendingOrder)
    assert [model.data(model.index(r, 0)) for r in range(5)] == [4, 3, 2, 1, 0]
    assert persistent.row() == 3 and persistent.data() == 1
    store.apply("task-updated", task(9))
    model.flush()
    assert model.data(model.index(5, 0)) == 9, "new rows go to the end until the next sort"
    qtmodeltester.check(model)


def test_workers_and_managers_models(qtmodeltester) -> None:
    store = ClientStore()
    store.load_managers([])
    workers = WorkersModel(store)
    managers = ManagersModel(store)
    store.apply(
        "manager-updated",
        {
            "id": 1,
            "name": "site-a",
            "status": "online",
            "last_seen": NOW,
            "created": NOW,
            "workers_total": 2,
            "workers_awake": 1,
        },
    )
    store.apply("worker-updated", worker(1, task_id=7, cpu=90))
    store.apply("worker-updated", worker(2, status="offline"))
    workers.flush()
    managers.flush()
    assert workers.rowCount() == 2
    assert workers.data(workers.index(0, 3)) == "site-a"
    assert workers.data(workers.index(0, 6)) == "90%"
    assert managers.data(managers.index(0, 2)) == "1/2"
    assert len(store.utilisation["w1"]) == 1
    sample = store.sample_farm()
    assert (sample.busy, sample.idle, sample.offline) == (1, 0, 1)
    qtmodeltester.check(workers)
    qtmodeltester.check(managers)


def test_proxy_filters_by_text_and_status(qtmodeltester) -> None:
    store = ClientStore()
    model = JobsModel(store)
    proxy = RecordFilterProxy()
    proxy.setSourceModel(model)
    store.load_jobs([])
    for i, (status, name) in enumerate([("queued", "shot 10"), ("active", "shot 20"), ("failed", "bake")]):
        store.apply("job-created", job(i + 1, status, name=name))
    model.flush()
    assert proxy.rowCount() == 3
    proxy.set_text("SHOT")
    assert proxy.rowCount() == 2
    proxy.set_statuses(frozenset({"active"}))
    assert proxy.rowCount() == 1
    assert proxy.data(proxy.index(0, 0)) == "shot 20"
    proxy.set_text("")
    proxy.set_statuses(None)
    proxy.sort(0, Qt.SortOrder.DescendingOrder)
    assert [proxy.data(proxy.index(r, 0)) for r in range(3)] == ["shot 20", "shot 10", "bake"]
    qtmodeltester.check(proxy)


def test_finished_jobs_are_announced_once() -> None:
    store = ClientStore()
    heard: list[tuple[int, str]] = []
    store.job_finished_listeners.append(lambda j: heard.append((j.id, j.status.value)))
    store.apply("job-created", job(1, "active"))
    store.apply("job-updated", job(1, "completed", done=10))
    store.apply("job-updated", job(1, "completed", done=10))
    store.apply("job-created", job(2, "active"))
    store.apply("job-updated", job(2, "failed"))
    assert heard == [(1, "completed"), (2, "failed")]


def test_unknown_rows_read_as_nothing() -> None:
    store = ClientStore()
    model = JobsModel(store)
    assert model.data(QModelIndex()) is None


def test_job_updated_without_settings_keeps_the_known_settings() -> None:
    store = ClientStore()
    store.apply("job-created", {**job(1), "settings": {"frames": "1-9"}})
    updated = {k: v for k, v in job(1, status="paused").items() if k != "settings"}
    store.apply("job-updated", updated)
    kept = store.jobs.get(1)
    assert kept is not None and kept.status == "paused" and kept.settings == {"frames": "1-9"}
    store.apply("job-updated", {**updated, "id": 2})  # a job not seen before: no settings known yet
    assert store.jobs.get(2) is not None


def test_a_big_jobs_tasks_show_a_page_at_a_time_and_events_met_meanwhile_win(qapp) -> None:
    """A million-task job showed nothing for 71 s while every page loaded: each page shows as it comes. A task
    event that arrives meanwhile still wins over a page read before it."""
    import asyncio
    from types import SimpleNamespace

    from app.models.sync import FarmSync
    from services.protocol.jobs import TaskSummary

    store = ClientStore()
    store.select_job(1)
    shown_before_each_read: list[int] = []

    class Client:
        async def list_tasks(
            self, job_id: int, limit: int, cursor: str | None = None, status: Any = ()
        ) -> SimpleNamespace:
            shown_before_each_read.append(len(store.tasks))
            page = int(cursor or 0)
            if page == 1:  # the task 1500 (on page 2) finished meanwhile; page 2 was read before that
                store.apply("task-updated", task(1500, status="completed"))
            items = [TaskSummary.model_validate(task(i)) for i in range(page * limit, (page + 1) * limit)]
            return SimpleNamespace(items=items, next_cursor=str(page + 1) if page < 2 else None)

        async def job_log(self, job_id: int) -> list[Any]:
            return []

    sync = FarmSync(store, Client())  # type: ignore[arg-type]
    store.begin_tasks_load()
    asyncio.run(sync._load_tasks(1))
    assert shown_before_each_read == [0, 1000, 2000]
    assert len(store.tasks) == 3000
    assert store.tasks.get(1500).status == "completed"  # type: ignore[union-attr]


def test_the_workers_model_holds_every_page_of_a_big_farms_workers(qapp, qtmodeltester) -> None:
    """The app read the first page of `GET /workers` only: a farm with more workers than one page showed part of
    them. The Server here answers two a page, whatever `limit` asks, the next page's cursor in `X-Next-Cursor`."""
    import asyncio

    import httpx

    from app.models.sync import FarmSync
    from services.protocol.server_client import ServerClient

    farm = [worker(i) for i in range(5)]

    def server(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        if path == "/jobs":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == "/managers":
            return httpx.Response(200, json=[])
        assert path == "/workers", path
        start = int(request.url.params.get("cursor", 0))
        more = {"X-Next-Cursor": str(start + 2)} if start + 2 < len(farm) else {}
        return httpx.Response(200, json=farm[start : start + 2], headers=more)

    store = ClientStore()
    workers = WorkersModel(store)
    client = ServerClient("http://127.0.0.1:9", "t" * 20, transport=httpx.MockTransport(server))
    sync = FarmSync(store, client)

    async def load() -> None:
        try:
            await sync.load_all()
        finally:
            await client.aclose()

    asyncio.run(load())
    workers.flush()
    assert workers.rowCount() == 5
    assert all(f"w{i}" in store.workers for i in range(5))
    qtmodeltester.check(workers)
