"""The demo job of `tablao demo` and `tablao all-in-one --demo`: the sample scene made with Blender, rendered on
the farm with a preview video, its progress printed as it goes. Talks to the Server over HTTP only."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import httpx

from services.localfarm.demo_earlier import remember_job

DEMO_FRAMES = 24


def make_demo_scene(work_dir: Path, blender: str, frames: int) -> Path:
    """The sample scene at the demo's size and quality, in work_dir (raises SceneError)."""
    from resources.scenes import make_sample_scene

    return make_sample_scene(work_dir / "sample.blend", blender=blender, frames=frames, size=(320, 180), samples=4)


def demo_output_dir(work_dir: Path) -> Path:
    """A new folder name per run, so a second demo does not overwrite the first one's frames."""
    return work_dir / datetime.now().strftime("render-%Y%m%d-%H%M%S")


def demo_job(blendfile: Path, out_dir: Path, frames: int) -> dict[str, object]:
    return {
        "name": f"demo: sample scene ({datetime.now():%H:%M:%S})",
        "type": "blender-render",
        "priority": 60,
        "settings": {
            "blendfile": str(blendfile),
            "frames": f"1-{frames}",
            "chunk_size": 2,
            "output_path": str(out_dir / "frame_####"),
            "format": "PNG",
            "fps": 12,
            "preview_video": True,
            "preview_path": str(out_dir / "preview.mp4"),
        },
    }


def rendered_before(work_dir: Path) -> Path | None:
    """Where the demo an earlier start of this farm submitted is: its video once rendered, else the folder its
    frames go to (its job's state is for demo_earlier.look_up to ask): `make run` asks for the demo at every start,
    and a farm's job list filled with copies of it, each ahead of the user's own jobs. None at a farm's first
    start."""
    runs = sorted(p for p in work_dir.glob("render-*") if p.is_dir())  # named by time: the newest last
    if not runs:
        return None
    video = runs[-1] / "preview.mp4"
    return video if video.is_file() else runs[-1]


class DemoRun:
    """Submits the demo job and reports on it; used by `tablao demo` and `all-in-one --demo`."""

    def __init__(self, server_url: str, token: str, work_dir: Path, frames: int = DEMO_FRAMES) -> None:
        self.server_url = server_url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.work_dir = work_dir
        self.frames = frames
        self.out_dir = demo_output_dir(work_dir)
        self.job_id: int | None = None
        self._last = ""

    def submit(self) -> int:
        from resources.scenes import SceneError

        blender = shutil.which("blender")
        if blender is None:
            raise SystemExit("Blender is not on PATH: install it (Debian/Ubuntu: apt-get install blender)")
        try:
            blend = make_demo_scene(self.work_dir, blender, self.frames)
        except SceneError as exc:
            raise SystemExit(str(exc)) from exc
        body = demo_job(blend, self.out_dir, self.frames)
        r = httpx.post(f"{self.server_url}/api/v1/jobs", json=body, headers=self.headers, timeout=30)
        if r.status_code != 201:
            raise SystemExit(f"the Server refused the demo job: {r.json().get('detail', r.text)}")
        self.job_id = int(r.json()["id"])
        remember_job(self.out_dir, self.job_id)  # what tells a later start that the demo was submitted, and which
        print(f"Demo job {self.job_id} submitted: {self.frames} frames of {blend}", flush=True)
        return self.job_id

    def poll(self) -> bool:
        """Print progress; True once the job has finished."""
        r = httpx.get(f"{self.server_url}/api/v1/jobs/{self.job_id}?tasks_limit=0", headers=self.headers, timeout=10)
        if r.status_code != 200:
            return False
        job = r.json()
        line = f"demo job {self.job_id}: {job['status']}, {job['tasks_completed']}/{job['tasks_total']} tasks"
        if line != self._last:
            print(line, flush=True)
            self._last = line
        if job["status"] == "completed":
            print(f"Frames: {self.out_dir}\nVideo:  {self.out_dir / 'preview.mp4'}", flush=True)
            return True
        if job["status"] in ("failed", "canceled"):
            print(f"The demo job {job['status']}: {job['activity']} (see: tablao job {self.job_id})", flush=True)
            return True
        return False
