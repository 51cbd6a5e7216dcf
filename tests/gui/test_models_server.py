"""The live models against a real Server: rows follow submissions, changes and deletions, across a cut stream."""

from __future__ import annotations

from pathlib import Path

from app.models.farm_models import JobsModel, TasksModel
from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from services.protocol.jobs import JobAction
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.services import ServerProcess


def exec_job(name: str, frames: str = "1-6") -> dict[str, object]:
    return {"name": name, "type": "exec", "settings": {"command": ["sleep", "1"], "frames": frames}}


def column_of(model: JobsModel, row: int, title: str) -> object:
    col = [c.title for c in model.columns].index(title)
    return model.data(model.index(row, col))


def find_row(model: JobsModel | TasksModel, key: int) -> int | None:
    model.flush()
    return model.row_of(key)


def test_models_follow_a_real_server(qloop, qtmodeltester, fresh_server: ServerProcess) -> None:
    async def scenario() -> None:
        actor = ServerClient(fresh_server.url, fresh_server.admin_token)
        early = await actor.submit_job(exec_job("before the app"))
        store = ClientStore()
        jobs = JobsModel(store)
        tasks = TasksModel(store)
        sync = FarmSync(store, ServerClient(fresh_server.url, fresh_server.admin_token))
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        await until(lambda: find_row(jobs, early.id) is not None, what="the snapshot")

        job = await actor.submit_job(exec_job("live"))
        await until(lambda: find_row(jobs, job.id) is not None, what="the new job's row")
        row = jobs.row_of(job.id)
        assert row is not None
        assert column_of(jobs, row, "Name") == "live"
        assert column_of(jobs, row, "Status") == "queued"

        sync.select_job(job.id)
        await until(lambda: tasks.rowCount() == 6, what="the job's 6 tasks")
        await until(lambda: len(store.job_log) >= 1, what="the job log")

        await actor.job_action(job.id, JobAction.PAUSE)
        await until(lambda: column_of(jobs, jobs.row_of(job.id) or 0, "Status") == "paused", what="paused")
        await until(
            lambda: all(t.status == "paused" for t in store.tasks.values()) and not tasks.has_pending(),
            what="paused tasks",
        )
        await actor.job_action(job.id, JobAction.CANCEL)
        await until(lambda: column_of(jobs, jobs.row_of(job.id) or 0, "Status") == "canceled", what="canceled")
        await actor.delete_job(job.id)
        await until(lambda: find_row(jobs, job.id) is None, what="the row to go")
        assert store.selected_job_id is None
        qtmodeltester.check(jobs)
        qtmodeltester.check(tasks)
        await sync.stop()
        await sync.client.aclose()
        await actor.aclose()

    qloop.run_until_complete(scenario())


def test_cut_stream_resumes_without_missing_a_change(qloop, tmp_path: Path) -> None:
    """Stop the Server; change the farm through another Server process on the same data while the app
    is cut off; restart on the original port: the app resumes with Last-Event-ID and sees every change."""
    data = tmp_path / "server"
    main = ServerProcess(data_dir=data, database_url=None).start()
    token = main.admin_token
    other: ServerProcess | None = None

    async def scenario() -> None:
        nonlocal other
        actor = ServerClient(main.url, token)
        a = await actor.submit_job(exec_job("a"))
        b = await actor.submit_job(exec_job("b"))
        await actor.submit_job(exec_job("d"))  # so b is not the newest id (SQLite may reuse that one)
        await actor.aclose()
        store = ClientStore()
        jobs = JobsModel(store)
        sync = FarmSync(store, ServerClient(main.url, token))
        states: list[str] = []
        sync.state_changed.connect(states.append)
        sync.start()
        try:
            await cut_and_resume(store, jobs, sync, states, a.id, b.id)
        finally:
            await sync.stop()
            await sync.client.aclose()

    async def cut_and_resume(
        store: ClientStore, jobs: JobsModel, sync: FarmSync, states: list[str], a_id: int, b_id: int
    ) -> None:
        nonlocal other
        await until(lambda: find_row(jobs, b_id) is not None, what="snapshot")
        main.stop()
        await until(lambda: sync.state == ConnectionState.RECONNECTING, what="reconnecting")
        other = ServerProcess(data_dir=data, database_url=None).start()
        async with ServerClient(other.url, token) as side:
            await side.job_action(a_id, JobAction.PAUSE)
            await side.job_action(b_id, JobAction.CANCEL)
            await side.delete_job(b_id)
            c = await side.submit_job(exec_job("made while cut off"))
        other.stop()
        assert find_row(jobs, c.id) is None
        main.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, within=20, what="connected again")
        await until(lambda: find_row(jobs, c.id) is not None, what="the job made while cut off")
        await until(lambda: find_row(jobs, b_id) is None, what="the deleted job to go")
        await until(lambda: store.jobs.items[a_id].status.value == "paused", what="a paused")
        assert "reconnecting" in states
        assert sync.reconnects >= 1

    try:
        qloop.run_until_complete(scenario())
    finally:
        main.stop()
        if other is not None:
            other.stop()
