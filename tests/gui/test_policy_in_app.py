"""The desktop app follows the farm's policy before sending, against a real Server with a policy file: an artist's
submission dialog lists `exec` (wranglers' and admins' by default) disabled with a tooltip saying for whom, Clone
and Resubmit of an exec job are disabled saying why, and every priority field stops at the artist role's cap
(`[priority] artist = 60`), or at a job's own priority when a wrangler raised it past the cap. Before, the app
offered all of these and the user met the Server's 403 after filling the form in (an audit of the app)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QStandardItemModel
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from services.protocol.states import Role
from tests.gui.conftest import until
from tests.gui.test_admin import _user_token
from tests.integration.test_server_jobs import render_job
from tests.support.manager import API
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)
CAP = 60


@pytest.fixture
def policy_server(tmp_path: Path) -> Iterator[ServerProcess]:
    data = tmp_path / "server"
    data.mkdir()
    (data / "policy.toml").write_text(f"[priority]\nartist = {CAP}\n")  # [submit]: the default, exec not for artists
    srv = ServerProcess(data_dir=data, database_url=None).start()
    yield srv
    srv.stop()


def _submit(server: ServerProcess, token: str, job: dict[str, object]) -> int:
    r = httpx.post(f"{server.url}{API}/jobs", json=job, headers=server.headers(token), timeout=30)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_an_artist_is_offered_only_the_job_types_and_priorities_the_farm_allows(
    qloop, qtbot, policy_server: ServerProcess
) -> None:
    server = policy_server
    ana = _user_token(server, "ana", "artist")
    own = _submit(server, ana, render_job("ana-shot"))
    raised = _submit(server, ana, render_job("ana-raised"))
    r = httpx.post(f"{server.url}{API}/jobs/{raised}/priority", json={"priority": 80}, headers=server.headers())
    assert r.status_code == 200, r.text  # a wrangler's (here the admin's) raise past the artists' cap
    shell = _submit(server, server.admin_token, {"name": "cleanup", "type": "exec", "settings": {"command": ["true"]}})

    asked: list[str] = []

    def confirm(_title: str, text: str) -> bool:
        asked.append(text)
        return True

    window = MainWindow(FarmSync(ClientStore(), ServerClient(server.url, ana)), ana, confirm=confirm, manager_url="")
    qtbot.addWidget(window)
    jobs = window.jobs
    details = jobs.details
    highest_offered: list[int] = []

    def ask_int(_title: str, _label: str, value: int, highest: int) -> int | None:
        highest_offered.append(highest)
        return None  # dismissed: nothing sent

    jobs.job_actions.ask_int = ask_int

    def select(*job_ids: int) -> None:
        jobs.jobs_view.clearSelection()
        selection = jobs.jobs_view.selectionModel()
        flags = type(selection).SelectionFlag.Select | type(selection).SelectionFlag.Rows
        for job_id in job_ids:
            row = jobs.jobs_model.row_of(job_id)
            assert row is not None
            selection.select(jobs.jobs_proxy.mapFromSource(jobs.jobs_model.index(row, 0)), flags)

    def rows() -> int:
        jobs.jobs_model.flush()
        return int(jobs.jobs_model.rowCount())

    async def scenario() -> None:
        window.sync.start()
        await until(lambda: window.sync.state == ConnectionState.CONNECTED, within=30, what="connected")
        await until(lambda: window.access.role == Role.ARTIST, within=30, what="the role learned")
        assert window.access.priority_cap == CAP
        await until(lambda: rows() == 3, what="the job rows")

        # the submission dialog: exec listed, disabled, saying for whom; another type chosen; priority up to the cap
        dialog = window.open_submit_dialog()
        await until(lambda: dialog.form_type is not None, within=30, what="the dialog's form")
        box = dialog.type_box
        model = box.model()
        assert isinstance(model, QStandardItemModel)
        item = model.item(box.findData("exec"))
        assert not item.isEnabled()
        assert "wrangler" in item.toolTip() and "admin" in item.toolTip() and "ana is artist" in item.toolTip()
        assert box.currentData() != "exec" and dialog.form_type != "exec"
        assert model.item(box.findData("blender-render")).isEnabled()
        assert dialog.priority.maximum() == CAP and str(CAP) in dialog.priority.toolTip()
        dialog.reject()

        # Clone and Resubmit of the admin's exec job: disabled, saying why; called anyway, no form and no request
        jobs.select_job(shell)
        await until(lambda: details.job_id == shell and details.job_types is not None, what="the exec job's details")
        for button in (details.clone_button, details.resubmit_button):
            assert not button.isEnabled() and "wrangler" in button.toolTip(), button.toolTip()
        assert await details.clone() is None and details.dialogs == []
        assert await details.resubmit() is None and asked == []
        assert "reserves exec jobs" in details.message.text()

        # her own job a wrangler raised to 80: Clone offers the cap at most (and says so), Resubmit sends the cap
        jobs.select_job(raised)
        await until(lambda: details.job_id == raised, what="the raised job's details")
        assert details.clone_button.isEnabled() and details.resubmit_button.isEnabled()
        clone = await details.clone()
        assert clone is not None and clone.priority.maximum() == CAP and clone.priority.value() == CAP
        assert "priority 80" in clone.message.text()
        clone.reject()
        made = await details.resubmit()
        assert made is not None and made.priority == CAP, details.message.text()
        assert f"at priority {CAP}" in asked[-1]

        # the priority dialog: her own job up to the cap; the raised one up to its own 80 (lowered, not raised);
        # both at once: what each of them takes
        for chosen, highest in (((own,), CAP), ((raised,), 80), ((own, raised), CAP)):
            select(*chosen)
            jobs.job_actions.priority.trigger()
            assert highest_offered[-1] == highest, chosen

        await window.shutdown()

    qloop.run_until_complete(scenario())
