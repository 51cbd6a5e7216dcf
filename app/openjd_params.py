"""An Open Job Description template's parameter definitions read as form fields (no Qt, unit-testable).

The submission dialog builds the parameter form from these specs, the same way it builds a job type's form
from its settings schema. Only what a form needs is read here; the Server validates the values with
openjd-model and its messages are shown under the fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.schema import FieldSpec
from services.protocol.named_files import UnreadableFile, read_named_text
from services.protocol.openjd_template import MAX_TEMPLATE_BYTES, TemplateTextError, parse_template_text


def read_template(path: Path) -> dict[str, Any]:
    """The template in a file; TemplateTextError with a one-line reason otherwise."""
    try:
        text = read_named_text(path, MAX_TEMPLATE_BYTES, "an Open Job Description template")
    except UnreadableFile as exc:
        raise TemplateTextError(str(exc)) from None
    return parse_template_text(text)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parameter_specs(template: dict[str, Any]) -> list[FieldSpec]:
    """One field per job parameter: INT, FLOAT, STRING (a choice when allowedValues) and PATH (a file or
    folder, to open or to write by its dataFlow)."""
    specs: list[FieldSpec] = []
    for d in template.get("parameterDefinitions") or []:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            continue
        ptype = str(d.get("type", "STRING")).upper()
        found_ui = d.get("userInterface")
        ui: dict[str, Any] = found_ui if isinstance(found_ui, dict) else {}
        allowed = d.get("allowedValues")
        if isinstance(allowed, list) and allowed:
            kind = "enum"
        elif ptype == "INT":
            kind = "int"
        elif ptype == "FLOAT":
            kind = "float"
        elif ptype == "PATH":
            kind = "path"
        else:
            kind = "text"
        mode = "directory" if d.get("objectType") == "DIRECTORY" else "open"
        if mode == "open" and d.get("dataFlow") == "OUT":
            mode = "save"
        default = d.get("default")
        specs.append(
            FieldSpec(
                name=d["name"],
                title=str(ui.get("label") or d["name"]),
                kind=kind,  # type: ignore[arg-type]
                description=str(d.get("description") or ""),
                required="default" not in d,
                default=default if kind in ("int", "float", "enum") or default is None else str(default),
                minimum=_number(d.get("minValue")),
                maximum=_number(d.get("maxValue")),
                min_length=d.get("minLength") if isinstance(d.get("minLength"), int) else None,
                choices=[str(v) for v in allowed] if isinstance(allowed, list) else [],
                path_mode=mode,
            )
        )
    return specs


def template_name(template: dict[str, Any]) -> str:
    return str(template.get("name") or "")
