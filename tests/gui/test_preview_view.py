"""The job panel's and the Workers tab's last-rendered preview against a real Server, fed by a Manager's batches
over HTTP: it appears for the selected job and worker, follows new images live, and opens the full frame."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.qt import QUrl
from app.ui.jobs_panel import JobsPanel
from app.ui.workers_panel import WorkersPanel
from services.protocol.link import ClaimRequest, UpdateBatch, WorkerReport
from services.protocol.preview import Preview, PreviewReport
from services.protocol.server_client import ServerClient
from services.protocol.states import WorkerStatus
from tests.gui.conftest import until
from tests.support.manager import add_manager
from tests.support.services import ServerProcess

API = "/api/v1"


class ScriptedManager:
    """Speaks the real Manager → Server link over HTTP: claims a task and pushes batches with previews."""

    def __init__(self, server: ServerProcess) -> None:
        self.http = httpx.Client(
            base_url=server.url + API,
            headers={"Authorization": f"Bearer {add_manager(server, 'm-gui')}", "Content-Type": "application/json"},
            timeout=30,
        )
        self.seq = 0
        self.task: dict[str, Any] = {}
        self.worker = WorkerReport(
            id="w-gui", name="render-07", platform="linux", task_types=["exec"], tags=[], status=WorkerStatus.AWAKE
        )

    def claim(self) -> dict[str, Any]:
        r = self.http.post("/manager/claim", content=ClaimRequest(capacity=1, task_types=["exec"]).model_dump_json())
        assert r.status_code == 200, r.text
        self.task = r.json()["tasks"][0]
        return self.task

    def push_preview(self, frame: Path, size: tuple[int, int], colour: str) -> None:
        out = io.BytesIO()
        Image.new("RGB", size, colour).save(out, "JPEG")
        preview = Preview(content_type="image/jpeg", width=size[0], height=size[1], data=out.getvalue(),
                          frame_path=str(frame), frame_width=size[0] * 4, frame_height=size[1] * 4)  # fmt: skip
        report = PreviewReport(task_id=self.task["id"], job_id=self.task["job_id"], worker_id=self.worker.id,
                               worker_name=self.worker.name, time=datetime.now(UTC), preview=preview)  # fmt: skip
        self.seq += 1
        batch = UpdateBatch(seq=self.seq, workers=[self.worker], previews=[report])
        r = self.http.post("/manager/updates", content=batch.model_dump_json(exclude_defaults=True))
        assert r.status_code == 200, r.text


def find_row(jobs: JobsPanel, job_id: int) -> int | None:
    jobs.jobs_model.flush()
    return jobs.jobs_model.row_of(job_id)


def test_the_preview_follows_the_selected_job_and_worker(qloop, qtbot, fresh_server: ServerProcess, tmp_path: Path):
    frame = tmp_path / "frame_0001.png"
    frame.write_bytes(b"the full-size frame")  # readable here: a click may open it
    away = "/nowhere/on/this/computer/frame_0002.png"
    with httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30) as actor:
        job = actor.post("/jobs", json={"name": "lit", "type": "exec", "settings": {"command": ["true"]}}).json()
    manager = ScriptedManager(fresh_server)
    opened: list[QUrl] = []

    async def scenario() -> None:
        sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, fresh_server.admin_token))
        jobs = JobsPanel(sync)
        workers = WorkersPanel(sync)
        qtbot.addWidget(jobs)
        qtbot.addWidget(workers)
        jobs.resize(1000, 700)
        jobs.show()

        def opener(url: QUrl) -> bool:
            opened.append(url)
            return True

        jobs.preview.opener = opener
        sync.start()
        try:
            await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
            await until(lambda: find_row(jobs, job["id"]) is not None, what="the job's row")
            jobs.select_job(job["id"])
            source = jobs.preview.source
            await until(lambda: source.owner == job["id"], what="the job shown")
            assert source.image is None and jobs.preview.image.text() == "Nothing rendered yet"

            manager.push_preview(frame, (96, 54), "red")
            await until(lambda: source.image is not None, what="the first preview")
            assert source.image is not None and (source.image.width(), source.image.height()) == (96, 54)
            assert source.info is not None and source.info.worker_name == "render-07"
            assert source.frame_readable
            assert "frame_0001.png · 384×216 · render-07" in jobs.preview.caption.text()
            pixmap = jobs.preview.image.pixmap()
            assert not pixmap.isNull() and pixmap.width() <= jobs.preview.image.width()
            assert jobs.preview.open_frame()
            assert opened == [QUrl.fromLocalFile(str(frame))]

            manager.push_preview(Path(away), (160, 90), "blue")  # live: a new frame, nothing clicked
            await until(lambda: source.info is not None and source.info.version == 2, what="the second preview")
            assert source.image is not None and (source.image.width(), source.image.height()) == (160, 90)
            colour = source.image.pixelColor(80, 45)
            assert colour.blue() > 200 and colour.red() < 50
            assert not source.frame_readable and not jobs.preview.open_frame()  # not readable here: nothing opens
            assert "not readable from this computer" in jobs.preview.image.toolTip()
            assert len(opened) == 1

            await until(lambda: "w-gui" in sync.store.workers, what="the worker row")
            workers.model.flush()
            workers.view.selectRow(workers.proxy.mapFromSource(workers.model.index(0, 0)).row())
            wsource = workers.preview.source
            await until(lambda: wsource.image is not None, what="the worker's latest")
            assert wsource.owner == "w-gui" and wsource.info is not None and wsource.info.job_id == job["id"]
            assert wsource.info.frame_path == away
            fetches = source.fetches
            jobs.jobs_view.clearSelection()
            await until(lambda: source.owner is None, what="no job shown")
            assert jobs.preview.image.pixmap().isNull() and source.fetches == fetches
        finally:
            await sync.stop()
            await sync.client.aclose()

    try:
        manager.claim()
        qloop.run_until_complete(scenario())
    finally:
        manager.http.close()
