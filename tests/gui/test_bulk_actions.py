"""Actions on many selected tasks: the ids come from the selection's ranges (a select-all of 100,000 rows froze
the window for seconds), the requests go a few at a time in the background, and the outcome (how many were
done, which were refused and why) stays in the message bar."""

from __future__ import annotations

import time

import httpx
import pytest

from app.models.store import ClientStore, TaskRow
from app.models.sync import ConnectionState, FarmSync
from app.ui import actions, bulk
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


class CountingTransport(httpx.AsyncBaseTransport):
    """Every request the app sends the Server, counted by method and route; `older`: answer the tasks' bulk route
    as a Server from before it does (405, its path being only a task's, which is GET)."""

    def __init__(self, older: bool = False) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.older = older
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        route = "/tasks/{id}/status" if path.startswith("/tasks/") and path.endswith("/status") else path
        self.sent.append(f"{request.method} {route}")
        if self.older and request.method == "POST" and path == "/tasks/bulk":
            detail = "POST is not allowed here; this path takes GET, HEAD"
            body = {"detail": detail, "errors": [{"field": "method", "message": detail}]}
            return httpx.Response(405, json=body, headers={"Allow": "GET, HEAD"}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def count(self, route: str) -> int:
        return self.sent.count(route)


@pytest.mark.parametrize("older", [False, True], ids=["bulk-route", "older-server"])
def test_select_all_requeue_sends_the_bulk_route_in_chunks(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, older: bool
) -> None:
    """30 selected tasks, 8 ids a request (the Server takes 10,000): 4 requests to the bulk route, none per task;
    a Server without the route (405) gets one request per task, and the same outcome."""
    monkeypatch.setattr(actions, "BULK_MAX", 8)
    token = fresh_server.admin_token
    h = {"Authorization": f"Bearer {token}"}
    settings = {"command": ["sleep", "60"], "frames": "1-30", "chunk_size": 1}
    r = httpx.post(
        f"{fresh_server.url}/api/v1/jobs", json={"name": "many", "type": "exec", "settings": settings}, headers=h
    )
    assert r.status_code == 201, r.text
    job_id = int(r.json()["id"])
    r = httpx.post(f"{fresh_server.url}/api/v1/jobs/{job_id}/status", json={"action": "cancel"}, headers=h)
    assert r.status_code == 200, r.text
    transport = CountingTransport(older)
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token, transport=transport))
    window = MainWindow(sync, token, confirm=lambda title, text: True)
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        window.jobs.select_job(job_id)
        await until(lambda: window.jobs.tasks_model.rowCount() == 30, what="the tasks")
        window.jobs.tasks_view.selectAll()
        window.jobs.task_actions.requeue.trigger()
        await until(lambda: "Requeued" in window.message_bar.label.text(), within=60, what="the outcome")
        assert window.message_bar.label.text() == "Requeued 30 of 30 tasks"
        await window.shutdown()

    qloop.run_until_complete(scenario())
    if older:
        assert (transport.count("POST /tasks/bulk"), transport.count("POST /tasks/{id}/status")) == (1, 30)
    else:
        assert (transport.count("POST /tasks/bulk"), transport.count("POST /tasks/{id}/status")) == (4, 0)
    r = httpx.get(f"{fresh_server.url}/api/v1/jobs/{job_id}", headers=h)
    assert r.json()["tasks_canceled"] == 0  # every one requeued
