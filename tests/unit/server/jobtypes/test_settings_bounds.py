"""Bounds on job settings: every free-text setting has a length limit (a 422 naming it), and a job too big for the
farm, in tasks or in bytes of commands, is refused from its job type's estimate before any task is built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.server.config import ServerConfig
from services.server.jobtypes.base import MAX_COMMAND_BYTES, JobType
from services.server.jobtypes.blender_bake import BlenderBake
from services.server.jobtypes.blender_render import BlenderRender
from services.server.jobtypes.blender_still import BlenderStill
from services.server.jobtypes.exec_job import ARG_MAX, ENV_VALUE_MAX, ExecJob
from services.server.jobtypes.ffmpeg_encode import FfmpegEncode
from services.server.jobtypes.fields import NAME_MAX, PATH_MAX
from tests.support.inprocess_server import admin_client, stored_jobs_and_tasks
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
    async with admin_client(ServerConfig(data_dir=tmp_path)) as c:  # the farm's default limits: 1,000,000 tasks
        yield c


async def post(client: httpx.AsyncClient, job_type: str, settings: dict[str, Any]) -> httpx.Response:
    return await client.post(JOBS, json={"name": "j", "type": job_type, "settings": settings})


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
    r = await post(client, job_type, settings)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert stored_jobs_and_tasks(client) == (0, 0)


async def test_strings_at_their_limit_pass(client: httpx.AsyncClient) -> None:
    r = await post(client, "blender-render", {**RENDER, "scene": "s" * NAME_MAX, "frames": "1-3"})
    assert r.status_code == 201, r.text
    r = await post(client, "exec", {**EXEC, "command": ["tool", "a" * ARG_MAX], "frames": "1-3"})
    assert r.status_code == 201, r.text


# Each was refused only after its tasks were built (a 10,000,000-segment encode took 26 s of the Server's CPU): the
# job type's estimate refuses them before; bench_server.py measures how fast.
TOO_BIG: list[tuple[str, dict[str, Any], str, str]] = [
    ("ffmpeg-encode", {**FFMPEG, "frame_end": 10_000_000, "segment_frames": 1}, "settings.segment_frames",
     "10,000,000 tasks"),
    # a million segments + the join; a million frames + the preview
    ("ffmpeg-encode", {**FFMPEG, "frame_end": 1_000_000, "segment_frames": 1}, "settings", "1,000,001 tasks"),
    ("blender-render", {**RENDER, "frames": "1-1000000", "preview_video": True}, "settings", "1,000,001 tasks"),
    # ~9 KB of paths and scene name in each of 100,000 tasks: about 900 MiB
    ("blender-render",
     {"blendfile": "/r/" + "b" * 4000 + ".blend", "output_path": "/r/" + "o" * 4000 + "_####",
      "scene": "s" * NAME_MAX, "frames": "1-100000"}, "settings", "MiB"),
    # 60 arguments of 4,000 characters (240 KB of settings) in each of 5,000 tasks: about 1.1 GiB
    ("exec", {"command": ["tool", *["a" * 4000] * 60], "frames": "1-5000"}, "settings", "MiB"),
    # a join naming 200,000 segments of a 4,000-character output path, twice
    ("ffmpeg-encode", {**FFMPEG, "output_path": LONG_VIDEO, "frame_end": 200_000, "segment_frames": 1}, "settings",
     "MiB"),
]  # fmt: skip


@pytest.mark.parametrize(("job_type", "settings", "field", "says"), TOO_BIG, ids=range(len(TOO_BIG)))
async def test_a_job_too_big_for_the_farm_is_refused_naming_the_field_with_nothing_stored(
    client: httpx.AsyncClient, job_type: str, settings: dict[str, Any], field: str, says: str
) -> None:
    r = await post(client, job_type, settings)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert says in r.text, r.text
    assert stored_jobs_and_tasks(client) == (0, 0)


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
