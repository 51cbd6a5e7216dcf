"""Template parameter definitions as form fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.openjd_params import parameter_specs, read_template
from services.protocol.openjd_template import MAX_TEMPLATE_BYTES, TemplateTextError


def test_each_parameter_type_becomes_its_field() -> None:
    specs = parameter_specs({"parameterDefinitions": [
        {"name": "N", "type": "INT", "default": 4, "minValue": 1, "maxValue": 10},
        {"name": "Q", "type": "FLOAT"},
        {"name": "Mode", "type": "STRING", "allowedValues": ["a", "b"], "default": "b"},
        {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "userInterface": {"label": "Output folder"}},
        {"name": "Scene", "type": "PATH", "dataFlow": "OUT", "description": "where"},
        "not a definition",
    ]})  # fmt: skip
    by = {s.name: s for s in specs}
    assert [s.name for s in specs] == ["N", "Q", "Mode", "Out", "Scene"]
    assert (by["N"].kind, by["N"].minimum, by["N"].maximum, by["N"].required) == ("int", 1, 10, False)
    assert by["Q"].kind == "float" and by["Q"].required
    assert by["Mode"].kind == "enum" and by["Mode"].choices == ["a", "b"] and by["Mode"].default == "b"
    assert (by["Out"].kind, by["Out"].path_mode, by["Out"].title) == ("path", "directory", "Output folder")
    assert by["Scene"].path_mode == "save" and by["Scene"].description == "where"


def test_template_files_are_bounded_and_explained(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("x" * (MAX_TEMPLATE_BYTES + 1))
    with pytest.raises(TemplateTextError, match="over 256 KiB, so not an Open Job Description template"):
        read_template(big)
    with pytest.raises(TemplateTextError, match="over 256 KiB"):  # its size says 0: it was read without end
        read_template(Path("/dev/zero"))
    with pytest.raises(TemplateTextError, match="cannot read"):
        read_template(tmp_path / "none.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(TemplateTextError, match="mapping"):
        read_template(listy)
