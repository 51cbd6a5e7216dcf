"""What `make run` runs: the desktop app in embedded mode with `--demo`, as a real process (Qt offscreen).

It starts its own Server, Manager and two workers, renders the sample scene with Blender, and on SIGTERM stops
every process it started and exits 0.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.farm import free_port_pair, need_programs
from tests.support.services import ROOT, child_env, tablao_command

pytestmark = [pytest.mark.e2e, pytest.mark.gui]


@pytest.mark.timeout(300)
def test_make_run_renders_the_demo_in_the_app_and_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    need_programs("blender", "ffmpeg")
    port = free_port_pair()
    data = tmp_path / "farm"
    env = child_env(
        QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "share")
    )
    argv = tablao_command("all-in-one", "--demo", "--workers", "2", "--data-dir", str(data), "--port", str(port))
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        token_file = data / "server" / "admin.token"
        job: dict[str, object] = {}
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert app.poll() is None, (tmp_path / "app.log").read_text()
            if token_file.exists():
                headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
                try:
                    jobs = httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", headers=headers, timeout=10).json()
                except httpx.HTTPError:
                    jobs = {"items": []}
                if jobs["items"]:
                    job = jobs["items"][0]
                    if job["status"] in ("completed", "failed", "canceled"):
                        break
            time.sleep(1)
        assert job.get("type") == "blender-render", f"no demo job: {job}\n{(tmp_path / 'app.log').read_text()}"
        assert job["status"] == "completed", job
        assert len(list((data / "demo").glob("render-*/frame_*.png"))) == 24
        assert list((data / "demo").glob("render-*/preview.mp4"))

        children = psutil.Process(app.pid).children(recursive=True)
        assert len(children) >= 4  # Server, Manager, two workers
        app.send_signal(signal.SIGTERM)
        assert app.wait(60) == 0, (tmp_path / "app.log").read_text()
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    finally:
        _kill_all(app, children)
        log.close()


@pytest.mark.timeout(120)
def test_sigterm_while_the_farm_comes_up_stops_it_cleanly(tmp_path: Path) -> None:
    """SIGTERM as soon as the embedded Server answers, while the window is still coming up: the app exits 0
    within seconds and stops what it started (it used to stop its loop half-way, exit 1 with a traceback and,
    from the bundle, sometimes hang with the farm left running)."""
    port = free_port_pair()
    data = tmp_path / "farm"
    env = child_env(
        QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "share")
    )
    argv = tablao_command("all-in-one", "--workers", "1", "--data-dir", str(data), "--port", str(port))
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert app.poll() is None, (tmp_path / "app.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/jobs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.02)
        children = psutil.Process(app.pid).children(recursive=True)
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0, (tmp_path / "app.log").read_text()
        assert "Traceback" not in (tmp_path / "app.log").read_text()
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    finally:
        _kill_all(app, children)
        log.close()


def _kill_all(app: subprocess.Popen[bytes], children: list[psutil.Process]) -> None:
    """What a failed test left running: the app and the processes it had started."""
    if app.poll() is None:
        app.kill()
        app.wait()
    for p in children:
        if p.is_running():
            p.kill()
