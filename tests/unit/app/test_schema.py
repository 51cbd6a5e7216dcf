"""The settings schema → form field rules, on the schemas the shipped job types publish."""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from app.schema import FieldSpec, parse_schema
from app.schema_values import as_raw, build_settings, convert
from services.server.jobtypes.blender_bake import BlenderBake
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


def test_bake_caches_are_a_list_of_mappings() -> None:
    specs = {s.name: s for s in parse_schema(BlenderBake.settings_schema())}
    caches = specs["caches"]
    assert caches.kind == "objects" and caches.item_title == "Cache" and caches.min_items == 1
    assert [(f.name, f.kind, f.required) for f in caches.fields] == [
        ("target", "enum", True),
        ("object", "text", False),
        ("modifier", "text", False),
    ]
    raw = {
        "blendfile": "/p/a.blend",
        "caches": [{"target": "fluid", "object": "", "modifier": ""}, {"target": "cloth", "object": "Flag"}],
        "frame_start": 1,
        "frame_end": 10,
    }
    settings, errors = build_settings(list(specs.values()), raw)
    assert errors == {}
    assert settings["caches"] == [{"target": "fluid"}, {"target": "cloth", "object": "Flag"}]
    BlenderBake.Settings.model_validate(settings)
    # problems inside an item are keyed by its path, as the Server keys them
    _, errors = build_settings(list(specs.values()), {**raw, "caches": [{"target": "smoke"}]})
    assert errors == {"caches.0.target": "must be one of point-cache, fluid, cloth"}
    _, errors = build_settings(list(specs.values()), {**raw, "caches": []})
    assert errors == {"caches": "is required"}


class Mode(IntEnum):
    FAST = 1
    GOOD = 2


class Margin(BaseModel):
    left: int = Field(0, ge=0, lt=100)
    right: float = Field(0.5, gt=0, le=1)


class Shape(BaseModel):
    kind: Literal["circle"]
    radius: float


class Box(BaseModel):
    kind: Literal["box"]
    size: list[float]


class Everything(BaseModel):
    """The shapes a job type's settings may take, beyond the shipped ones."""

    margin: Margin
    crop: Margin | None = None
    mode: Mode = Mode.GOOD
    frames: list[int] = Field(default_factory=list, max_length=3)
    weights: dict[str, float] = Field(default_factory=dict)
    shape: Shape | Box = Field(discriminator="kind")
    note: str | None = Field(None, max_length=5)


def test_other_shapes_round_trip() -> None:
    specs = {s.name: s for s in parse_schema(Everything.model_json_schema())}
    assert specs["margin"].kind == "object" and specs["margin"].required
    assert specs["crop"].kind == "object" and not specs["crop"].required
    assert specs["mode"].kind == "enum" and specs["mode"].choice_values == [1, 2]
    assert specs["frames"].kind == "list" and specs["frames"].item is not None
    assert specs["weights"].kind == "dict"
    assert specs["shape"].kind == "json"
    left = specs["margin"].fields[0]
    assert (left.minimum, left.exclusive_maximum) == (0, 100)
    raw = {
        "margin": {"left": 3, "right": "1"},
        "crop": None,
        "mode": "1",
        "frames": "1 5 9",
        "weights": "a=0.5",
        "shape": '{"kind": "box", "size": [1, 2]}',
        "note": "",
    }
    settings, errors = build_settings(list(specs.values()), raw)
    assert errors == {}
    assert settings == {
        "margin": {"left": 3, "right": 1.0},
        "mode": 1,
        "frames": [1, 5, 9],
        "weights": {"a": 0.5},
        "shape": {"kind": "box", "size": [1, 2]},
    }
    Everything.model_validate(settings)
    bad = {**raw, "margin": {"left": 100, "right": 0}, "frames": "1 x", "shape": "{", "note": "toolong"}
    _, errors = build_settings(list(specs.values()), bad)
    assert errors == {
        "margin.left": "must be less than 100",
        "margin.right": "must be more than 0",
        "frames": "item 2: must be a whole number",
        "shape": errors["shape"],
        "note": "may have at most 5 characters",
    }
    assert errors["shape"].startswith("is not JSON")
    # a job's settings shown in the form's terms, and back
    back = {s.name: as_raw(s, settings[s.name]) for s in specs.values() if s.name in settings}
    again, errors = build_settings(list(specs.values()), {**raw, **back})
    assert errors == {} and again == settings


def test_every_shipped_setting_gets_a_real_field() -> None:
    """Only the OpenJD template (which has its own form) falls back to JSON; every other shape is modelled."""
    from services.server.jobtypes.registry import job_types

    def kinds(specs: list[FieldSpec], where: str) -> Iterator[tuple[str, str]]:
        for s in specs:
            yield f"{where}{s.name}", s.kind
            yield from kinds(s.fields, f"{where}{s.name}.")

    found = dict(kv for name, jt in job_types().items() for kv in kinds(parse_schema(jt.settings_schema()), f"{name}:"))
    assert {k for k, v in found.items() if v == "json"} == {"openjd:template"}
    assert found["blender-bake:caches"] == "objects" and found["blender-bake:caches.target"] == "enum"
