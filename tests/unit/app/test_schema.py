"""The settings schema → form field rules, on the schemas the shipped job types publish."""

from __future__ import annotations

import pytest

from app.schema import build_settings, convert, parse_schema
from services.server.jobtypes.blender_render import BlenderRender
from services.server.jobtypes.exec_job import ExecJob


def test_blender_render_schema_becomes_fields() -> None:
    specs = {s.name: s for s in parse_schema(BlenderRender.settings_schema())}
    assert specs["blendfile"].kind == "path" and specs["blendfile"].required
    assert specs["output_path"].path_mode == "save"
    assert specs["format"].kind == "enum" and "OPEN_EXR" in specs["format"].choices
    assert specs["chunk_size"].kind == "int" and specs["chunk_size"].minimum == 1
    assert specs["fps"].kind == "float" and specs["fps"].exclusive_minimum == 0
    assert specs["preview_video"].kind == "bool"
    assert specs["scene"].nullable and specs["scene"].kind == "text"
    assert specs["frames"].example == "1-250"


def test_build_settings_validates_before_sending() -> None:
    specs = parse_schema(BlenderRender.settings_schema())
    raw = {"blendfile": "", "output_path": "/out/f_####", "frames": "1-10", "chunk_size": 0, "fps": 0}
    settings, errors = build_settings(specs, raw)
    assert errors == {
        "blendfile": "is required",
        "chunk_size": "must be at least 1",
        "fps": "must be more than 0",
    }
    raw |= {"blendfile": "/p/a.blend", "chunk_size": 5, "fps": 24, "format": "PNG", "scene": ""}
    settings, errors = build_settings(specs, raw)
    assert errors == {}
    assert settings["chunk_size"] == 5 and "scene" not in settings
    # what the form built is what the job type accepts
    BlenderRender.Settings.model_validate(settings)


def test_exec_lists_dicts_and_patterns() -> None:
    specs = {s.name: s for s in parse_schema(ExecJob.settings_schema())}
    assert convert(specs["command"], 'echo "a b" {frame}') == ["echo", "a b", "{frame}"]
    with pytest.raises(ValueError, match="required"):
        convert(specs["command"], "  ")
    assert convert(specs["env"], "A=1\n\nB=x=y") == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match="line 1"):
        convert(specs["env"], "oops")
    with pytest.raises(ValueError, match="must match"):
        convert(specs["task_type"], "Bad Type")
    settings, errors = build_settings(list(specs.values()), {"command": "sleep 1", "frames": "1-3"})
    assert errors == {}
    ExecJob.Settings.model_validate(settings)
