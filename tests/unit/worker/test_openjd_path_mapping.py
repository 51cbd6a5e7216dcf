"""The openjd-task runner applies the farm's path variables as path mapping rules (real session, real shell)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.protocol.path_mapping import derive_path_mappings
from services.worker.runners import get_runner
from services.worker.runners.base import RunContext

pytestmark = pytest.mark.timeout(60)


def command(out: str) -> dict[str, Any]:
    return {
        "template": {
            "specificationVersion": "jobtemplate-2023-09",
            "name": "mapped",
            "parameterDefinitions": [{"name": "Out", "type": "PATH", "default": out}],
            "steps": [{
                "name": "S",
                "script": {"actions": {"onRun": {"command": "sh", "args": ["-c",
                    "echo 'out={{Param.Out}}'; echo 'rules={{Session.HasPathMappingRules}}'"]}}},
            }],
        },
        "job_parameters": {},
        "step": "S",
        "task_parameters": {},
    }  # fmt: skip


async def run(params: dict[str, Any], ctx_mappings: Any) -> str:
    runner = get_runner("openjd-task")
    assert runner is not None
    lines: list[str] = []
    await runner(params, RunContext(log=lines.append, path_mappings=ctx_mappings))
    await asyncio.sleep(0)
    return "\n".join(lines)


async def test_a_windows_path_runs_on_linux_under_the_variable_s_folder(tmp_path: Path) -> None:
    table = {"render_root": {"windows": "R:\\renders", "linux": str(tmp_path)}}
    text = await run(command("r:/Renders/shot/out.txt"), derive_path_mappings(table, "linux"))
    assert f"out={tmp_path}/shot/out.txt" in text, text
    assert "rules=true" in text
    assert f"path mapping: R:\\renders (windows) -> {tmp_path}" in text


async def test_without_rules_the_path_stays_as_written() -> None:
    text = await run(command("R:/renders/shot/out.txt"), ())  # forward slashes: `echo` reads `\r` as a CR
    assert "out=R:/renders/shot/out.txt" in text, text
    assert "rules=false" in text
