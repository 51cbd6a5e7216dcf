"""exec: one run per chunk with {start}/{end}/{frame} filled in, other braces kept, and refused settings."""

from __future__ import annotations

import pytest

from services.server.jobtypes.exec_job import ExecJob
from tests.unit.server.jobtypes.helpers import compile_job, params, rejected

JOB = ExecJob()


def test_chunks_substitute_start_and_end() -> None:
    tasks = compile_job(
        JOB,
        command=["{tools}/convert", "--in={render_root}/f_{start}", "--to", "{end}", "{ {start}"],
        frames="1-5,9",
        chunk_size=2,
        cwd="{render_root}/work_{start}",
        env={"RANGE": "{start}-{end}", "KEEP": "{other}"},
    )
    assert [t.name for t in tasks] == ["frames 1-2", "frames 3-4", "frame 5", "frame 9"]
    assert [params(t)["argv"] for t in tasks] == [
        ["{tools}/convert", "--in={render_root}/f_1", "--to", "2", "{ 1"],
        ["{tools}/convert", "--in={render_root}/f_3", "--to", "4", "{ 3"],
        ["{tools}/convert", "--in={render_root}/f_5", "--to", "5", "{ 5"],
        ["{tools}/convert", "--in={render_root}/f_9", "--to", "9", "{ 9"],
    ]
    assert params(tasks[0])["cwd"] == "{render_root}/work_1"
    assert params(tasks[1])["env"] == {"RANGE": "3-4", "KEEP": "{other}"}
    assert [t.steps_total for t in tasks] == [2, 2, 1, 1]
    assert all(t.type == "exec" and t.commands[0]["name"] == "exec" and t.depends_on == [] for t in tasks)


def test_frame_per_task_and_task_type() -> None:
    tasks = compile_job(JOB, command=["echo", "{frame}", "{frame}{end}"], frames="3-4", task_type="misc")
    assert [params(t) for t in tasks] == [{"argv": ["echo", "3", "33"]}, {"argv": ["echo", "4", "44"]}]
    assert {t.type for t in tasks} == {"misc"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"command": []}, "command", "at least 1 item"),
        ({"command": [" "]}, "command", "the first item must name the program"),
        ({"chunk_size": 2}, "chunk_size", "`{frame}` in command needs chunk_size 1 (it is 2)"),
        (
            {"command": ["x"], "env": {"F": "{frame}"}, "chunk_size": 3},
            "chunk_size",
            "`{frame}` in env needs chunk_size 1",
        ),
        ({"frames": "5-1"}, "frames", "range 5-1 ends before it starts"),
        ({"env": {"A=B": "1"}}, "env", "not an environment variable name"),
        ({"task_type": "Not A Type"}, "task_type", "should match pattern"),
        ({"cwd": ""}, "cwd", "a path is required"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], field: str, message: str) -> None:
    loc, msg = rejected(JOB, **{"command": ["render", "{frame}"], **change})
    assert loc == (field,)
    assert message in msg
