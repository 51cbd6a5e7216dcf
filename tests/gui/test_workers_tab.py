"""The workers tab against a real Server and Manager: the graph shows the history the Server kept from before
the app started, the farm view counts the workers, and the wrangler's actions reach the Server (or show its
refusal)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.ui.workers_panel import WorkersPanel
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def manager(quick_lease_server: ServerProcess, tmp_path: Path) -> Iterator[ManagerProcess]:
    # the samples and worker states reach the Server with the Manager's keep-alive: every 2.5 s with this lease
    mgr = ManagerProcess(quick_lease_server.url, add_manager(quick_lease_server, "m1"), tmp_path / "manager").start()
    yield mgr
    mgr.stop()


def _beat(w: ScriptedWorker, at: datetime, cpu: float, gpu: float | None = None) -> None:
    sample = {"time": at.isoformat(), "cpu_percent": cpu, "memory_percent": 30.0, "memory_used_mb": 500.0,
              "gpu_percent": gpu}  # fmt: skip
    assert w.http.post("/heartbeat", json={"status": "awake", "utilisation": sample}).status_code == 200


def _server_worker(server: ServerProcess, worker_id: str) -> dict[str, object]:
    r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
    return next((w for w in r.json() if w["id"] == worker_id), {})


def _history(server: ServerProcess, worker_id: str) -> list[dict[str, object]]:
    r = httpx.get(f"{server.url}{API}/workers/{worker_id}/utilisation", headers=server.headers(), timeout=30)
    return list(r.json()["samples"]) if r.status_code == 200 else []  # 404 until the Manager reports it


def test_history_farm_view_and_actions(
    qloop, qtbot, quick_lease_server: ServerProcess, manager: ManagerProcess
) -> None:
    server = quick_lease_server
    w = ScriptedWorker(manager.url, "render-01")
    try:
        _scenario(qloop, qtbot, server, manager, w)
    finally:
        w.close()


def _scenario(qloop, qtbot, server: ServerProcess, manager: ManagerProcess, w: ScriptedWorker) -> None:
    w.register(manager.registration_secret)
    w.sign_on(tags=("cpu",))
    # the past, before the app opens: samples from two hours and one hour ago, each reported by the Manager
    now = datetime.now(UTC)
    for n, (ago, cpu, gpu) in enumerate(((120, 15.0, 60.0), (60, 85.0, 70.0), (0, 42.0, None))):
        _beat(w, now - timedelta(minutes=ago), cpu, gpu)
        wait_for(lambda n=n: len(_history(server, w.worker_id)) == n + 1, what=f"sample {n + 1} at the Server")
    opened = time.time()

    asked: list[str] = []
    texts: list[str | None] = ["gpu, cpu  fast"]
    errors: list[str] = []

    def confirm(title: str, _text: str) -> bool:
        asked.append(title)
        return True

    store = ClientStore()
    sync = FarmSync(store, ServerClient(server.url, server.admin_token))
    sync.error.connect(errors.append)
    panel = WorkersPanel(sync, confirm=confirm, ask_text=lambda *_a: texts.pop(0))
    qtbot.addWidget(panel)
    panel.show()

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, what="connected")
        await until(lambda: panel.model.rowCount() == 1, what="the worker row")
        assert "select a worker" in panel.utilisation.plot.plotItem.titleLabel.text
        panel.view.selectRow(0)
        await until(lambda: len(store.utilisation.get(w.worker_id, ())) >= 3, what="the history in the store")

        # the graph shows the past: the last 6 hours hold the samples of two hours and one hour ago
        panel.utilisation.window_box.setCurrentIndex(2)
        xs, ys = panel.utilisation.cpu.getData()
        assert xs is not None and min(xs) < opened - 3600 and list(ys) == [15.0, 85.0, 42.0]
        _, gy = panel.utilisation.gpu.getData()
        assert gy is not None and list(gy) == [60.0, 70.0]
        assert panel.utilisation.gpu_note.text() == ""
        # the last 15 minutes: only the newest sample, and no GPU in it
        panel.utilisation.window_box.setCurrentIndex(0)
        assert list(panel.utilisation.cpu.getData()[1]) == [42.0]
        assert "none reported" in panel.utilisation.gpu_note.text()

        # the farm view, from the Server's counts
        panel.farm_view.refresh(force=True)
        await until(lambda: "1 idle" in panel.farm_view.text(), what="the farm view")
        assert "0 busy" in panel.farm_view.text() and "tasks/min" in panel.farm_view.text()

        # edit tags: typed with commas and spaces, stored sorted at the Server
        panel.actions_.tags.trigger()
        await until(lambda: _server_worker(server, w.worker_id).get("tags") == ["cpu", "fast", "gpu"], what="tags")
        # sleep now, confirmed first
        panel.actions_.sleep_now.trigger()
        await until(lambda: _server_worker(server, w.worker_id).get("status_requested") == "asleep", what="asleep")
        assert asked[-1] == "Sleep now"
        # forgetting an online worker: the Server's refusal is shown
        panel.actions_.forget.trigger()
        await until(lambda: bool(errors), what="the refusal")
        assert "only an offline worker can be forgotten" in errors[-1]
        assert panel.model.rowCount() == 1
        # once it is gone, it can be forgotten: the row goes
        assert w.http.post("/sign-off").status_code == 204
        await until(lambda: _server_worker(server, w.worker_id).get("status") == "offline", what="offline")
        panel.actions_.forget.trigger()

        def rows() -> int:
            panel.model.flush()
            return panel.model.rowCount()

        await until(lambda: rows() == 0, what="the row gone")
        assert not _server_worker(server, w.worker_id)
        assert asked.count("Forget workers") == 2

        panel.timer.stop()
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())
