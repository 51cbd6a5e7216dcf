"""The job details view against a real Server: settings as submitted and resolved with the farm's path
variables, the output folder, dependencies, tags, Manager and times; Clone and Resubmit accepted by the Server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models.columns import TIME_COLUMNS
from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QUrl
from app.ui.jobs_panel import JobsPanel
from app.ui.schema_form import SchemaForm
from services.protocol import resubmit
from services.protocol.server_answers import ApiError
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.lossy_proxy import LossyProxy
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess


@pytest.fixture
def farm_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Server publishing a path variable `render_root` for this machine's platform."""
    variables = tmp_path / "variables.json"
    roots = {"linux": str(tmp_path / "renders"), "windows": "R:\\renders", "macos": str(tmp_path / "renders")}
    variables.write_text(json.dumps({"render_root": roots}))
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None, extra_args=("--variables", str(variables)))
    srv.start()
    yield srv
    srv.stop()


RENDER = {
    "blendfile": "{render_root}/scenes/a.blend",
    "frames": "1-3",
    "chunk_size": 1,
    "output_path": "{render_root}/shot/frame_####",
}


class Panel:
    """A jobs panel on a live store, with a confirm answer and an "Open folder" that records what it opened."""

    def __init__(self, server: ServerProcess, answer: bool = True, url: str | None = None) -> None:
        self.store = ClientStore()
        self.sync = FarmSync(self.store, ServerClient(url or server.url, server.admin_token))
        self.asked: list[str] = []
        self.opened: list[QUrl] = []

        def confirm(_title: str, text: str) -> bool:
            self.asked.append(text)
            return answer

        self.panel = JobsPanel(self.sync, confirm=confirm)
        self.details = self.panel.details

        def open_url(url: QUrl) -> bool:
            self.opened.append(url)
            return True

        self.details.open_url = open_url

    async def start(self) -> None:
        self.sync.start()
        await until(lambda: self.sync.state == ConnectionState.CONNECTED, what="connected")

    async def show(self, job_id: int) -> None:
        await until(lambda: job_id in self.store.jobs.items, what=f"job {job_id} in the store")
        self.panel.select_job(job_id)
        await until(lambda: self.details.job_id == job_id, what="the details of the job")

    async def stop(self) -> None:
        await self.sync.stop()
        await self.sync.client.aclose()


def test_details_show_settings_resolved_output_dependencies_tags_and_manager(
    qloop, qtbot, farm_server: ServerProcess, tmp_path: Path
) -> None:
    p = Panel(farm_server)
    qtbot.addWidget(p.panel)

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            base = await actor.submit_job({"name": "base", "type": "exec",
                                           "settings": {"command": ["true"], "frames": "1"}})  # fmt: skip
            manager = await actor.create_manager(f"site-{uuid.uuid4().hex[:6]}")
            job = await actor.submit_job({"name": "shot", "type": "blender-render", "settings": RENDER,
                                          "tags": ["gpu"], "depends_on": [base.id], "manager_id": manager.id,
                                          "max_task_failures": 2})  # fmt: skip
        await p.start()
        await p.show(job.id)
        d = p.details
        await until(lambda: str(tmp_path / "renders") in d.settings_resolved.toPlainText(), what="variables")
        submitted = json.loads(d.settings_submitted.toPlainText())
        assert submitted["output_path"] == "{render_root}/shot/frame_####"
        resolved = json.loads(d.settings_resolved.toPlainText())
        assert resolved["output_path"] == f"{tmp_path}/renders/shot/frame_####"
        assert resolved["blendfile"] == f"{tmp_path}/renders/scenes/a.blend"
        assert d.fields["tags"].text() == "gpu"
        assert d.fields["depends"].text() == f"base (#{base.id}, queued)"
        assert d.fields["manager"].text() == f"{manager.name} (#{manager.id})"
        assert d.fields["failures"].text().startswith("2 per task")
        assert d.fields["time"].text() == "not started"
        # the output folder, as this machine reads it; "Open folder" once it exists
        folder = tmp_path / "renders" / "shot"
        assert d.output.text() == str(folder)
        assert not d.open_folder_button.isEnabled()
        folder.mkdir(parents=True)
        d.refresh()
        assert d.open_folder_button.isEnabled()
        d.open_folder_button.click()
        assert p.opened == [QUrl.fromLocalFile(str(folder))]
        await p.stop()

    qloop.run_until_complete(scenario())


def test_times_and_eta_show_in_the_tables_and_the_details(qloop, qtbot, fresh_server: ServerProcess) -> None:
    p = Panel(fresh_server)
    qtbot.addWidget(p.panel)
    ttype = f"t{uuid.uuid4().hex[:8]}"
    token = add_manager(fresh_server, "m")
    workers = [{"id": f"w{i}", "name": f"w{i}", "platform": "linux", "task_types": [ttype], "tags": [],
                "status": "awake"} for i in range(2)]  # fmt: skip
    seq = 0

    def ran(c: dict[str, Any], status: str, started: datetime, ended: datetime | None = None) -> dict[str, Any]:
        times = {"started": started.isoformat()} | ({"time": ended.isoformat()} if ended else {})
        return {"task_id": c["id"], "attempt": c["attempt"], "status": status, **times}

    async def scenario() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        link = httpx.AsyncClient(base_url=fresh_server.url + API + "/manager", headers=headers, timeout=30)

        async def push(*updates: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            r = await link.post("/updates", json={"seq": seq, "task_updates": list(updates), "workers": workers})
            assert r.status_code == 200 and r.json()["rejected"] == [], r.text

        settings = {"command": ["true"], "frames": "1-5", "task_type": ttype}
        async with ServerClient(fresh_server.url, fresh_server.admin_token) as actor:
            job = await actor.submit_job({"name": "timed", "type": "exec", "settings": settings})
        await p.start()
        await p.show(job.id)
        claimed = (await link.post("/claim", json={"capacity": 10, "task_types": [ttype]})).json()["tasks"]
        now = datetime.now(UTC)
        await push(*[ran(c, "completed", now - timedelta(seconds=20 + 4 * i), now - timedelta(seconds=16 + 4 * i))
                     for i, c in enumerate(claimed[:2])])  # fmt: skip
        await until(lambda: p.store.jobs.items[job.id].tasks_timed == 2, what="the figures by event")
        model = p.panel.jobs_model
        model.flush()
        row = model.row_of(job.id)
        assert row is not None
        titles = [c.title for c in model.columns]
        shown = {t: model.data(model.index(row, titles.index(t))) for t in TIME_COLUMNS}
        assert shown["Mean task"] == "4.0 s" and shown["Longest task"] == "4.0 s"
        assert shown["Elapsed"].endswith("s")  # about 24 s and counting
        # 3 tasks left of 4 s, 2 workers: 6 s
        assert shown["ETA"] == "6.0 s"
        p.details.refresh()
        assert p.details.fields["eta"].text() == "6.0 s with 2 workers"
        assert p.details.fields["tasks"].text() == "mean 4.0 s, longest 4.0 s (2 completed)"
        assert "since" in p.details.fields["time"].text()
        # the tasks table has each task's start, end and render time
        tasks = p.panel.tasks_model
        first_id = claimed[0]["id"]
        await until(lambda: tasks.rowCount() == 5 and p.store.tasks.items[first_id].render_seconds, what="tasks")
        tasks.flush()
        t_titles = [c.title for c in tasks.columns]
        trow = tasks.row_of(first_id)
        assert trow is not None
        assert tasks.data(tasks.index(trow, t_titles.index("Render time"))) == "4.0 s"
        assert tasks.data(tasks.index(trow, t_titles.index("Started"))) != ""
        # the clock moves the ETA without any event: the elapsed time of a running task counts
        await push(ran(claimed[2], "active", datetime.now(UTC)))
        await until(lambda: p.store.jobs.items[job.id].tasks_running == 1, what="a running task")
        first = model.data(model.index(row, titles.index("ETA")))
        await until(lambda: model.data(model.index(row, titles.index("ETA"))) != first, within=5, what="a tick")
        await p.stop()
        await link.aclose()

    qloop.run_until_complete(scenario())


def test_clone_fills_the_dialog_and_the_server_accepts_it(qloop, qtbot, farm_server: ServerProcess) -> None:
    p = Panel(farm_server)
    qtbot.addWidget(p.panel)

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            base = await actor.submit_job({"name": "base", "type": "exec",
                                           "settings": {"command": ["true"], "frames": "1"}})  # fmt: skip
            job = await actor.submit_job({"name": "shot", "type": "blender-render",
                                          "settings": {**RENDER, "frames": "1-9x2", "preview_video": True},
                                          "priority": 70, "tags": ["gpu"], "depends_on": [base.id],
                                          "max_task_failures": 5, "on_task_failure": "continue"})  # fmt: skip
        await p.start()
        await p.show(job.id)
        dialog = await p.details.clone()
        assert dialog is not None
        qtbot.addWidget(dialog)
        assert dialog.type_box.currentData() == "blender-render"
        assert dialog.name.text() == "shot" and dialog.priority.value() == 70
        form = dialog.form
        assert isinstance(form, SchemaForm)
        raw = form.raw_values()
        assert raw["frames"] == "1-9x2" and raw["output_path"] == "{render_root}/shot/frame_####"
        assert raw["preview_video"] is True
        fields, problems = dialog.job_fields.values()
        assert not problems
        assert fields["tags"] == ["gpu"] and fields["depends_on"] == [base.id]
        assert (fields["max_task_failures"], fields["on_task_failure"]) == (5, "continue")
        form.set_value("frames", "1-4")  # the user changes what they came to change
        made = await dialog.send()
        assert made is not None and made.id != job.id
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            again = await actor.get_job(made.id)
            original = await actor.get_job(job.id)
        assert again.type == "blender-render" and again.settings["frames"] == "1-4"
        assert {k: v for k, v in again.settings.items() if k != "frames"} == {
            k: v for k, v in original.settings.items() if k != "frames"
        }
        assert (again.tags, again.depends_on, again.priority) == (["gpu"], [base.id], 70)
        assert (again.max_task_failures, again.on_task_failure.value) == (5, "continue")
        await p.stop()

    qloop.run_until_complete(scenario())


def test_resubmit_after_confirmation_and_not_without(qloop, qtbot, farm_server: ServerProcess) -> None:
    yes, no = Panel(farm_server, answer=True), Panel(farm_server, answer=False)
    qtbot.addWidget(yes.panel)
    qtbot.addWidget(no.panel)

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            job = await actor.submit_job({"name": "again", "type": "blender-render", "settings": RENDER,
                                          "tags": ["gpu"]})  # fmt: skip
        for panel in (yes, no):
            await panel.start()
            await panel.show(job.id)
        assert await no.details.resubmit() is None
        assert no.asked and "again" in no.asked[0]
        made = await yes.details.resubmit()
        assert made is not None and made.id != job.id
        assert made.settings == job.settings and made.tags == ["gpu"] and made.tasks_total == job.tasks_total
        assert yes.details.message.text() == f"Submitted again as job {made.id}."
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            names = [j.name for j in (await actor.list_jobs(limit=100)).items]
        assert names.count("again") == 2  # the one refused resubmit sent nothing
        # the new job is selected in the panel that made it
        await until(lambda: yes.details.job_id == made.id, what="the new job selected")
        for panel in (yes, no):
            await panel.stop()

    qloop.run_until_complete(scenario())


@pytest.mark.parametrize("how", ["drop", "502"])
def test_resubmit_pressed_again_after_a_lost_answer_makes_one_job(
    qloop, qtbot, farm_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The first press's every try reached the Server, whose answers were lost (or a load balancer's 502)."""
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.05,) * 4)
    proxy = LossyProxy(farm_server.port, lose=1 + len(resubmit.LOST_ANSWER_WAITS), how=how)
    panel = Panel(farm_server, url=proxy.url)
    qtbot.addWidget(panel.panel)

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            job = await actor.submit_job({"name": "lost again", "type": "blender-render", "settings": RENDER})
        await panel.start()
        await panel.show(job.id)
        assert await panel.details.resubmit() is None
        assert "did not answer" in panel.details.message.text() and proxy.lost == 5
        assert len(farm_server.jobs_named("lost again")) == 2  # the first try made it
        made = await panel.details.resubmit()  # pressed again: the job the lost answer was about
        assert made is not None and made.id != job.id
        assert len(farm_server.jobs_named("lost again")) == 2
        another = await panel.details.resubmit()  # answered: the next press is another job
        assert another is not None and another.id != made.id
        await panel.stop()

    try:
        qloop.run_until_complete(scenario())
    finally:
        proxy.close()


def test_resubmit_refused_after_a_lost_answer_says_refused_and_keeps_its_key(
    qloop, qtbot, farm_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first try's answer was lost, the next was refused (the Server looked the key up and found no job)."""
    monkeypatch.setattr(resubmit, "LOST_ANSWER_WAITS", (0.05,) * 4)
    panel = Panel(farm_server)
    qtbot.addWidget(panel.panel)
    keys: list[str] = []

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            job = await actor.submit_job({"name": "refused", "type": "blender-render", "settings": RENDER})
        await panel.start()
        await panel.show(job.id)
        real = panel.sync.client._response

        async def lost_then_refused(method: str, path: str, **kw: Any) -> httpx.Response:
            if method != "POST" or path != "/jobs":
                return await real(method, path, **kw)
            keys.append(kw["headers"][resubmit.HEADER])
            if len(keys) % 2:
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            raise ApiError(403, "your role may not submit jobs")

        monkeypatch.setattr(panel.sync.client, "_response", lost_then_refused)
        assert await panel.details.resubmit() is None
        assert panel.details.message.text() == "The Server refused it: your role may not submit jobs"
        assert await panel.details.resubmit() is None
        assert len(keys) == 4 and len(set(keys)) == 1  # kept: pressed again, a job the lost try made would come
        await panel.stop()

    qloop.run_until_complete(scenario())


def test_a_panel_closed_right_after_a_clone_is_not_touched_by_the_delayed_selection(qtbot) -> None:
    """Selecting the new job waits 200 ms for the event stream; a panel gone by then must be left alone."""
    store = ClientStore()
    panel = JobsPanel(FarmSync(store, ServerClient("http://127.0.0.1:9", "unused")), confirm=lambda *_: True)
    panel.details.submitted.emit(type("Made", (), {"id": 7})())
    panel.deleteLater()
    qtbot.wait(400)  # an exception in the delayed call fails the test through pytest-qt


MARKUP = '<b>bold</b> <a href="file:///etc/passwd">x</a>'


def shown_as_written(label: Any) -> bool:
    """The label shows its text as written (its tags as characters), not as HTML: plain text, or text Qt would not
    take for HTML."""
    from PySide6.QtGui import Qt as GuiQt

    from app.qt import Qt

    return bool(label.textFormat() == Qt.TextFormat.PlainText or not GuiQt.mightBeRichText(label.text()))


def test_markup_in_a_jobs_name_and_output_is_shown_as_text_not_html(
    qloop, qtbot, farm_server: ServerProcess, tmp_path: Path
) -> None:
    """From a desktop-app audit: a job named `<img src="/dev/zero">` aborted every wrangler's app (its Details, the
    notification when it ended); `<b>`, links and `&lt;` were rendered. Labels, tooltips, message boxes: as text."""
    from app.qt import QLabel, as_html
    from app.ui.message_bar import MessageBar

    p = Panel(farm_server)
    qtbot.addWidget(p.panel)

    async def scenario() -> None:
        async with ServerClient(farm_server.url, farm_server.admin_token) as actor:
            render = {**RENDER, "output_path": "{render_root}/<b>BOLD</b>&amp;/frame_####"}
            job = await actor.submit_job({"name": MARKUP, "type": "blender-render", "settings": render})
        await p.start()
        await p.show(job.id)
        d = p.details
        labels = [lab for lab in d.findChildren(QLabel) if "<" in lab.text()]
        assert {d.output, *[f for f in d.fields.values()]} & set(labels), [lab.text() for lab in labels]
        for label in labels:
            assert shown_as_written(label), label.text()
        await p.stop()

    qloop.run_until_complete(scenario())
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.show_message(f"Job failed: {MARKUP}")
    assert shown_as_written(bar.label)
    assert as_html("<img/>&\nline") == "<p>&lt;img/&gt;&amp;<br>\nline</p>"
