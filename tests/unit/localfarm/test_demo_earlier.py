"""A later start of the all-in-one farm names the demo job an earlier start submitted by its real state, asked of
the Server: a canceled or failed demo is not told as rendering on, and the user learns how to requeue it or submit
the demo anew."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from services.localfarm import cli, demo_run
from services.localfarm.demo_earlier import (
    REMOVED,
    EarlierDemo,
    look_up,
    remember_job,
    remembered_job,
    told,
)
from services.protocol import server_client
from services.protocol.server_client import ServerClient


def job_json(job_id: int, status: str, out_dir: Path) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"id": job_id, "name": "demo: sample scene (09:00:00)", "type": "blender-render",
            "settings": {"output_path": str(out_dir / "frame_####")}, "priority": 60, "submitter": "admin",
            "tags": [], "manager_id": None, "depends_on": [], "max_task_failures": 3, "on_task_failure": "fail-job",
            "status": status, "activity": "", "created": now, "updated": now, "tasks_total": 13,
            "tasks_completed": 4, "tasks_failed": 0, "tasks_active": 0, "tasks": [], "tasks_next_cursor": None,
            "log": []}  # fmt: skip


def farm_with(jobs: dict[int, dict[str, Any]]) -> httpx.MockTransport:
    """A Server that knows `jobs` (by id), answers others 404 and lists them all."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1")
        if path == "/jobs":
            return httpx.Response(200, json={"items": list(jobs.values())})
        job_id = int(path.rsplit("/", 1)[1])
        if job_id in jobs:
            return httpx.Response(200, json=jobs[job_id])
        return httpx.Response(404, json={"detail": f"job {job_id} not found"})

    return httpx.MockTransport(answer)


def earlier_run(tmp_path: Path, job_id: int | None) -> Path:
    run = tmp_path / "demo" / "render-20261203-181500"
    if job_id is None:
        run.mkdir(parents=True)
    else:
        remember_job(run, job_id)
    return run


async def state_of(run: Path, jobs: dict[int, dict[str, Any]]) -> EarlierDemo:
    async with ServerClient("http://farm.test", "t", transport=farm_with(jobs)) as client:
        return await look_up(client, run)


def test_a_canceled_demo_is_told_canceled_at_the_next_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` after the user canceled the demo: it says canceled, how to requeue it, and how to submit anew."""
    monkeypatch.setattr("services.localfarm.demo_run.shutil.which", lambda _name: "/usr/bin/blender")
    monkeypatch.setattr(demo_run, "make_demo_scene", lambda work, *_: work / "sample.blend")
    monkeypatch.setattr("services.localfarm.demo_run.httpx.post", lambda *_a, **_k: httpx.Response(201, json={"id": 7}))
    run = demo_run.DemoRun("http://farm.test", "t", tmp_path / "demo")
    assert run.submit() == 7 and remembered_job(run.out_dir) == 7
    jobs = {7: job_json(7, "canceled", run.out_dir)}
    monkeypatch.setattr(server_client, "ServerClient", lambda url, token, **kw: ServerClient(
        url, token, **kw, transport=farm_with(jobs)))  # fmt: skip

    def submitted(*_: Any) -> None:
        raise AssertionError("the demo was submitted again")

    monkeypatch.setattr("services.localfarm.demo_run.DemoRun.submit", submitted)
    (tmp_path / "admin.token").write_text("t\n")
    farm = SimpleNamespace(server_url="http://farm.test", admin_token_file=tmp_path / "admin.token")
    asyncio.run(cli._demo(farm, tmp_path))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert f"The demo job 7 of an earlier start was canceled; its frames so far are in {run.out_dir}" in out
    assert "job 7 --action requeue`, or Requeue… on the job in the desktop app" in out
    assert "demo` submits it anew" in out
    assert "renders on" not in out and "frames go to" not in out


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("failed", "of an earlier start failed; its frames so far are in"),
        ("cancel-requested", "of an earlier start is canceling; its frames so far are in"),
        ("paused", "of an earlier start is paused; resume it with `tablao job 7 --action resume`"),
        ("active", "of an earlier start is still on the farm (active); its frames go to"),
        ("queued", "of an earlier start is still on the farm (queued); its frames go to"),
        ("completed", "of an earlier start completed; its frames are in"),
    ],
)
def test_each_state_is_told_as_it_is(tmp_path: Path, status: str, said: str) -> None:
    run = earlier_run(tmp_path, 7)
    earlier = asyncio.run(state_of(run, {7: job_json(7, status, run)}))
    assert earlier == EarlierDemo(run, 7, status)
    assert f"The demo job 7 {said}" in told(earlier, "tablao")


def test_a_removed_demo_and_an_unknown_one(tmp_path: Path) -> None:
    run = earlier_run(tmp_path, 7)
    gone = asyncio.run(state_of(run, {}))
    assert gone == EarlierDemo(run, 7, REMOVED)
    assert told(gone, "tablao") == (
        "The demo job 7 of an earlier start is no longer on the farm (`tablao demo` renders it again)"
    )
    unknown = told(EarlierDemo(run, 7), "tablao")  # the Server did not answer: nothing claimed
    assert "`tablao jobs` shows whether it renders on" in unknown and "canceled" not in unknown


def test_a_run_of_an_older_version_is_found_by_its_output(tmp_path: Path) -> None:
    """A folder made before the job's id was kept: the job whose frames go there."""
    run = earlier_run(tmp_path, None)
    other = job_json(3, "active", tmp_path / "demo" / "render-20261201-090000")
    earlier = asyncio.run(state_of(run, {3: other, 5: job_json(5, "canceled", run)}))
    assert earlier == EarlierDemo(run, 5, "canceled")
    assert asyncio.run(state_of(run, {3: other})) == EarlierDemo(run)


def test_a_rendered_demo_asks_nothing(tmp_path: Path) -> None:
    video = earlier_run(tmp_path, 7) / "preview.mp4"
    video.write_bytes(b"\0" * 16)
    earlier = asyncio.run(state_of(video, {}))  # a Server without the job: not asked
    assert told(earlier, "tablao") == f"The demo rendered at an earlier start: {video} (`tablao demo` renders it again)"
