"""A job with more tasks than the app holds (a real Server, the cap made small): the first ones in order are
shown, and after them only those assigned, running or failed; the Tasks tab says so; a task that changes later
comes in with its event; a smaller job shows whole again."""

from __future__ import annotations

import httpx
import pytest

from app.models import sync as sync_module
from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.ui.jobs_panel import JobsPanel
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


def exec_job(name: str, frames: str) -> dict[str, object]:
    return {"name": name, "type": "exec", "settings": {"command": ["true"], "frames": frames, "chunk_size": 1}}


def test_a_job_bigger_than_the_app_holds_shows_its_first_tasks_and_those_needing_a_look(
    qloop, qtbot, fresh_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "TASKS_SHOWN", 1000)
    monkeypatch.setattr(sync_module, "TASK_PAGE", 300)  # pages end inside the cut too
    h = fresh_server.headers()
    big = httpx.post(f"{fresh_server.url}{API}/jobs", json=exec_job("big", "1-2500"), headers=h).json()
    small = httpx.post(f"{fresh_server.url}{API}/jobs", json=exec_job("small", "1-5"), headers=h).json()
    manager = {"Authorization": f"Bearer {add_manager(fresh_server, 'm1')}"}
    # the first 1,200 tasks of the big job go to a Manager (assigned): 200 of them lie after the first 1,000
    claimed = httpx.post(f"{fresh_server.url}{API}/manager/claim", json={"capacity": 1200, "task_types": ["exec"]},
                         headers=manager, timeout=30).json()  # fmt: skip
    assert sum(t["job_id"] == big["id"] for t in claimed["tasks"]) == 1200

    store = ClientStore()
    sync = FarmSync(store, ServerClient(fresh_server.url, fresh_server.admin_token))
    panel = JobsPanel(sync)
    qtbot.addWidget(panel)
    tab = panel.detail_tabs.indexOf(panel.tasks_view)

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED and big["id"] in store.jobs, what="connected")
        panel.select_job(big["id"])
        await until(lambda: len(store.tasks) == 1200, what="the first tasks and the assigned ones after them")
        indexes = sorted(t.index for t in store.tasks.values())
        assert indexes == list(range(1200))  # 0-999 in order, 1000-1199 assigned; the queued rest is not held
        assert store.tasks_cut == 1000
        assert panel.detail_tabs.tabText(tab) == "Tasks (first 1,000 of 2,500)"
        assert "assigned, running or failed" in panel.detail_tabs.tabToolTip(tab)

        # a task far after the cut that changes comes in with its event
        far = (await sync.client.all_tasks(big["id"]))[-1]
        assert far.index == 2499 and far.id not in store.tasks
        await sync.client.task_action(far.id, "cancel", "not needed")
        await until(lambda: far.id in store.tasks, what="the canceled task's event")

        panel.select_job(small["id"])
        await until(lambda: len(store.tasks) == 5, what="the small job's tasks")
        assert store.tasks_cut is None and panel.detail_tabs.tabText(tab) == "Tasks"
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())


def test_the_tasks_tab_follows_the_jobs_total_when_it_changes(qloop, qtbot) -> None:
    """A job selected while still being stored has no total yet: the tab's count follows the job's updates."""
    from tests.gui.test_models_plain import job

    store = ClientStore()
    panel = JobsPanel(FarmSync(store, ServerClient("http://127.0.0.1:9", "unused")))  # never started
    qtbot.addWidget(panel)
    tab = panel.detail_tabs.indexOf(panel.tasks_view)
    store.apply("job-created", {**job(7, status="under-construction"), "tasks_total": 0})
    store.select_job(7)
    store.set_tasks_cut(7, 1000)
    assert panel.detail_tabs.tabText(tab) == "Tasks (first 1,000 of 0)"
    store.apply("job-updated", {**job(7), "tasks_total": 2500})  # its total once stored
    store.set_job_log([])  # as the sync reads the selected job's log again after each change of it
    assert panel.detail_tabs.tabText(tab) == "Tasks (first 1,000 of 2,500)"
