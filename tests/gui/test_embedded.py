"""Embedded mode: the app starts its own Server, Manager and a worker, shows them running, and leaves no
process behind when it quits."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil

from app.desktop import start_embedded
from app.embedded import ServiceState
from app.models.sync import ConnectionState
from tests.gui.conftest import until
from tests.support.farm import free_port_pair


def test_embedded_mode_runs_and_stops_its_farm(qloop, qtbot, tmp_path: Path) -> None:
    port = free_port_pair()

    async def scenario() -> None:
        started = await start_embedded(tmp_path / "farm", port, workers=1)
        assert started is not None, "the embedded Server did not start"
        window, farm = started
        qtbot.addWidget(window)
        try:
            assert farm.server.state is ServiceState.RUNNING
            await until(
                lambda: farm.manager.state in (ServiceState.RUNNING, ServiceState.CRASHED),
                within=60,
                what="the Manager to start or fail",
            )
            assert farm.manager.state is ServiceState.RUNNING, "\n".join(farm.manager.lines)
            assert window.services is not None
            assert "running" in window.services.rows[0].state.text()
            assert "running" in window.services.rows[1].state.text()
            assert oct((tmp_path / "farm" / "manager.token").stat().st_mode & 0o777) == "0o600"
            await until(lambda: window.sync.state == ConnectionState.CONNECTED, what="the app to connect")
            await until(lambda: len(window.sync.store.managers) == 1, within=30, what="the Manager row")
            await until(lambda: len(window.sync.store.workers) == 1, within=45, what="the local worker's row")
            assert window.manager_url == f"http://127.0.0.1:{port + 1}"
        finally:
            pids = [s.pid for s in farm.services if s.is_alive()]
            family = set(pids)
            for pid in pids:
                with contextlib.suppress(psutil.NoSuchProcess):
                    family |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
            window.close()
            await window.shutdown()
        assert len(pids) == 3, "Server, Manager and one worker were running"
        left = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert left == [], f"orphans left after quitting: {left}"
        assert all(s.state is ServiceState.STOPPED for s in farm.services)

    qloop.run_until_complete(scenario())
