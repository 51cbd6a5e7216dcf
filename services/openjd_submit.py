"""`tablao submit TEMPLATE.yaml -p Name=Value`: an Open Job Description template as an `openjd` job.

The template is read here (YAML or JSON) only to name the job and to find its PATH parameters: a PATH value
inside one of the farm's shared folders is sent as `{variable}/rest`, so each Worker resolves it for its own
platform. Everything else — validation, defaults, tasks — is the Server's, whose field errors are printed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from services.protocol.farm_paths import current_platform, to_farm_path
from services.protocol.file_paths import control_character
from services.protocol.named_files import STDIN, shown_name
from services.protocol.openjd_template import TemplateTextError, parse_template_text

_PARAM_REF = re.compile(r"\{\{\s*Param\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME_MAX = 200


def is_template(path: Path, text: str) -> bool:
    """YAML files, and JSON documents that declare a job template specification at their top (a JSON job of
    type `openjd` holds one deeper, in its settings, and is a job)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        return True
    if '"specificationVersion"' not in text:
        # standard input has no suffix: a YAML template is told by its text (a JSON job starts with `{`)
        return path == STDIN and "specificationVersion" in text and not text.lstrip().startswith(("{", "["))
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        # read as a job, whose parse says what is wrong; from standard input, YAML with the key quoted
        return path == STDIN and not text.lstrip().startswith(("{", "["))
    return isinstance(doc, dict) and str(doc.get("specificationVersion", "")).startswith("jobtemplate-")


def parse_params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"-p {item!r}: write parameters as Name=Value")
        out[name.strip()] = value
    return out


def job_name(template: dict[str, Any], values: dict[str, str]) -> str:
    """The template's name with `{{Param.X}}` filled from the values or the defaults (the Server checks them)."""
    defaults = {
        d.get("name"): str(d["default"])
        for d in template.get("parameterDefinitions") or []
        if isinstance(d, dict) and "default" in d
    }
    raw = str(template.get("name") or "openjd job")
    name = _PARAM_REF.sub(lambda m: values.get(m.group(1), defaults.get(m.group(1), m.group(0))), raw)
    # a job's name is one line (the Server refuses a line break or an override): a value's become spaces
    name = "".join(" " if control_character(c) else c for c in name)
    return name.strip()[:NAME_MAX] or "openjd job"


def farm_path_values(
    template: dict[str, Any], values: dict[str, str], variables: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Values of PATH parameters rewritten as `{variable}/rest` where a shared folder holds them."""
    paths = {
        d.get("name")
        for d in template.get("parameterDefinitions") or []
        if isinstance(d, dict) and d.get("type") == "PATH"
    }
    platform = current_platform()
    out = dict(values)
    for name, value in values.items():
        if name in paths and (mapped := to_farm_path(value, variables, platform)) is not None:
            out[name] = mapped
    return out


def submission(
    path: Path, text: str, params: list[str], variables: dict[str, dict[str, str]], priority: int | None
) -> dict[str, Any]:
    try:
        template = parse_template_text(text)
    except TemplateTextError as exc:
        raise SystemExit(f"{shown_name(path)}: {exc}") from exc
    values = parse_params(params)
    body: dict[str, Any] = {
        "name": job_name(template, values),
        "type": "openjd",
        "settings": {"template": template, "parameters": farm_path_values(template, values, variables)},
    }
    if priority is not None:
        body["priority"] = priority
    return body
