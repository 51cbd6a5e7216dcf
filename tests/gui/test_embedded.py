"""Embedded mode: the app runs the local farm under its own supervisor, shows it, stops it on quit, and when told
to leave it running, leaves it running; the app started again adopts that farm instead of starting another."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from app.desktop import start_embedded
from app.embedded import EmbeddedFarm, ServiceState
from app.models.sync import ConnectionState
from app.ui.main_window import MainWindow
from services.localfarm.supervisor import tablao_argv
from tests.gui.conftest import until
from tests.support.farm import free_port_pair

pytestmark = pytest.mark.timeout(240)


def _family(farm: EmbeddedFarm) -> list[psutil.Process]:
    """The supervisor and the services it started (not their short-lived helpers, such as a Blender probe)."""
    pid = farm.handle.supervisor_pid()
    assert pid is not None
    sup = psutil.Process(pid)
    return [sup, *sup.children()]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


async def _quit(window: MainWindow) -> None:
    window.close()
    await window.shutdown()


def test_embedded_mode_runs_and_stops_its_farm(qloop, qtbot, tmp_path: Path) -> None:
    port = free_port_pair()

    async def scenario() -> None:
        started = await start_embedded(tmp_path / "farm", port, workers=1)
        assert started is not None, "the embedded farm did not start"
        window, farm = started
        qtbot.addWidget(window)
        try:
            assert not farm.adopted
            assert farm.server.state is ServiceState.RUNNING
            await until(lambda: farm.manager.state is ServiceState.RUNNING, within=60, what="the Manager to start")
            assert window.services is not None
            await until(lambda: "running" in window.services.rows[1].state.text(), what="the Manager's row")
            assert "running" in window.services.rows[0].state.text()
            assert "adopted" not in window.services.header.text()
            assert oct((tmp_path / "farm" / "manager.token").stat().st_mode & 0o777) == "0o600"
            await until(lambda: window.sync.state == ConnectionState.CONNECTED, what="the app to connect")
            await until(lambda: len(window.sync.store.workers) == 1, within=45, what="the local worker's row")
            assert window.manager_url == f"http://127.0.0.1:{port + 1}"
            await until(lambda: len(_family(farm)) == 4, within=30, what="supervisor, Server, Manager, worker")
            # Restart in the panel is a request to the supervisor: the worker runs again as a new process
            worker_row = window.services.rows[2]
            old_pid = worker_row.service.pid
            worker_row.restart_button.click()
            await until(
                lambda: worker_row.service.pid not in (None, old_pid) and f"pid {worker_row.service.pid}"
                in worker_row.where.text(), within=30, what="the worker to run again as a new process",
            )  # fmt: skip
            family = _family(farm)
            assert len(family) == 4
        finally:
            await _quit(window)
        _gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"left running after quitting: {[p.pid for p in alive]}"
        assert all(s.state in (ServiceState.STOPPED, ServiceState.NOT_STARTED) for s in farm.services)

    qloop.run_until_complete(scenario())


def test_leave_running_keeps_the_farm_and_the_next_start_adopts_it(qloop, qtbot, tmp_path: Path) -> None:
    port = free_port_pair()
    data = tmp_path / "farm"

    async def scenario() -> None:
        first = await start_embedded(data, port, workers=1)
        assert first is not None
        window, farm = first
        qtbot.addWidget(window)
        await until(lambda: farm.manager.state is ServiceState.RUNNING, within=60, what="the Manager to start")
        await until(lambda: len(_family(farm)) == 4, within=30, what="supervisor, Server, Manager, worker")
        family = _family(farm)
        assert window.services is not None
        window.services.leave.setChecked(True)
        await _quit(window)
        await asyncio.sleep(1.0)  # the supervisor looks at its owner every half second
        assert len(_alive(family)) == 4, "the farm was stopped although told to leave it running"
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"http://127.0.0.1:{port}/api/v1/health")).status_code == 200

        # the app again, on the same folder (even asking for another port): it adopts the running farm
        second = await start_embedded(data, free_port_pair(), workers=3)
        assert second is not None
        window2, farm2 = second
        qtbot.addWidget(window2)
        try:
            assert farm2.adopted
            assert farm2.server_url == f"http://127.0.0.1:{port}"
            assert window2.services is not None
            assert "adopted" in window2.services.header.text()
            assert [s.key for s in farm2.services] == ["server", "manager", "worker-1"]
            await until(lambda: farm2.server.pid == family[1].pid, what="the adopted Server's pid")
            assert {p.pid for p in _family(farm2)} == {p.pid for p in family}, "a second farm was started"
            await until(lambda: window2.sync.state == ConnectionState.CONNECTED, what="the app to connect")
        finally:
            await _quit(window2)  # leave_running is off in this session: quitting stops the adopted farm
        _gone, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"left running after quitting: {[p.pid for p in alive]}"

    qloop.run_until_complete(scenario())


def test_a_farm_started_on_the_command_line_is_adopted_and_left_running_when_the_app_quits(
    qloop, qtbot, tmp_path: Path
) -> None:
    """`make run HEADLESS=1` in one terminal, the desktop app in another: quitting the app stopped the farm the
    first terminal ran (the app took it as its own), which that terminal only learnt as `Stopped.`."""
    port = free_port_pair()
    data = tmp_path / "farm"
    argv = tablao_argv("all-in-one", "--headless", "--data-dir", str(data), "--port", str(port), "--workers", "0")
    headless = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=2) as http:

            async def up() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get(f"http://127.0.0.1:{port}/api/v1/health")).status_code == 200
                return False

            for _ in range(600):
                if await up():
                    break
                await asyncio.sleep(0.1)
            started = await start_embedded(data, port, workers=1)
            assert started is not None
            window, farm = started
            qtbot.addWidget(window)
            try:
                assert farm.adopted and farm.handle.from_command_line
                assert window.services is not None
                assert "started on the command line" in window.services.header.text()
                assert window.services.leave.isChecked() and not window.services.leave.isEnabled()
            finally:
                await _quit(window)
            await asyncio.sleep(1.5)  # the supervisor looks at its owner every half second
            assert headless.poll() is None, "quitting the app stopped the farm started on the command line"
            assert await up()

    try:
        qloop.run_until_complete(scenario())
    finally:
        headless.send_signal(signal.SIGINT)  # as Ctrl-C where it runs
        assert headless.wait(timeout=30) == 0
