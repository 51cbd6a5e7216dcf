"""A job of each type submitted over HTTP and by `tablao submit`: stored tasks match the job type's compilation."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.jobtypes.base import JobContext
from services.server.jobtypes.registry import get_job_type
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command

API = "/api/v1"

JOBS: dict[str, dict[str, Any]] = {
    "blender-render": {
        "blendfile": "/p/shot.blend", "frames": "1-9,20,30-40x2", "chunk_size": 3,
        "output_path": "{render_root}/shot/frame_####", "preview_video": True,
    },
    "blender-bake": {
        "blendfile": "/p/sim.blend", "frame_start": 1, "frame_end": 50,
        "caches": [{"target": "fluid", "object": "Domain"}, {"target": "cloth", "object": "Flag"}],
    },
    "blender-still": {
        "blendfile": "/p/still.blend", "frame": 1, "output_path": "/r/still.png", "format": "PNG",
        "width": 400, "height": 300, "split": "tiles", "tiles_x": 2, "tiles_y": 3,
    },
    "ffmpeg-encode": {
        "input_pattern": "/r/frame_%04d.png", "frame_start": 1, "frame_end": 1200, "fps": 24,
        "output_path": "/r/movie.mp4", "segment_frames": 500,
    },
    "exec": {"command": ["echo", "{start}-{end}"], "frames": "1-10", "chunk_size": 4},
}  # fmt: skip


def expected_tasks(type_: str, settings: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]], list[int]]]:
    jt = get_job_type(type_)
    assert jt is not None
    compiled = jt.compile(JobContext(0, "x", "admin", datetime.now(UTC)), jt.Settings.model_validate(settings))
    return [(t.name, t.type, t.commands, sorted(t.depends_on)) for t in compiled]


def stored_tasks(server: ServerProcess, job_id: int) -> list[tuple[str, str, list[dict[str, Any]], list[int]]]:
    with httpx.Client(base_url=server.url + API, headers=server.headers()) as c:
        summaries = c.get(f"/jobs/{job_id}/tasks", params={"limit": 1000}).json()["items"]
        index_of = {t["id"]: t["index"] for t in summaries}
        out = []
        for s in summaries:
            t = c.get(f"/tasks/{s['id']}").json()
            out.append((t["name"], t["type"], t["commands"], sorted(index_of[d] for d in t["depends_on"])))
    return out


@pytest.mark.parametrize("type_", sorted(JOBS))
def test_each_type_over_http(server: ServerProcess, type_: str) -> None:
    body = {"name": f"http {type_}", "type": type_, "settings": JOBS[type_]}
    r = httpx.post(server.url + API + "/jobs", json=body, headers=server.headers())
    assert r.status_code == 201, r.text
    expected = expected_tasks(type_, JOBS[type_])
    assert r.json()["tasks_total"] == len(expected) > 1
    assert stored_tasks(server, r.json()["id"]) == expected


@pytest.mark.parametrize("type_", sorted(JOBS))
def test_each_type_by_tablao_submit(server: ServerProcess, type_: str, tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"name": f"cli {type_}", "type": type_, "settings": JOBS[type_]}))
    r = subprocess.run(
        tablao_command("submit", str(job_file), "--server", server.url, "--token-file",
                       str(server.data_dir / "admin.token")),
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    job_id = int(r.stdout.split()[2])
    assert stored_tasks(server, job_id) == expected_tasks(type_, JOBS[type_])
