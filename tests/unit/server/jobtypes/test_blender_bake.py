"""blender-bake: a task per cache, a verify task after them all, and refused settings."""

from __future__ import annotations

import pytest

from services.server.jobtypes.blender_bake import VERIFY_TASK, BlenderBake
from tests.unit.server.jobtypes.helpers import compile_job, params, rejected

JOB = BlenderBake()


def test_one_task_per_cache_then_verify() -> None:
    caches = [
        {"target": "fluid", "object": "Domain", "modifier": "Fluid"},
        {"target": "cloth", "object": "Flag"},
        {"target": "point-cache"},
    ]
    tasks = compile_job(JOB, blendfile="/p/sim.blend", caches=caches, frame_start=10, frame_end=59)
    assert [t.name for t in tasks] == [
        "bake fluid/Domain/Fluid",
        "bake cloth/Flag",
        "bake point-cache",
        VERIFY_TASK,
    ]
    assert all(t.type == "blender" and t.commands[0]["name"] == "blender-bake" for t in tasks)
    assert params(tasks[0]) == {
        "blendfile": "/p/sim.blend",
        "target": "fluid",
        "object": "Domain",
        "modifier": "Fluid",
        "frame_start": 10,
        "frame_end": 59,
    }
    assert params(tasks[1]) == {
        "blendfile": "/p/sim.blend",
        "target": "cloth",
        "object": "Flag",
        "frame_start": 10,
        "frame_end": 59,
    }
    assert "object" not in params(tasks[2]) and "modifier" not in params(tasks[2])
    assert [t.steps_total for t in tasks[:3]] == [50, 50, 50]
    assert [t.depends_on for t in tasks[:3]] == [[], [], []]
    verify = tasks[3]
    assert verify.depends_on == [0, 1, 2]
    assert params(verify) == {
        "blendfile": "/p/sim.blend",
        "target": "verify",
        "caches": [
            {"target": "fluid", "object": "Domain", "modifier": "Fluid"},
            {"target": "cloth", "object": "Flag", "modifier": None},
            {"target": "point-cache", "object": None, "modifier": None},
        ],
        "frame_start": 10,
        "frame_end": 59,
    }


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        ({"caches": []}, ("caches",), "at least 1 item"),
        ({"caches": [{"target": "smoke"}]}, ("caches", 0, "target"), "'point-cache', 'fluid' or 'cloth'"),
        ({"caches": [{"target": "fluid", "modifier": "M"}]}, ("caches", 0, "modifier"), "set `object` too"),
        (
            {"caches": [{"target": "cloth", "object": "A"}, {"target": "cloth"}]},
            ("caches",),
            "overlap",
        ),
        (
            {"caches": [{"target": "cloth", "object": "A"}, {"target": "cloth", "object": "A"}]},
            ("caches",),
            "overlap",
        ),
        ({"frame_start": 20, "frame_end": 10}, ("frame_end",), "the last frame 10 comes before the first frame 20"),
        ({"blendfile": ""}, ("blendfile",), "a path is required"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], loc: tuple[object, ...], message: str) -> None:
    settings = {"blendfile": "/p/sim.blend", "caches": [{"target": "fluid"}], **change}
    got_loc, msg = rejected(JOB, **settings)
    assert got_loc == loc
    assert message in msg


def test_distinct_caches_of_one_kind_are_fine() -> None:
    caches = [
        {"target": "cloth", "object": "A"},
        {"target": "cloth", "object": "B"},
        {"target": "fluid", "object": "A", "modifier": "M1"},
        {"target": "fluid", "object": "A", "modifier": "M2"},
    ]
    assert len(compile_job(JOB, blendfile="/b.blend", caches=caches)) == 5
