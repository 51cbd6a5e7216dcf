"""The openjd-task runner with real subprocesses: environments in order, progress, failures, bad parameters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from services.worker.runners import get_runner
from services.worker.runners.base import CommandFailed, RunContext, Runner

_runner = get_runner("openjd-task")
assert _runner is not None
RUNNER: Runner = _runner  # the registered runner: the contract's check first, as on a worker

pytestmark = pytest.mark.timeout(60)


def command(script: str, env_enter: str = "echo entering", **task: Any) -> dict[str, Any]:
    return {
        "template": {
            "specificationVersion": "jobtemplate-2023-09",
            "name": "unit",
            "parameterDefinitions": [{"name": "Word", "type": "STRING", "default": "hello"}],
            "steps": [{
                "name": "S",
                "stepEnvironments": [{"name": "E", "script": {
                    "actions": {"onEnter": {"command": "sh", "args": ["-c", env_enter]},
                                "onExit": {"command": "sh", "args": ["-c", "echo leaving"]}}}}],
                "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-3"}]},
                "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", script]}}},
            }],
        },
        "job_parameters": {"Word": "hi"},
        "step": "S",
        "task_parameters": {"N": {"type": "INT", "value": "2"}},
        **task,
    }  # fmt: skip


async def run(params: dict[str, Any]) -> tuple[list[str], list[tuple[int | None, int | None]]]:
    lines: list[str] = []
    progress: list[tuple[int | None, int | None]] = []
    ctx = RunContext(log=lines.append, progress=lambda d, t: progress.append((d, t)))
    try:
        await RUNNER(params, ctx)
    finally:
        await asyncio.sleep(0)  # lines posted from the session's threads
    return lines, progress


async def test_task_runs_between_entering_and_leaving_with_progress() -> None:
    script = "echo 'word={{Param.Word}} n={{Task.Param.N}}'; echo 'openjd_progress: 50'; sleep 0.3"
    lines, progress = await run(command(script))
    text = "\n".join(lines)
    assert text.index("entering") < text.index("word=hi n=2") < text.index("leaving")
    assert (50, 100) in progress


async def test_failing_environment_skips_the_task_and_still_leaves() -> None:
    with pytest.raises(CommandFailed, match="entering environment 'E' failed: exit status 4") as info:
        await run(command("echo never-run", env_enter="exit 4"))
    assert "never-run" not in str(info.value)


async def test_failing_task_names_the_step_and_status() -> None:
    with pytest.raises(CommandFailed, match="step 'S' failed: exit status 7"):
        await run(command("exit 7"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "nope"}, "parameter 'template': input should be a valid dictionary"),
        ({"step": "Other"}, "has no step 'Other'"),
        ({"task_parameters": {"N": {"type": "WHAT", "value": "1"}}}, r"parameter 'task_parameters\.N\.type'"),
        ({"job_parameters": {"Word": 3}}, r"parameter 'job_parameters\.Word': input should be a valid string"),
        ({"template": {"specificationVersion": "jobtemplate-2023-09", "name": "x", "steps": []}}, "does not load"),
    ],
)
async def test_bad_parameters_are_clear(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandFailed, match=message):
        await run(command("true", **change))


async def test_cancel_exits_the_environment() -> None:
    lines: list[str] = []
    task = asyncio.create_task(RUNNER(command("echo started; sleep 30"), RunContext(log=lines.append)))
    for _ in range(200):
        if any("started" in ln for ln in lines):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert any("leaving" in ln for ln in lines), lines


def test_a_worker_loads_openjd_only_for_its_first_openjd_task() -> None:
    # openjd-model and openjd-sessions add about 13 MB to an idle worker that may never see an OpenJD job
    code = "import sys, services.worker.cli; print(sorted(m for m in sys.modules if m.startswith('openjd')))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.strip() == "[]", shown.stdout
