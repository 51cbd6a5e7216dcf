"""Bounds on job settings: every free-text setting has a length limit (a 422 naming it), and a job too big for the
farm, in tasks or in bytes of commands, is refused from its job type's estimate before any task is built."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.tables import JobRow, TaskRow
from services.server.jobtypes.base import MAX_COMMAND_BYTES, JobType
from services.server.jobtypes.blender_bake import BlenderBake
from services.server.jobtypes.blender_render import BlenderRender
from services.server.jobtypes.blender_still import BlenderStill
from services.server.jobtypes.exec_job import ARG_MAX, ENV_VALUE_MAX, ExecJob
from services.server.jobtypes.ffmpeg_encode import FfmpegEncode
from services.server.jobtypes.fields import NAME_MAX, PATH_MAX
from tests.unit.server.jobtypes.helpers import compile_job

JOBS = "/api/v1/jobs"
BLEND = "/r/sh010.blend"
RENDER = {"blendfile": BLEND, "output_path": "/r/out/frame_####"}
STILL = {"blendfile": BLEND, "output_path": "/r/poster.png"}
BAKE = {"blendfile": BLEND, "caches": [{"target": "cloth"}]}
FFMPEG = {"input_pattern": "/r/out/frame_%04d.png", "output_path": "/r/shot.mp4"}
EXEC = {"command": ["tool", "{frame}"]}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(data_dir=tmp_path))  # the farm's default limits: a million tasks per job
    token = (tmp_path / "admin.token").read_text().strip()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", headers={"Authorization": f"Bearer {token}"}
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c
    app.state.engine.dispose()


def stored(client: httpx.AsyncClient) -> tuple[int, int]:
    with client.app.state.read_sessions() as session:  # type: ignore[attr-defined]
        return (session.scalar(select(func.count()).select_from(JobRow)) or 0,
                session.scalar(select(func.count()).select_from(TaskRow)) or 0)  # fmt: skip


async def post(client: httpx.AsyncClient, job_type: str, settings: dict[str, Any]) -> tuple[httpx.Response, float]:
    began = time.perf_counter()
    r = await client.post(JOBS, json={"name": "j", "type": job_type, "settings": settings})
    return r, time.perf_counter() - began


LONG_PATH = "/r/" + "p" * PATH_MAX
LONG_NAME = "n" * (NAME_MAX + 1)
LONG_VIDEO = "/r/" + "v" * 4000 + ".mp4"

OVER_LONG = [
    ("blender-render", {**RENDER, "scene": LONG_NAME}, "settings.scene"),
    ("blender-render", {**RENDER, "blendfile": LONG_PATH}, "settings.blendfile"),
    ("blender-render", {**RENDER, "output_path": LONG_PATH + "_####"}, "settings.output_path"),
    ("blender-render", {**RENDER, "preview_video": True, "preview_path": LONG_PATH + ".mp4"}, "settings.preview_path"),
    ("blender-still", {**STILL, "scene": LONG_NAME}, "settings.scene"),
    ("blender-still", {**STILL, "blendfile": LONG_PATH}, "settings.blendfile"),
    ("blender-still", {**STILL, "output_path": LONG_PATH + ".png"}, "settings.output_path"),
    ("blender-bake", {**BAKE, "blendfile": LONG_PATH}, "settings.blendfile"),
    ("blender-bake", {**BAKE, "caches": [{"target": "cloth", "object": LONG_NAME}]}, "settings.caches.0.object"),
    (
        "blender-bake",
        {**BAKE, "caches": [{"target": "cloth", "object": "o", "modifier": LONG_NAME}]},
        "settings.caches.0.modifier",
    ),
    ("ffmpeg-encode", {**FFMPEG, "input_pattern": LONG_PATH + "_%04d.png"}, "settings.input_pattern"),
    ("ffmpeg-encode", {**FFMPEG, "output_path": LONG_PATH + ".mp4"}, "settings.output_path"),
    ("exec", {**EXEC, "command": ["tool", "a" * (ARG_MAX + 1)]}, "settings.command.1"),
    ("exec", {**EXEC, "cwd": LONG_PATH}, "settings.cwd"),
    ("exec", {**EXEC, "env": {"V": "v" * (ENV_VALUE_MAX + 1)}}, "settings.env.V"),
]


@pytest.mark.parametrize(("job_type", "settings", "field"), OVER_LONG, ids=[f for _, _, f in OVER_LONG])
async def test_an_over_long_string_setting_is_a_422_naming_it(
    client: httpx.AsyncClient, job_type: str, settings: dict[str, Any], field: str
) -> None:
    r, _ = await post(client, job_type, settings)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert stored(client) == (0, 0)


async def test_strings_at_their_limit_pass(client: httpx.AsyncClient) -> None:
    r, _ = await post(client, "blender-render", {**RENDER, "scene": "s" * NAME_MAX, "frames": "1-3"})
    assert r.status_code == 201, r.text
    r, _ = await post(client, "exec", {**EXEC, "command": ["tool", "a" * ARG_MAX], "frames": "1-3"})
    assert r.status_code == 201, r.text


async def test_a_huge_ffmpeg_encode_is_refused_at_once_naming_the_field(client: httpx.AsyncClient) -> None:
    # was: 26 s of building and storing a million tasks before the farm's limit stopped it
    r, took = await post(client, "ffmpeg-encode", {**FFMPEG, "frame_end": 10_000_000, "segment_frames": 1})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["settings.segment_frames"], r.text
    assert "10,000,000 tasks" in r.text
    assert took < 2, took
    assert stored(client) == (0, 0)


@pytest.mark.parametrize(
    ("job_type", "settings"),
    [
        ("ffmpeg-encode", {**FFMPEG, "frame_end": 1_000_000, "segment_frames": 1}),  # a million segments + the join
        ("blender-render", {**RENDER, "frames": "1-1000000", "preview_video": True}),  # a million frames + preview
    ],
)
async def test_a_job_just_over_the_farms_task_limit_is_refused_before_any_task_is_stored(
    client: httpx.AsyncClient, job_type: str, settings: dict[str, Any]
) -> None:
    r, took = await post(client, job_type, settings)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "settings" and "1,000,001 tasks" in r.text, r.text
    assert took < 2, took
    assert stored(client) == (0, 0)


@pytest.mark.parametrize(
    ("job_type", "settings"),
    [
        # ~9 KB of paths and scene name in each of 100,000 tasks: about 900 MiB
        (
            "blender-render",
            {
                "blendfile": "/r/" + "b" * 4000 + ".blend",
                "output_path": "/r/" + "o" * 4000 + "_####",
                "scene": "s" * NAME_MAX,
                "frames": "1-100000",
            },
        ),
        # 60 arguments of 4,000 characters (240 KB of settings) in each of 5,000 tasks: about 1.1 GiB
        ("exec", {"command": ["tool", *["a" * 4000] * 60], "frames": "1-5000"}),
        # a join naming 200,000 segments of a 4,000-character output path, twice
        ("ffmpeg-encode", {**FFMPEG, "output_path": LONG_VIDEO, "frame_end": 200_000, "segment_frames": 1}),
    ],
)
async def test_a_job_whose_commands_are_too_big_is_refused_before_any_task_is_stored(
    client: httpx.AsyncClient, job_type: str, settings: dict[str, Any]
) -> None:
    r, took = await post(client, job_type, settings)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "settings" and "MiB" in r.text, r.text
    assert took < 2, took
    assert stored(client) == (0, 0)


ESTIMATED: list[tuple[JobType, dict[str, Any]]] = [
    (BlenderRender(), {**RENDER, "frames": "1-250"}),
    (BlenderRender(), {**RENDER, "frames": "1-9,20,30-40x2,95-130", "chunk_size": 4, "scene": "Main"}),
    (BlenderRender(), {**RENDER, "frames": "1-1000", "chunk_size": 7, "preview_video": True}),
    (ExecJob(), {**EXEC, "frames": "1-9,20,30-40x2", "env": {"F": "{frame}"}, "cwd": "/w/{frame}"}),
    (ExecJob(), {"command": ["t", "{start}", "{end}"], "frames": "1-9,20,30-40x2,900-1999", "chunk_size": 10}),
    (FfmpegEncode(), {**FFMPEG, "frame_end": 250}),
    (FfmpegEncode(), {**FFMPEG, "frame_end": 12_345, "segment_frames": 100}),
    (FfmpegEncode(), {**FFMPEG, "output_path": "C:\\r\\shot.mov", "codec": "prores", "frame_end": 5000}),
    (BlenderStill(), {**STILL, "tiles_x": 16, "tiles_y": 16}),
    (BlenderStill(), {**STILL, "split": "samples", "chunks": 8, "scene": "Main"}),
    (BlenderBake(), {**BAKE, "caches": [{"target": "cloth"}, {"target": "fluid", "object": "Water"}]}),
]


@pytest.mark.parametrize(("job_type", "settings"), ESTIMATED, ids=lambda v: getattr(v, "name", ""))
def test_estimates_count_the_tasks_exactly_and_their_bytes_closely(job_type: JobType, settings: dict[str, Any]) -> None:
    tasks = compile_job(job_type, **settings)
    size = job_type.estimate(job_type.Settings.model_validate(settings))
    assert size is not None
    assert size.tasks == len(tasks)
    actual = sum(len(orjson.dumps(t.commands)) for t in tasks)
    assert actual * 0.9 <= size.command_bytes <= actual * 1.1, (size.command_bytes, actual)


def test_the_command_limit_leaves_room_for_a_million_frames_with_long_paths() -> None:
    folder = "{render_root}/" + "p" * 190
    settings = BlenderRender.Settings.model_validate(
        {"blendfile": folder + "/shot.blend", "output_path": folder + "/frame_####", "frames": "1-1000000"}
    )
    size = BlenderRender().estimate(settings)
    assert size.tasks == 1_000_000 and size.command_bytes < MAX_COMMAND_BYTES
