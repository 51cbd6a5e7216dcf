"""Renders the main window over a running local farm into PNGs (`make screenshots` → docs/screenshots/)."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.qt import QApplication, QWidget
from app.screenshot_history import replay_day
from resources.scenes import make_sample_scene
from services.local_ports import free_ports
from services.localfarm.demo_run import demo_job
from services.localfarm.supervisor import tablao_argv
from services.protocol.jobs import JobAction

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

JOBS = [
    ("shot-010 comp", "1-40", ["sleep", "0.6"], 60),
    ("shot-020 lighting", "1-24", ["sleep", "1.5"], 70),
    ("asset turntable", "1-12", ["sleep", "2"], 40),
    ("broken export", "1-3", ["false"], 50),
]


def tray_worker(farm_dir: Path, manager_url: str) -> subprocess.Popen[bytes]:
    """A workstation's worker as the tray runs it, paused because its artist is at the computer."""
    argv = tablao_argv(
        "worker", "--manager", manager_url, "--name", "anna-ws", "--data-dir", str(farm_dir / "anna-ws"),
        "--registration-secret-file", str(farm_dir / "manager" / "worker-registration.secret"),
        "--control", "stdio", "--heartbeat-interval", "1",
    )  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(b'{"cmd": "pause", "now": true, "reason": "user-active"}\n')
    proc.stdin.flush()
    return proc


async def shoot_workers(window: MainWindow, out: Path) -> None:
    """The workers tab with a worker's past day (replayed: see screenshot_history.py) and the farm view."""
    worker_id = await replay_day(window.sync.client.base_url, window.token)
    panel = window.workers
    for _ in range(100):
        row = panel.model.row_of(worker_id)
        if row is not None:
            panel.view.selectRow(panel.proxy.mapFromSource(panel.model.index(row, 0)).row())
            break
        panel.model.flush()
        await asyncio.sleep(0.1)
    panel.utilisation.window_box.setCurrentIndex(3)  # the last day
    for _ in range(100):
        if len(window.sync.store.utilisation.get(worker_id, ())) > 100:
            break
        await asyncio.sleep(0.1)
    await panel.farm_view.load()  # awaited here: nothing in flight while grab() processes Qt events
    panel.sync.store.sample_farm()
    panel.farm.redraw()
    panel.utilisation.redraw()
    await asyncio.sleep(0.5)
    grab(window, out / "workers-graphs.png")


def grab(widget: QWidget, path: Path) -> None:
    QApplication.processEvents()
    widget.grab().save(str(path))
    print(f"wrote {path}")


async def shoot(out: Path, settle: float) -> int:
    from app.desktop import start_embedded
    from app.embedded import ServiceState

    data = Path(tempfile.mkdtemp(prefix="tablao-shots-"))
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the loop has work
    started = await start_embedded(data / "farm", free_ports(2), workers=2)
    if started is None:
        return 1
    window, farm = started
    try:
        for _ in range(600):
            if farm.manager.state in (ServiceState.RUNNING, ServiceState.CRASHED):
                break
            await asyncio.sleep(0.1)
        anna = tray_worker(data / "farm", farm.manager_url)
        client = window.sync.client
        ids = []
        for name, frames, command, priority in JOBS:
            body = {"name": name, "type": "exec", "priority": priority,
                    "settings": {"command": command, "frames": frames}}  # fmt: skip
            ids.append((await client.submit_job(body)).id)
        shown = ids[1]  # the highest priority: the one the workers are on
        if blender := shutil.which("blender"):
            # the sample scene, rendered for real, at the top of the queue
            blend = await asyncio.to_thread(
                make_sample_scene, data / "sample.blend", blender=blender, frames=48, size=(640, 360), samples=8
            )
            body = demo_job(blend, data / "farm" / "demo", 48)  # under an output root of the local farm
            body["priority"] = 80
            shown = (await client.submit_job(body)).id
        # let the workers get going so progress, graphs and logs have content; shoot the render half-way
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            job = await client.get_job(shown, tasks_limit=0)
            if job.tasks_completed * 2 >= job.tasks_total:
                break
            await asyncio.sleep(0.5)
        await client.job_action(ids[2], JobAction.PAUSE)
        await asyncio.sleep(1.5)
        window.jobs.select_job(shown)
        await asyncio.sleep(1.0)
        grab(window, out / "main-window-jobs.png")
        window.jobs.detail_tabs.setCurrentIndex(1)
        grab(window, out / "job-log.png")
        window.jobs.detail_tabs.setCurrentWidget(window.jobs.details)  # times, ETA, settings, Clone, Resubmit
        grab(window, out / "job-details.png")
        window.jobs.detail_tabs.setCurrentIndex(0)
        window.tabs.setCurrentWidget(window.workers)
        await shoot_workers(window, out)
        if window.services is not None:
            window.tabs.setCurrentWidget(window.services)
            grab(window, out / "local-farm.png")
        window.tabs.setCurrentWidget(window.jobs)
        dialog = window.open_submit_dialog()
        for _ in range(100):
            if dialog.form is not None:
                break
            await asyncio.sleep(0.05)
        dialog.type_box.setCurrentIndex(max(dialog.type_box.findData("blender-render"), 0))
        await asyncio.sleep(0.5)
        dialog.name.setText("shot-030 final")
        if dialog.form is not None and "frames" in dialog.form.editors:
            dialog.form.set_value("frames", "1-9,20,30-40x2")
            dialog.form.set_value("blendfile", "")
            dialog.submission()  # shows the "is required" line under the empty blend file
        grab(dialog, out / "submit-dialog.png")
        dialog.reject()
    finally:
        if "anna" in locals():
            anna.terminate()
            anna.wait(15)
        window.close()
        await window.shutdown()
    return 0


def main(argv: list[str]) -> int:
    import qasync

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(argv[0]) if argv else Path("docs/screenshots")
    settle = float(os.environ.get("TABLAO_SCREENSHOT_SETTLE", "40"))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    # a watchdog: if anything hangs, print every thread's stack and exit rather than block `make`
    faulthandler.dump_traceback_later(180, exit=True)
    t0 = time.monotonic()
    with loop:
        code = int(loop.run_until_complete(shoot(out, settle)))
    print(f"screenshots done in {time.monotonic() - t0:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
