"""The submission dialog with an Open Job Description template: the parameter form comes from the template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from app.ui.openjd_form import OpenJDForm
from app.ui.submit_dialog import SubmitDialog
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.services import ROOT, ServerProcess

TEMPLATE = ROOT / "tests" / "support" / "openjd" / "several_steps.yaml"


def test_template_file_builds_the_parameter_form_and_submits(
    qloop, qtbot, fresh_server: ServerProcess, tmp_path: Path
) -> None:
    client = ServerClient(fresh_server.url, fresh_server.admin_token)
    dialog = SubmitDialog(client)
    qtbot.addWidget(dialog)
    submitted: list[Any] = []
    dialog.submitted.connect(submitted.append)

    async def scenario() -> None:
        await dialog.load(preferred="openjd")
        # choosing the type in the box builds the form once more: use the form that stays
        await until(lambda: dialog._pending is None or dialog._pending.done(), what="the form")
        form = dialog.form
        assert isinstance(form, OpenJDForm)
        # a missing file is reported under the template field, not as a crash
        form.set_value("template", str(tmp_path / "missing.yaml"))
        assert "cannot read" in form.errors["template"].text()
        assert await dialog.send() is None

        form.set_value("template", str(TEMPLATE))
        params = form.params
        assert params is not None
        assert [s.name for s in params.specs] == ["Shot", "Frames", "OutDir"]
        assert [s.required for s in params.specs] == [False, False, True]
        assert dialog.name.text() == "openjd demo {{Param.Shot}}"
        # OutDir has no default: checked before sending
        assert await dialog.send() is None
        assert params.errors["OutDir"].text() == "is required"

        # a value the Server refuses comes back with openjd-model's reason
        params.set_value("OutDir", str(tmp_path / "out"))
        params.set_value("Frames", "3-1x")
        assert await dialog.send() is None
        # "3-1x" is a STRING for the template; the Server's openjd-model refuses it as the step's range
        assert "Unexpected 'x' in '3-1x'" in form.errors["template"].text(), form.errors["template"].text()
        assert dialog.message.text().startswith("The Server refused the job")

        params.set_value("Frames", "1-2")
        dialog.name.setText("from the dialog")
        job = await dialog.send()
        assert job is not None and job.type == "openjd" and job.tasks_total == 2 * 2 + 1
        await client.aclose()

    qloop.run_until_complete(scenario())
    assert submitted
    detail = httpx.get(f"{fresh_server.url}/api/v1/jobs/{submitted[0].id}", headers=fresh_server.headers()).json()
    assert detail["settings"]["parameters"] == {"OutDir": str(tmp_path / "out"), "Frames": "1-2", "Shot": "sh010"}


def test_a_job_link_selects_its_job(qloop, qtbot, fresh_server: ServerProcess) -> None:
    from app.models.store import ClientStore
    from app.models.sync import FarmSync
    from app.ui.main_window import MainWindow

    body = {"name": "linked", "type": "exec", "settings": {"command": ["true"]}}
    job_id = httpx.post(f"{fresh_server.url}/api/v1/jobs", json=body, headers=fresh_server.headers()).json()["id"]
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, fresh_server.admin_token))
    window = MainWindow(sync, fresh_server.admin_token, confirm=lambda title, text: True)
    qtbot.addWidget(window)
    window.show()

    async def scenario() -> None:
        sync.start()
        assert await window.reveal_job(job_id)
        assert window.jobs.selected_job_ids() == [job_id]
        assert not await window.reveal_job(job_id + 1000, within=1)
        assert f"Job {job_id + 1000} was not found" in window.message_bar.label.text()

    qloop.run_until_complete(scenario())
