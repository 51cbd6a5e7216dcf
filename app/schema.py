"""A job type's settings JSON schema read as a list of form fields, and the form's text turned into settings.

No Qt here: the submission dialog builds widgets from these specs, and the rules can be unit-tested alone.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "path", "int", "float", "bool", "enum", "list", "dict"]


@dataclass
class FieldSpec:
    name: str
    title: str
    kind: Kind
    description: str = ""
    required: bool = False
    nullable: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    min_items: int | None = None
    choices: list[str] = field(default_factory=list)
    path_mode: str = "open"  # open, save or directory: which file dialog the browse button shows
    example: str = ""


def _resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = dict(schema.get("$defs", {}).get(ref.split("/")[-1], {}))
        merged.update({k: v for k, v in prop.items() if k != "$ref"})
        return merged
    return prop


def parse_schema(schema: dict[str, Any]) -> list[FieldSpec]:
    """One spec per property, in the schema's order. Unknown shapes become plain text fields."""
    required = set(schema.get("required", []))
    specs: list[FieldSpec] = []
    for name, raw in schema.get("properties", {}).items():
        prop = _resolve(schema, raw)
        nullable = False
        if "anyOf" in prop:  # pydantic's `X | None`
            options = [_resolve(schema, o) for o in prop["anyOf"]]
            nullable = any(o.get("type") == "null" for o in options)
            concrete = [o for o in options if o.get("type") != "null"]
            inner = concrete[0] if concrete else {"type": "string"}
            prop = {**inner, **{k: v for k, v in prop.items() if k != "anyOf"}}
        kind = _kind(prop)
        examples = prop.get("examples") or []
        example = examples[0] if examples else ""
        specs.append(
            FieldSpec(
                name=name,
                title=str(prop.get("title") or name.replace("_", " ").capitalize()),
                kind=kind,
                description=str(prop.get("description", "")),
                required=name in required,
                nullable=nullable,
                default=prop.get("default"),
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                exclusive_minimum=prop.get("exclusiveMinimum"),
                pattern=prop.get("pattern"),
                min_length=prop.get("minLength"),
                min_items=prop.get("minItems"),
                choices=[str(c) for c in prop.get("enum", [])],
                path_mode=str(prop.get("x-path-mode", "open")),
                example=shlex.join(example) if isinstance(example, list) else str(example),
            )
        )
    return specs


def _kind(prop: dict[str, Any]) -> Kind:
    if "enum" in prop:
        return "enum"
    t = prop.get("type")
    if t == "string":
        return "path" if prop.get("format") == "path" else "text"
    if t == "integer":
        return "int"
    if t == "number":
        return "float"
    if t == "boolean":
        return "bool"
    if t == "array":
        return "list"
    if t == "object":
        return "dict"
    return "text"


def convert(spec: FieldSpec, raw: Any) -> Any:
    """The form's raw value (text, number or bool) → the setting's value; ValueError says what is wrong."""
    if spec.kind == "bool":
        return bool(raw)
    if spec.kind in ("int", "float"):
        if raw is None or str(raw).strip() == "":
            if spec.required:
                raise ValueError("is required")
            return spec.default
        try:
            number: float = int(raw) if spec.kind == "int" else float(raw)
        except ValueError:
            raise ValueError("must be a whole number" if spec.kind == "int" else "must be a number") from None
        if spec.minimum is not None and number < spec.minimum:
            raise ValueError(f"must be at least {spec.minimum:g}")
        if spec.exclusive_minimum is not None and number <= spec.exclusive_minimum:
            raise ValueError(f"must be more than {spec.exclusive_minimum:g}")
        if spec.maximum is not None and number > spec.maximum:
            raise ValueError(f"must be at most {spec.maximum:g}")
        return number
    text = str(raw).strip()
    if spec.kind == "list":
        try:
            items = shlex.split(text)
        except ValueError as exc:
            raise ValueError(f"cannot split into items: {exc}") from None
        if spec.min_items and len(items) < spec.min_items:
            raise ValueError("is required" if not items else f"needs at least {spec.min_items} items")
        return items
    if spec.kind == "dict":
        out: dict[str, str] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"line {n}: write NAME=value")
            out[key.strip()] = value
        return out
    if not text:
        if spec.nullable:
            return None
        if spec.required:
            raise ValueError("is required")
        if spec.default is not None:
            return spec.default
    if spec.min_length and len(text) < spec.min_length:
        raise ValueError(f"needs at least {spec.min_length} characters")
    if spec.pattern and not re.search(spec.pattern, text):
        raise ValueError(f"must match {spec.pattern}")
    if spec.kind == "enum" and spec.choices and text not in spec.choices:
        raise ValueError(f"must be one of {', '.join(spec.choices)}")
    return text


def build_settings(specs: list[FieldSpec], raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings from raw form values, and errors by field name. Settings left at an empty optional value
    are left out so the job type's defaults apply."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        try:
            value = convert(spec, raw.get(spec.name, ""))
        except ValueError as exc:
            errors[spec.name] = str(exc)
            continue
        if value is None and not spec.required:
            continue
        if spec.kind == "dict" and not value and not spec.required:
            continue
        settings[spec.name] = value
    return settings, errors


def initial_text(spec: FieldSpec) -> Any:
    """What the form shows before the user types: the default, in the form's own terms."""
    d = spec.default
    if spec.kind == "bool":
        return bool(d)
    if spec.kind == "list":
        return shlex.join(d) if isinstance(d, list) else ""
    if spec.kind == "dict":
        return "\n".join(f"{k}={v}" for k, v in d.items()) if isinstance(d, dict) else ""
    return "" if d is None else d
