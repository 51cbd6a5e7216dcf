"""The command contract: its generated document, its examples, and the messages of its parameter check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.protocol.command_spec import InvalidParameters
from services.protocol.commands import (
    BLENDER_RENDER,
    COMMANDS,
    ECHO,
    EXEC,
    MERGE_IMAGES,
    SLEEP,
    TaskType,
)
from services.protocol.commands_doc import markdown

ROOT = Path(__file__).resolve().parents[3]


def test_docs_commands_md_is_generated_from_the_contract() -> None:
    committed = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    assert committed == markdown(), (
        "docs/commands.md is stale: run `python -m services.protocol.commands_doc --markdown > docs/commands.md`"
    )


def test_the_generator_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.protocol.commands_doc", "--markdown"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == markdown()
    for name in COMMANDS:
        assert f"### `{name}`" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "services.protocol.commands_doc"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "usage" in bad.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_example_is_valid_and_the_builder_keeps_the_dict(name: str) -> None:
    spec = COMMANDS[name]
    assert spec.validate(spec.example) == spec.example
    built = spec(spec.example)
    assert built == {"name": name, "parameters": spec.example}
    assert built["parameters"] is spec.example  # no copy: compiling 100,000 tasks stays cheap


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        (ECHO, {}, "echo: parameter 'message': field required"),
        (ECHO, {"message": 5}, "echo: parameter 'message': input should be a valid string, got 5"),
        (ECHO, {"message": "x", "msg": "y"}, "echo: parameter 'msg': extra inputs are not permitted, got 'y'"),
        (ECHO, ["x"], "echo: parameters: input should be a valid dictionary, got ['x']"),
        (SLEEP, {"duration": "5"}, "sleep: parameter 'duration': input should be a valid number, got '5'"),
        (SLEEP, {"duration": True}, "sleep: parameter 'duration': input should be a valid number, got True"),
        (EXEC, {"argv": ["a", 2]}, "exec: parameter 'argv[1]': input should be a valid string, got 2"),
        (MERGE_IMAGES, {"mode": "x"}, "merge-images: parameter 'mode': must be one of 'tiles', 'average', got 'x'"),
        (
            MERGE_IMAGES,
            {"mode": "tiles", "tiles": [{"path": "/a", "x": -1, "y": 0}], "width": 2, "height": 2, "output": "/o"},
            "merge-images: parameter 'tiles[0].x': input should be greater than or equal to 0, got -1",
        ),
    ],
)
def test_a_bad_parameter_is_named(spec: Any, params: Any, message: str) -> None:
    with pytest.raises(InvalidParameters, match=f"^{re.escape(message)}$"):
        spec.validate(params)


def test_the_message_stays_short_for_hostile_input() -> None:
    with pytest.raises(InvalidParameters) as info:
        EXEC.validate({"argv": list(range(10_000)), "cwd": "x" * 100_000})
    text = str(info.value)
    assert len(text) < 600
    assert text.endswith("(and 9997 more)")
    with pytest.raises(InvalidParameters) as info:
        BLENDER_RENDER.validate({"blendfile": 1, "output": "/o", "format": "PNG", "frames": "x" * 100_000, "y": 0})
    assert len(str(info.value)) < 600


def test_task_types_are_plain_strings_on_the_wire() -> None:
    assert isinstance(TaskType.BLENDER, str) and str(TaskType.BLENDER) == "blender"
    assert {t.value for t in TaskType} == {"blender", "ffmpeg", "image", "file-management", "exec", "openjd", "misc"}
