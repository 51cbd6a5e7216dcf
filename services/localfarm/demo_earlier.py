"""What became of the demo job an earlier start of this farm submitted, told so the user can act on it.

`make run` asks for the demo at every start and it is submitted once (demo_run.rendered_before): a later start
names it by its real state, asked of the Server: rendering on, paused, canceled or failed (with how to requeue it or
submit the demo anew), completed, or gone from the farm. Before, a canceled demo was named as if it still rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from services.protocol.jobs import Job
from services.protocol.server_answers import ApiError
from services.protocol.server_client import ServerClient
from services.protocol.states import JobStatus

JOB_ID_NAME = "job-id"  # in a run's folder: the id of the demo job whose frames go there
DEMO_NAME = "demo: sample scene"  # how every demo job's name starts (demo_run.demo_job)
REMOVED = "removed"  # the state of a demo job the farm no longer has


def remember_job(out_dir: Path, job_id: int) -> None:
    """Note the demo job's id in the folder its frames go to (made here; the folder also tells a later start that
    the demo was submitted)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / JOB_ID_NAME).write_text(f"{job_id}\n", encoding="utf-8")


def remembered_job(run_dir: Path) -> int | None:
    try:
        return int((run_dir / JOB_ID_NAME).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None  # submitted before the id was kept (the job is looked for by its output), or an edited file


@dataclass(frozen=True)
class EarlierDemo:
    where: Path  # its video once rendered, else the folder its frames go to
    job_id: int | None = None
    state: str | None = None  # a JobStatus, REMOVED, or None: not known (the Server did not say)


def _on_disk(where: Path) -> tuple[bool, int | None]:
    """Whether `where` is the rendered video, and the job id its folder remembers."""
    return (True, None) if where.is_file() else (False, remembered_job(where))


def _output_of(job: Job) -> str:
    return str(job.settings.get("output_path", ""))


async def look_up(client: ServerClient, where: Path) -> EarlierDemo:
    """The earlier demo at `where` (demo_run.rendered_before) with its job's state, as far as the Server tells."""
    rendered, job_id = _on_disk(where)  # a stat and a tiny file: not worth a thread
    if rendered:  # its video: nothing to ask
        return EarlierDemo(where, state=JobStatus.COMPLETED)
    try:
        if job_id is None:  # a folder of an older version: the job whose frames go there
            page = await client.list_jobs(type="blender-render", search=DEMO_NAME, limit=100)
            output = str(where / "frame_####")
            job = next((j for j in page.items if _output_of(j) == output), None)
            return EarlierDemo(where) if job is None else EarlierDemo(where, job.id, job.status)
        return EarlierDemo(where, job_id, (await client.get_job(job_id, tasks_limit=0)).status)
    except ApiError as exc:
        return EarlierDemo(where, job_id, REMOVED if exc.status_code == 404 else None)
    except (httpx.HTTPError, OSError):
        return EarlierDemo(where, job_id)


def told(demo: EarlierDemo, tablao: str) -> str:
    """What to tell the user of the earlier demo, with what fits its state; `tablao` is the command as they type it."""
    where, job_id, state = demo.where, demo.job_id, demo.state
    again = f"`{tablao} demo` renders it again"
    if where.is_file():
        return f"The demo rendered at an earlier start: {where} ({again})"
    if job_id is None or state is None:
        return (
            f"The demo was submitted at an earlier start; its frames go to {where} (`{tablao} jobs` shows whether "
            f"it renders on; {again})"
        )
    job = f"The demo job {job_id} of an earlier start"
    if state == REMOVED:
        return f"{job} is no longer on the farm ({again})"
    if state == JobStatus.COMPLETED:
        return f"{job} completed; its frames are in {where} ({again})"
    if state in (JobStatus.CANCELED, JobStatus.CANCEL_REQUESTED, JobStatus.FAILED):
        was = {JobStatus.CANCELED: "was canceled", JobStatus.FAILED: "failed"}.get(JobStatus(state), "is canceling")
        return (
            f"{job} {was}; its frames so far are in {where}. Requeue it to render the rest (`{tablao} job {job_id} "
            f"--action requeue`, or Requeue… on the job in the desktop app), or `{tablao} demo` submits it anew"
        )
    if state in (JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED):
        return (
            f"{job} is paused; resume it with `{tablao} job {job_id} --action resume` (or Resume on the job in the "
            f"desktop app). Its frames go to {where}"
        )
    return f"{job} is still on the farm ({state}); its frames go to {where}"
