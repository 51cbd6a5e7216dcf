"""The actions offered follow the signed-in user's role, by the Server's rules, against a real Server and Manager:
an artist gets no worker actions and manages only their own jobs (a disabled action says why, and triggering it
asks nothing); a wrangler gets them all; a wrangler made an artist by an admin loses them at the next check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QAction
from app.ui.main_window import MainWindow
from services.protocol.admin_client import AdminClient
from services.protocol.failures import Dependency
from services.protocol.server_client import ServerClient
from services.protocol.states import Role
from tests.gui.conftest import until
from tests.gui.test_admin import _user_token
from tests.integration.test_server_jobs import render_job
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def manager(quick_lease_server: ServerProcess, tmp_path: Path) -> Iterator[ManagerProcess]:
    mgr = ManagerProcess(quick_lease_server.url, add_manager(quick_lease_server, "m1"), tmp_path / "manager").start()
    yield mgr
    mgr.stop()


@pytest.fixture
def worker(manager: ManagerProcess) -> Iterator[ScriptedWorker]:
    w = ScriptedWorker(manager.url, "render-01")
    w.register(manager.registration_secret)
    w.sign_on()
    yield w
    w.close()


def _submit(server: ServerProcess, token: str, name: str) -> int:
    h = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{server.url}{API}/jobs", json=render_job(name), headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


class Window:
    """A main window signed in with one token, and what the test asks of it."""

    def __init__(self, qtbot: Any, server: ServerProcess, token: str) -> None:
        self.asked: list[str] = []
        self.w = MainWindow(
            FarmSync(ClientStore(), ServerClient(server.url, token)), token, confirm=self._confirm, manager_url=""
        )
        qtbot.addWidget(self.w)

    def _confirm(self, title: str, _text: str) -> bool:
        self.asked.append(title)
        return False

    async def start(self, role: Role, jobs: int) -> None:
        self.w.sync.start()
        await until(lambda: self.w.sync.state == ConnectionState.CONNECTED, within=30, what="connected")
        await until(lambda: self.w.admin.role == role, within=30, what=f"the role {role} learned")
        await until(lambda: self._rows(self.w.workers.model) == 1, within=60, what="the worker row")
        await until(lambda: self._rows(self.w.jobs.jobs_model) == jobs, within=30, what="the job rows")

    @staticmethod
    def _rows(model: Any) -> int:
        model.flush()
        return int(model.rowCount())

    def select_worker(self) -> None:
        self.w.workers.view.selectRow(0)

    def select_jobs(self, *job_ids: int) -> None:
        jobs = self.w.jobs
        jobs.jobs_view.clearSelection()
        selection = jobs.jobs_view.selectionModel()
        flags = type(selection).SelectionFlag.Select | type(selection).SelectionFlag.Rows  # added, as Ctrl-click
        for job_id in job_ids:
            row = jobs.jobs_model.row_of(job_id)
            assert row is not None
            selection.select(jobs.jobs_proxy.mapFromSource(jobs.jobs_model.index(row, 0)), flags)
        assert sorted(jobs.selected_job_ids()) == sorted(job_ids)

    def worker_actions(self) -> list[QAction]:
        return [*self.w.workers.actions_.all, self.w.workers.schedule_action]

    def job_actions(self) -> list[QAction]:
        return list(self.w.jobs.job_actions.all)


def _enabled(actions: list[QAction]) -> dict[str, bool]:
    return {a.text(): a.isEnabled() for a in actions}


def _all(actions: list[QAction], on: bool) -> bool:
    return all(a.isEnabled() == on for a in actions) and len(actions) > 0


def test_actions_follow_the_role(qloop, qtbot, quick_lease_server: ServerProcess, worker: ScriptedWorker) -> None:
    server = quick_lease_server
    ana = _user_token(server, "ana", "artist")
    carmen = _user_token(server, "carmen", "wrangler")
    own = _submit(server, ana, "ana-shot")
    others = _submit(server, server.admin_token, "admin-shot")
    artist = Window(qtbot, server, ana)
    wrangler = Window(qtbot, server, carmen)

    async def scenario() -> None:
        await artist.start(Role.ARTIST, jobs=2)
        await wrangler.start(Role.WRANGLER, jobs=2)

        # the artist: no worker actions, each saying why
        artist.select_worker()
        assert _all(artist.worker_actions(), False), _enabled(artist.worker_actions())
        assert all("wrangler or admin role" in a.toolTip() for a in artist.worker_actions())
        artist.w.workers.actions_.forget.trigger()
        assert artist.asked == []  # a disabled action asks nothing and sends nothing
        # the artist's own job: every job action
        artist.select_jobs(own)
        assert _all(artist.job_actions(), True), _enabled(artist.job_actions())
        assert artist.w.jobs.job_actions.delete.statusTip() == ""
        # another user's job, alone or with the artist's own: none, and the tooltip names whose it is
        for chosen in ((others,), (own, others)):
            artist.select_jobs(*chosen)
            assert _all(artist.job_actions(), False), (chosen, _enabled(artist.job_actions()))
            tip = artist.w.jobs.job_actions.delete.toolTip()
            assert "own jobs" in tip and "admin" in tip
        artist.w.jobs.job_actions.delete.trigger()
        assert artist.asked == []
        # the Failures tab's buttons too (they were offered, and met the Server's refusal): with a failed dependency
        failures = artist.w.jobs.failures
        for job_id, offered in ((others, False), (own, True)):
            artist.select_jobs(job_id)
            await until(lambda job_id=job_id: failures.job_id == job_id, what="the failures of the job")
            failures.dependencies = [Dependency(job_id=99, name="dep", status="failed", blocking=True)]
            failures._enable()
            assert failures.release_button.isEnabled() is offered and failures.cancel_button.isEnabled() is offered
            assert ("own jobs" in failures.release_button.toolTip()) is not offered

        # the wrangler: everything, on any job
        wrangler.select_worker()
        assert _all(wrangler.worker_actions(), True), _enabled(wrangler.worker_actions())
        wrangler.select_jobs(own, others)
        assert _all(wrangler.job_actions(), True), _enabled(wrangler.job_actions())
        wrangler.w.jobs.job_actions.delete.trigger()
        assert wrangler.asked == ["Delete jobs"]  # offered, confirmed (and declined here)

        # an admin makes carmen an artist: at the next check her window follows
        admin = AdminClient(ServerClient(server.url, server.admin_token))
        users = {u.name: u for u in await admin.users()}
        await admin.change_user(users["carmen"].id, role=Role.ARTIST)
        await admin.client.aclose()
        assert await wrangler.w.admin.check() == Role.ARTIST
        assert _all(wrangler.worker_actions(), False), _enabled(wrangler.worker_actions())
        assert _all(wrangler.job_actions(), False), _enabled(wrangler.job_actions())

        await artist.w.shutdown()
        await wrangler.w.shutdown()

    qloop.run_until_complete(scenario())
