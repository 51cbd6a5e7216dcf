"""Every command a job type can compile has a runner that accepts its parameters, and every runner is in the contract.

Each registered job type is compiled with settings that reach each of its options (preview video, chunks, gaps,
tiles and sample chunks, segments, codecs, scenes, formats); each command it yields goes through JSON, as on
the wire, and must pass the parameter check of the Worker's runner of that name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.protocol.commands import COMMANDS, TaskType
from services.server.jobtypes.fields import ImageFormat
from services.server.jobtypes.registry import get_job_type, job_types
from services.worker.runners import RUNNERS
from services.worker.runners.base import Registered
from tests.unit.server.jobtypes.helpers import compile_job

RENDER = {"blendfile": "/p/a.blend", "output_path": "{render_root}/a/f_####"}
STILL = {"blendfile": "/p/a.blend", "output_path": "/r/s.png", "width": 64, "height": 36}
ENCODE = {"input_pattern": "/r/f_####.png", "output_path": "/r/v.mp4", "frame_start": 1, "frame_end": 100}

OPENJD_TEMPLATES = Path(__file__).parents[3] / "support" / "openjd"
_ECHO_SCRIPT = {"actions": {"onRun": {"command": "echo"}}}
OPENJD_CHUNKED = {
    "specificationVersion": "jobtemplate-2023-09",
    "extensions": ["TASK_CHUNKING"],
    "name": "chunked",
    "steps": [{"name": "S", "script": _ECHO_SCRIPT, "parameterSpace": {"taskParameterDefinitions": [
        {"name": "F", "type": "CHUNK[INT]", "range": "1-10",
         "chunks": {"defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS"}},
    ]}}],
}  # fmt: skip
OPENJD_FAN_IN = {
    "specificationVersion": "jobtemplate-2023-09",
    "name": "fan-in",
    "steps": [
        {"name": "S", "script": _ECHO_SCRIPT,
         "parameterSpace": {"taskParameterDefinitions": [{"name": "X", "type": "FLOAT", "range": [0.5, 1.5]}]}},
        {"name": "T", "script": _ECHO_SCRIPT, "dependencies": [{"dependsOn": "S"}],
         "parameterSpace": {"taskParameterDefinitions": [{"name": "P", "type": "PATH", "range": ["/a", "/b"]}]}},
        {"name": "Big", "script": _ECHO_SCRIPT,
         "parameterSpace": {"taskParameterDefinitions": [{"name": "Y", "type": "INT", "range": "1-200"}]}},
        {"name": "After", "script": _ECHO_SCRIPT, "dependencies": [{"dependsOn": "Big"}],
         "parameterSpace": {"taskParameterDefinitions": [{"name": "Z", "type": "INT", "range": "1-100"}]}},
    ],
}  # fmt: skip

CASES: dict[str, list[dict[str, Any]]] = {
    "blender-render": [
        {**RENDER, "frames": "1-10"},
        {**RENDER, "frames": "1-10", "chunk_size": 4, "scene": "Main"},
        {**RENDER, "frames": "1-5,9,20-30x2", "chunk_size": 3, "preview_video": True},
        {**RENDER, "frames": "1-24", "preview_video": True, "fps": 23.976, "preview_path": "/r/p.mp4"},
        *({**RENDER, "frames": "1-2", "format": f.value, "preview_video": True} for f in ImageFormat),
    ],
    "blender-bake": [
        {"blendfile": "/p/s.blend", "caches": [{"target": "fluid"}, {"target": "cloth", "object": "Flag"}]},
        {
            "blendfile": "/p/s.blend",
            "caches": [{"target": "point-cache", "object": "Emitter", "modifier": "Particles"}],
            "frame_start": -5,
            "frame_end": 5,
        },
    ],
    "blender-still": [
        {**STILL, "split": "tiles", "tiles_x": 3, "tiles_y": 2},
        {**STILL, "split": "samples", "samples": 10, "chunks": 3, "scene": "Main"},
        {**STILL, "output_path": "/r/s.tif", "format": "TIFF"},
        {**STILL, "output_path": "/r/s.jpg", "format": "JPEG", "split": "samples"},
    ],
    "ffmpeg-encode": [
        ENCODE,
        {**ENCODE, "segment_frames": 30},
        {**ENCODE, "output_path": "/r/v.mkv", "codec": "h265", "segment_frames": 40, "fps": 25},
        {**ENCODE, "output_path": "/r/v.mov", "codec": "prores"},
    ],
    "openjd": [
        # several steps: a range x list space, then a step depending on it
        {"template": (OPENJD_TEMPLATES / "several_steps.yaml").read_text(), "parameters": {"OutDir": "/o"}},
        # a chunked range (TASK_CHUNKING), and a fan-in large enough to go through one barrier task (echo)
        {"template": OPENJD_CHUNKED},
        {"template": OPENJD_FAN_IN},
    ],
    "exec": [
        {"command": ["echo", "{frame}"], "frames": "1-3"},
        {
            "command": ["tool", "{start}", "{end}"],
            "frames": "1-10,15",
            "chunk_size": 4,
            "cwd": "/work/{start}",
            "env": {"RANGE": "{start}-{end}"},
            "task_type": "gpu-tool",
        },
    ],
}


def test_every_registered_job_type_has_cases() -> None:
    # a new job type (or one from a plug-in) needs its representative settings here to be covered
    assert set(job_types()) <= set(CASES), f"add cases for {sorted(set(job_types()) - set(CASES))}"


@pytest.mark.parametrize(
    ("job_type", "settings"), [(name, s) for name, cases in CASES.items() for s in cases], ids=lambda v: str(v)[:40]
)
def test_every_compiled_command_passes_its_runners_check(job_type: str, settings: dict[str, Any]) -> None:
    jt = get_job_type(job_type)
    assert jt is not None, f"job type {job_type} is not registered"
    tasks = compile_job(jt, **settings)
    assert tasks
    for task in tasks:
        assert task.type in set(TaskType) or task.type == settings.get("task_type"), task.type
        for command in task.commands:
            wire = json.loads(json.dumps(command))
            assert set(wire) == {"name", "parameters"}
            runner = RUNNERS.get(wire["name"])
            assert isinstance(runner, Registered), f"no runner for {wire['name']!r}"
            runner.spec.validate(wire["parameters"])


def test_runners_and_contract_name_the_same_commands() -> None:
    assert set(RUNNERS) == set(COMMANDS)
    for name, runner in RUNNERS.items():
        assert isinstance(runner, Registered)
        assert runner.spec is COMMANDS[name]


def test_the_cases_reach_every_command_and_shape_job_types_use() -> None:
    seen = set()
    for name, cases in CASES.items():
        jt = get_job_type(name)
        assert jt is not None
        for settings in cases:
            for task in compile_job(jt, **settings):
                for c in task.commands:
                    spec = COMMANDS[c["name"]]
                    seen.add((spec.name, c["parameters"].get(spec.discriminator or "", "")))
    assert seen == {
        ("blender-render", ""),
        ("blender-bake", "fluid"),
        ("blender-bake", "cloth"),
        ("blender-bake", "point-cache"),
        ("blender-bake", "verify"),
        ("merge-images", "tiles"),
        ("merge-samples", ""),  # sample chunks (merge-images' average mode is for hand-made jobs)
        ("ffmpeg", ""),
        ("exec", ""),
        ("openjd-task", ""),
        ("echo", ""),  # an OpenJD step's barrier task
        ("remove-path", ""),
    }


def test_task_types_are_plain_strings() -> None:
    # the database binds an exact str faster than a StrEnum member (100,000 rows: tens of milliseconds)
    for name, cases in CASES.items():
        jt = get_job_type(name)
        assert jt is not None
        assert all(type(t.type) is str for t in compile_job(jt, **cases[0]))
