"""What holds for every job type: wire-valid JSON commands, dependencies on earlier tasks, known task types."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from services.protocol.commands import COMMANDS, TaskType
from services.protocol.jobs import Command
from services.server.jobtypes.base import paused_gc
from services.server.jobtypes.registry import get_job_type
from tests.unit.server.jobtypes.helpers import compile_job

SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "blender-render",
        {"blendfile": "/a.blend", "output_path": "/r/f_####", "frames": "1-20x3,40", "preview_video": True},
    ),
    ("blender-bake", {"blendfile": "/a.blend", "caches": [{"target": "fluid"}, {"target": "cloth"}]}),
    ("blender-still", {"blendfile": "/a.blend", "output_path": "/r/s.png", "tiles_x": 3, "tiles_y": 3}),
    ("blender-still", {"blendfile": "/a.blend", "output_path": "/r/s.png", "split": "samples"}),
    ("ffmpeg-encode", {"input_pattern": "/r/f_####.png", "output_path": "/r/v.mp4", "segment_frames": 60}),
    ("exec", {"command": ["echo", "{start}", "{end}"], "frames": "1-10", "chunk_size": 3}),
    (
        "openjd",
        {
            "template": {
                "specificationVersion": "jobtemplate-2023-09",
                "name": "j",
                "steps": [
                    {
                        "name": "A",
                        "parameterSpace": {"taskParameterDefinitions": [{"name": "F", "type": "INT", "range": "1-5"}]},
                        "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Task.Param.F}}"]}}},
                    },
                    {
                        "name": "B",
                        "dependencies": [{"dependsOn": "A"}],
                        "script": {"actions": {"onRun": {"command": "echo"}}},
                    },
                ],
            }
        },
    ),
]
TASK_TYPES = {t.value for t in TaskType}


@pytest.mark.parametrize(("name", "settings"), SAMPLES)
def test_compiled_tasks_are_well_formed(name: str, settings: dict[str, Any]) -> None:
    job_type = get_job_type(name)
    assert job_type is not None
    tasks = compile_job(job_type, **settings)
    assert tasks
    for index, task in enumerate(tasks):
        assert task.type in TASK_TYPES
        assert task.steps_total >= 1
        assert all(0 <= d < index for d in task.depends_on), (task.name, task.depends_on)
        assert len(set(task.depends_on)) == len(task.depends_on)
        for command in task.commands:
            assert command["name"] in COMMANDS
            assert Command.model_validate(json.loads(json.dumps(command))).model_dump() == command
    assert len({t.name for t in tasks}) == len(tasks), "task names repeat"


@pytest.mark.parametrize(("name", "settings"), SAMPLES)
def test_settings_survive_a_json_round_trip(name: str, settings: dict[str, Any]) -> None:
    # The Server stores model_dump(mode="json") and may compile again from it.
    job_type = get_job_type(name)
    assert job_type is not None
    first = job_type.Settings.model_validate(settings)
    again = job_type.Settings.model_validate(json.loads(json.dumps(first.model_dump(mode="json"))))
    assert again == first


def test_paused_gc_restores_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
