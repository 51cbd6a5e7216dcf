"""The Failures tab against a real Server: a job's blocklist as its Manager reported it, cleared per entry;
a job waiting on a canceled job says so and is released or canceled from the app; an artist's clear of another
user's job is refused by the Server and the refusal is shown."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QTableWidget
from app.ui.jobs_panel import JobsPanel
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.integration.test_link_server import new_link, push
from tests.support.manager import API
from tests.support.services import ServerProcess


def submit(admin: httpx.Client, name: str, **extra: Any) -> int:
    body = {"name": name, "type": "exec", "settings": {"command": ["true"], "task_type": "gui-failures"}, **extra}
    r = admin.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def entry(job_id: int, worker: str, failures: int) -> dict[str, Any]:
    return {"job_id": job_id, "worker_id": worker, "task_type": "gui-failures", "worker_name": worker,
            "failures": failures, "threshold": 2}  # fmt: skip


def worker_reports(*ids: str) -> list[dict[str, Any]]:
    return [{"id": w, "name": w, "platform": "linux", "task_types": ["gui-failures"], "tags": [], "status": "awake"}
            for w in ids]  # fmt: skip


def row_of(panel: JobsPanel, job_id: int) -> int | None:
    panel.jobs_model.flush()
    return panel.jobs_model.row_of(job_id)


def cell(table: QTableWidget, row: int, col: int) -> str:
    item = table.item(row, col)
    return item.text() if item is not None else ""


def test_the_failures_tab_shows_clears_releases_and_cancels(qloop, qtbot, fresh_server: ServerProcess) -> None:
    admin = httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30)
    blocked_job = submit(admin, "flaky scene")
    first = submit(admin, "plates")
    waiting = submit(admin, "comp", depends_on=[first])
    also_waiting = submit(admin, "grade", depends_on=[first])
    with new_link(fresh_server) as link:
        reported = worker_reports("ws-anna", "ws-bo")  # a Manager's entries are taken for its own workers only
        r = push(
            link, [], workers=reported, blocklist=[entry(blocked_job, "ws-anna", 2), entry(blocked_job, "ws-bo", 1)]
        )
        assert r.status_code == 200, r.text
    assert admin.post(f"/jobs/{first}/status", json={"action": "cancel"}).status_code == 200

    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, fresh_server.admin_token))
    asked: list[str] = []

    def confirm(title: str, _text: str) -> bool:
        asked.append(title)
        return True

    panel = JobsPanel(sync, confirm=confirm)
    qtbot.addWidget(panel)
    panel.show()
    failures = panel.failures
    table = failures.blocklist

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        await until(lambda: row_of(panel, also_waiting) is not None, what="the jobs")
        panel.select_job(blocked_job)
        await until(lambda: failures.job_id == blocked_job and table.rowCount() == 2, what="the blocklist")
        rows = {cell(table, r, 0): cell(table, r, 3) for r in range(2)}
        assert rows["ws-anna"] == "no (blocklisted)" and rows["ws-bo"].startswith("yes (1 more")
        assert "1 of 2 workers" in failures.blocklist_note.text()
        assert not failures.clear_button.isEnabled()  # nothing selected
        anna = next(r for r in range(2) if cell(table, r, 0) == "ws-anna")
        table.selectRow(anna)
        assert failures.clear_button.isEnabled()
        failures.clear_button.click()
        await until(lambda: table.rowCount() == 1, what="the cleared entry gone")
        assert cell(table, 0, 0) == "ws-bo"
        assert [e.worker_id for e in await sync.client.blocklist(blocked_job)] == ["ws-bo"]  # at the Server

        panel.select_job(waiting)
        await until(lambda: failures.job_id == waiting and failures.deps.rowCount() == 1, what="its dependency")
        assert f"job {first} (plates) canceled" in failures.deps_note.text()
        assert failures.release_button.isEnabled() and failures.cancel_button.isEnabled()
        failures.release_button.click()
        await until(lambda: admin.get(f"/jobs/{waiting}").json()["depends_on"] == [], what="released")
        assert asked == ["Release job"]
        await until(lambda: not failures.release_button.isEnabled(), what="nothing left to release")

        panel.select_job(also_waiting)
        await until(lambda: failures.job_id == also_waiting and failures.cancel_button.isEnabled(), what="loaded")
        failures.cancel_button.click()
        await until(lambda: admin.get(f"/jobs/{also_waiting}").json()["status"] == "canceled", what="canceled")
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())
    admin.close()


def test_an_artists_clear_of_another_users_job_is_refused_and_shown(qloop, qtbot, fresh_server: ServerProcess) -> None:
    admin = httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30)
    job = submit(admin, "the wrangler's")
    with new_link(fresh_server) as link:
        push(link, [], workers=worker_reports("ws-cy"), blocklist=[entry(job, "ws-cy", 3)])
    name = f"ana-{uuid.uuid4().hex[:6]}"
    assert admin.post("/users", json={"name": name, "role": "artist"}).status_code == 201
    token = admin.post("/tokens", json={"user": name}).json()["token"]
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token))
    errors: list[str] = []
    sync.error.connect(errors.append)
    panel = JobsPanel(sync, confirm=lambda _t, _x: True)
    qtbot.addWidget(panel)
    failures = panel.failures

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        await until(lambda: row_of(panel, job) is not None, what="the job")
        panel.select_job(job)
        await until(lambda: failures.blocklist.rowCount() == 1, what="the blocklist, readable by anyone")
        failures.blocklist.selectRow(0)
        failures.clear_button.click()
        await until(lambda: bool(errors), what="the refusal")
        assert "artists manage only their own jobs" in errors[0]
        assert len(await sync.client.blocklist(job)) == 1  # unchanged at the Server
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())
    admin.close()
