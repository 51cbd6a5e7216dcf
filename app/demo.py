"""`make run` / `tablao all-in-one --demo` in the desktop app: render the sample scene on the embedded farm.

The job goes to the Server over its HTTP API like any other; the window selects it so its progress shows live.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

from app.embedded import EmbeddedFarm, ServiceState
from app.ui.main_window import MainWindow
from resources.scenes import SceneError
from services.localfarm.demo_earlier import REMOVED, look_up, remember_job, told
from services.localfarm.demo_run import DEMO_FRAMES, demo_job, demo_output_dir, make_demo_scene, rendered_before
from services.protocol.server_client import ApiError


async def submit_demo(window: MainWindow, farm: EmbeddedFarm, frames: int = DEMO_FRAMES) -> None:
    """Make the sample scene with Blender, submit a render of it with a preview video, and select the job."""
    for _ in range(600):  # the Manager starts after the Server; the job waits for it anyway, but say so clearly
        if farm.manager.state in (ServiceState.RUNNING, ServiceState.CRASHED):
            break
        await asyncio.sleep(0.1)
    blender = shutil.which("blender")
    if blender is None:
        window.message_bar.show_message(
            "The demo job needs Blender on PATH (Debian/Ubuntu: apt-get install blender); the farm runs without it."
        )
        return
    work = farm.data_dir / "demo"
    out_dir = demo_output_dir(work)
    if (where := rendered_before(work)) is not None:
        earlier = await look_up(window.sync.client, where)  # its real state: a canceled demo does not render on
        window.message_bar.show_message(told(earlier, "tablao"), error=False)
        if earlier.job_id is not None and earlier.state not in (None, REMOVED):
            await _select(window, earlier.job_id)  # at hand to requeue or resume
        return
    try:
        blend = await asyncio.to_thread(make_demo_scene, work, blender, frames)
        job = await window.sync.client.submit_job(demo_job(blend, out_dir, frames))
    except (SceneError, ApiError) as exc:
        window.message_bar.show_message(f"The demo job could not be submitted: {exc}")
        return
    with contextlib.suppress(OSError):  # a folder that cannot be made: the Worker says so when it writes a frame
        remember_job(out_dir, job.id)  # a later start names this job's state
    window.message_bar.show_message(
        f"Demo job {job.id} submitted: {frames} frames of the sample scene. Frames and the preview video go to "
        f"{out_dir}",
        error=False,
    )
    await _select(window, job.id)


async def _select(window: MainWindow, job_id: int) -> None:
    for _ in range(50):  # the row arrives with the event stream
        window.jobs.select_job(job_id)
        if window.jobs.selected_job_ids() == [job_id]:
            break
        await asyncio.sleep(0.1)
