"""A task's updates in the durable buffer: `active` first, then the command's output, then the final status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.protocol.jobs import Command
from services.protocol.worker_api import AssignedTask
from services.protocol.worker_client import WorkerClient
from services.worker.buffer import UpdateBuffer
from services.worker.runners import Programs
from services.worker.taskrun import TaskRun

pytestmark = pytest.mark.usefixtures("spawn_way")


async def run_task(tmp_path: Path, *commands: Command) -> list[dict[str, Any]]:
    return (await finished_run(tmp_path, *commands))[1]


async def finished_run(tmp_path: Path, *commands: Command) -> tuple[TaskRun, list[dict[str, Any]]]:
    """The task run to its end, and its rows in the buffer."""
    client = WorkerClient("http://127.0.0.1:9")  # nothing listens: a may-i-run fails, which changes nothing
    buffer = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=60)
    task = AssignedTask(
        id=7, job_id=1, job_name="j", name="t", type="exec", handout=1, commands=list(commands), steps_total=1
    )
    run = TaskRun(
        task, client=client, buffer=buffer, programs=Programs(), worker_name="w", may_i_run_interval=60,
        may_i_run_wait=20, flush_interval=60, grace_seconds=0.5,
    )  # fmt: skip
    assert await run.run()
    rows = [json.loads(r.body) for r in buffer.head()]
    buffer.close()
    await client.aclose()
    return run, rows


async def test_active_comes_before_the_commands_output_and_the_final_status_last(tmp_path: Path) -> None:
    printing = Command(name="exec", parameters={"argv": ["sh", "-c", "echo first; echo second"]})
    rows = await run_task(tmp_path, printing)
    statuses = [(i, r["status"]) for i, r in enumerate(rows) if r.get("status")]
    assert [s for _, s in statuses] == ["active", "completed"] and statuses[1][0] == len(rows) - 1
    first_output = min(i for i, r in enumerate(rows) if "first" in r.get("log_lines", []))
    assert statuses[0][0] < first_output  # the command's output never rides on (or before) the `active` row
    lines = [ln for r in rows for ln in r.get("log_lines", [])]
    assert lines.index("first") < lines.index("second")
    assert "started on worker w" in lines[0]


@pytest.mark.parametrize(
    "command", [Command(name="no-such-command"), Command(name="exec", parameters={"argv": ["no-such-program-here"]})]
)
async def test_a_command_that_cannot_start_still_reports_active_then_failed(tmp_path: Path, command: Command) -> None:
    rows = await run_task(tmp_path, command)
    assert [r["status"] for r in rows if r.get("status")] == ["active", "failed"]


async def test_a_bad_parameter_fails_the_task_naming_it_and_later_commands_do_not_run(tmp_path: Path) -> None:
    bad = Command(name="sleep", parameters={"duration": "5"})
    after = Command(name="echo", parameters={"message": "never printed"})
    rows = await run_task(tmp_path, bad, after)
    assert [r["status"] for r in rows if r.get("status")] == ["active", "failed"]
    final = json.dumps(rows[-1])
    assert "sleep: parameter 'duration': input should be a valid number, got '5'" in final
    assert "never printed" not in json.dumps(rows)


async def test_a_command_without_a_program_reports_active_before_its_end(tmp_path: Path) -> None:
    quick = Command(name="echo", parameters={"message": "hello"})
    slow = Command(name="sleep", parameters={"duration": 0.05})
    for commands in ((quick,), (slow, quick)):
        (tmp_path / str(len(commands))).mkdir()
        rows = await run_task(tmp_path / str(len(commands)), *commands)
        statuses = [(i, r["status"]) for i, r in enumerate(rows) if r.get("status")]
        assert [s for _, s in statuses] == ["active", "completed"], rows
        assert statuses[1][0] == len(rows) - 1


async def test_how_a_task_ended_is_said_in_words(tmp_path: Path) -> None:
    # the worker's log line for the task ("task 94 completed", "task 94 failed: ..."), not "finished" for both
    done, _ = await finished_run(tmp_path, Command(name="echo", parameters={"message": "hi"}))
    assert done.ending == "completed"
    (tmp_path / "2").mkdir()
    failed, rows = await finished_run(tmp_path / "2", Command(name="exec", parameters={"argv": ["sh", "-c", "exit 3"]}))
    assert failed.ending.startswith("failed: ") and failed.ending in json.dumps(rows[-1])
