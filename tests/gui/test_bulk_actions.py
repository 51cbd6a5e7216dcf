"""Actions on many selected tasks: the ids come from the selection's ranges (a select-all of 100,000 rows froze
the window for seconds), the requests go a few at a time in the background, and the outcome (how many were
done, which were refused and why) stays in the message bar."""

from __future__ import annotations

import time

import httpx
import pytest

from app.models.store import ClientStore, TaskRow
from app.models.sync import ConnectionState, FarmSync
from app.ui import bulk
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from tests.bench.bench_gui_tasks_model import task_dict
from tests.gui.conftest import until
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


def test_select_all_of_100000_tasks_is_quick(qloop, qapp, qtbot) -> None:
    store = ClientStore()
    sync = FarmSync(store, ServerClient("http://127.0.0.1:9", "unused"))  # never started: no network here
    window = MainWindow(sync, "unused", confirm=lambda title, text: True)
    qtbot.addWidget(window)
    window.show()
    store.select_job(1)
    store.load_tasks(1, [TaskRow.from_wire(task_dict(i)) for i in range(100_000)])
    window.jobs.tasks_model.flush()
    view = window.jobs.tasks_view
    window.jobs.detail_tabs.setCurrentWidget(view)
    qapp.processEvents()
    started = time.perf_counter()
    view.selectAll()
    qapp.processEvents()  # painted, the actions enabled
    ids = window.jobs.selected_task_ids()
    elapsed = time.perf_counter() - started
    assert len(ids) == 100_000 and window.jobs.task_actions.requeue.isEnabled()
    assert elapsed < 3.0, f"{elapsed:.2f} s to select all 100,000 tasks (it took 4 to 10 s; 25 ms now)"
    qloop.run_until_complete(window.shutdown())


def test_cancel_many_tasks_reports_how_many_and_the_refusals(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "PROGRESS_SECONDS", 0.0)  # a progress line after every answer
    token = fresh_server.admin_token
    settings = {"command": ["sleep", "60"], "frames": "1-30", "chunk_size": 1}
    h = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        f"{fresh_server.url}/api/v1/jobs", json={"name": "many", "type": "exec", "settings": settings}, headers=h
    )
    assert r.status_code == 201, r.text
    job_id = int(r.json()["id"])
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token))
    window = MainWindow(sync, token, confirm=lambda title, text: True)
    qtbot.addWidget(window)
    window.show()
    progress: list[str] = []
    window.jobs.task_actions.done.connect(progress.append)

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        window.jobs.select_job(job_id)
        await until(lambda: window.jobs.tasks_model.rowCount() == 30, what="the tasks")
        ids = [int(window.jobs.tasks_model.key_at(r)) for r in range(30)]  # type: ignore[call-overload]
        for task_id in ids[:2]:  # canceled already: canceling them again is refused
            await sync.client.task_action(task_id, "cancel")
        window.jobs.tasks_view.selectAll()
        window.jobs.task_actions.cancel.trigger()
        await until(lambda: "refused" in window.message_bar.label.text(), within=60, what="the outcome")
        text = window.message_bar.label.text()
        assert text.startswith("Canceled 28 of 30 tasks; 2 refused: task "), text
        assert any(p.startswith("canceling tasks: ") for p in progress), progress
        await window.shutdown()

    qloop.run_until_complete(scenario())
