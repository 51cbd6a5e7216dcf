"""The window tells the wrangler once when a job completes or fails (a desktop notification where a tray exists;
offscreen, in the window), from the event stream of a real Server whose jobs a scripted Manager runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from tests.gui.conftest import until
from tests.integration.test_link_server import claim, kind, push, submit
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start(timeout=120)
    yield srv
    srv.stop()


def test_a_notification_once_per_completed_or_failed_job(qloop, qtbot, fresh_server: ServerProcess) -> None:
    token = fresh_server.admin_token
    sync = FarmSync(ClientStore(), ServerClient(fresh_server.url, token))
    window = MainWindow(sync, token)
    qtbot.addWidget(window)
    manager_token = add_manager(fresh_server, "m1")

    def run(status: str, name: str) -> int:
        """A one-task job run to `status` by a Manager speaking the link (blocking: called in a thread)."""
        with (
            httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30) as admin,
            httpx.Client(
                base_url=fresh_server.url + API + "/manager", headers=fresh_server.headers(manager_token), timeout=30
            ) as link,
        ):
            link.seq = run.seq  # type: ignore[attr-defined]
            t = kind()
            job = submit(admin, t, frames="1", max_task_failures=1, name=name)
            (c,) = claim(link, [t])
            assert push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": status}]).status_code == 200
            run.seq = link.seq  # type: ignore[attr-defined]
            return int(job["id"])

    run.seq = 0  # type: ignore[attr-defined]

    async def scenario() -> None:
        sync.start()
        await until(lambda: sync.state == ConnectionState.CONNECTED, within=30, what="connected")
        assert window.notifier.tray is None or not window.notifier.desktop  # offscreen: told in the window
        done = await asyncio.to_thread(run, "completed", "lighting")
        await until(lambda: len(window.notifier.history) == 1, within=30, what="the completed notification")
        title, body = window.notifier.history[0]
        assert title == "Job completed" and f"lighting (#{done})" in body
        assert f"Job completed: lighting (#{done})" in window.message_bar.label.text()
        failed = await asyncio.to_thread(run, "failed", "comp")
        await until(lambda: len(window.notifier.history) == 2, within=30, what="the failed notification")
        title, body = window.notifier.history[1]
        assert title == "Job failed" and f"comp (#{failed})" in body and "1 of 1 task failed" in body
        # a reload of everything (a reconnection) tells nothing again
        await sync.load_all()
        await asyncio.sleep(0.5)
        assert len(window.notifier.history) == 2
        await window.shutdown()

    qloop.run_until_complete(scenario())
