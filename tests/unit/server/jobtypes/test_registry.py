"""The entry-point registry finds the six job types, and each one's settings schema is usable by a form."""

from __future__ import annotations

import json

import pytest

from services.server.jobtypes.base import JobType
from services.server.jobtypes.registry import get_job_type, job_types

REQUIRED = {
    "blender-render": {"blendfile", "output_path"},
    "blender-bake": {"blendfile", "caches"},
    "blender-still": {"blendfile", "output_path"},
    "ffmpeg-encode": {"input_pattern", "output_path"},
    "exec": {"command"},
    "openjd": {"template"},
}


def test_all_six_are_registered() -> None:
    found = job_types()
    assert sorted(found) == sorted(REQUIRED)
    for name, job_type in found.items():
        assert isinstance(job_type, JobType)
        assert job_type.name == name
        assert job_type.label and job_type.description
    assert get_job_type("nope") is None


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_schema_is_json_and_names_required_fields(name: str) -> None:
    job_type = get_job_type(name)
    assert job_type is not None
    schema = json.loads(json.dumps(job_type.settings_schema()))
    assert schema["type"] == "object"
    assert set(schema["required"]) == REQUIRED[name]
    for field, prop in schema["properties"].items():
        assert prop.get("title"), f"{name}.{field} has no title"
        assert prop.get("description"), f"{name}.{field} has no description"
    # Every path setting tells the form it can offer a file browser.
    path_fields = {"blendfile", "output_path", "input_pattern", "preview_path", "cwd"}
    for field in path_fields & set(schema["properties"]):
        assert schema["properties"][field]["format"] == "path", field


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_schema_needs_no_ref_resolution(name: str) -> None:
    job_type = get_job_type(name)
    assert job_type is not None
    text = json.dumps(job_type.settings_schema())
    assert "$ref" not in text and "$defs" not in text


def test_choices_are_enums_in_the_schema() -> None:
    render = get_job_type("blender-render")
    assert render is not None
    fmt = render.settings_schema()["properties"]["format"]
    assert fmt["enum"] == ["PNG", "JPEG", "OPEN_EXR", "TIFF"] and fmt["default"] == "PNG"
    assert fmt["title"] == "Format"
