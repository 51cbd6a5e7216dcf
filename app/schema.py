"""A job type's settings JSON schema read as a tree of form fields (no Qt, unit-testable).

Each property becomes a `FieldSpec`: scalars (text, path, numbers with their bounds, booleans, enums), lists of
scalars, mappings of name to scalar, nested objects, lists of objects, and, for any shape a form cannot
model, a JSON text field. `app/schema_values.py` turns the form's raw values back into settings.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["text", "path", "int", "float", "bool", "enum", "list", "dict", "object", "objects", "json"]
SCALARS = ("text", "path", "int", "float", "bool", "enum")


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
    exclusive_maximum: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    choices: list[str] = field(default_factory=list)  # as shown
    choice_values: list[Any] = field(default_factory=list)  # as sent, same order
    path_mode: str = "open"  # open, save or directory: which file dialog the browse button shows
    example: str = ""
    examples: list[Any] = field(default_factory=list)  # the schema's own, as values
    fields: list[FieldSpec] = field(default_factory=list)  # object: its properties; objects: an item's
    item: FieldSpec | None = None  # list: the kind of its items; dict: the kind of its values
    item_title: str = ""  # objects: what one item is called ("Cache")
    json_type: str = ""  # json: the JSON type the value must have (object, array or "" for any)


def _merge_all_of(prop: dict[str, Any]) -> dict[str, Any]:
    """Older pydantic wraps a referenced model in a one-item allOf to add a description: unwrap it."""
    parts = prop.get("allOf")
    if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict):
        return {**parts[0], **{k: v for k, v in prop.items() if k != "allOf"}}
    return prop


def _resolve(schema: dict[str, Any], prop: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = dict(schema.get("$defs", {}).get(ref.split("/")[-1], {}))
        merged.update({k: v for k, v in prop.items() if k != "$ref"})
        return _merge_all_of(merged)
    return _merge_all_of(prop)


def parse_schema(schema: dict[str, Any]) -> list[FieldSpec]:
    """One spec per property, in the schema's order."""
    return _properties(schema, schema)


def _properties(root: dict[str, Any], obj: dict[str, Any]) -> list[FieldSpec]:
    required = set(obj.get("required", []))
    return [_field(root, name, raw, name in required) for name, raw in obj.get("properties", {}).items()]


def _field(root: dict[str, Any], name: str, raw: dict[str, Any], required: bool) -> FieldSpec:
    prop = _resolve(root, raw)
    nullable = False
    union = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(union, list):
        options = [_resolve(root, o) for o in union]
        nullable = any(o.get("type") == "null" for o in options)
        concrete = [o for o in options if o.get("type") != "null"]
        if len(concrete) == 1:  # pydantic's `X | None`
            prop = {**concrete[0], **{k: v for k, v in prop.items() if k not in ("anyOf", "oneOf")}}
        elif all(o.get("type") in ("string", "integer", "number") for o in concrete):
            prop = {"type": "string", **{k: v for k, v in prop.items() if k not in ("anyOf", "oneOf")}}
        else:  # a union of shapes (e.g. tagged models): the form offers JSON
            prop = {"x-json": True, **{k: v for k, v in prop.items() if k not in ("anyOf", "oneOf")}}
    for key in ("items", "additionalProperties"):
        if isinstance(prop.get(key), dict):
            prop = {**prop, key: _resolve(root, prop[key])}
    if "const" in prop and "enum" not in prop:
        prop = {**prop, "enum": [prop["const"]]}
    examples = prop.get("examples") or []
    example = examples[0] if examples and not isinstance(examples[0], dict) else ""
    spec = FieldSpec(
        name=name,
        title=str(prop.get("title") or name.replace("_", " ").capitalize()),
        kind=_kind(prop),
        description=str(prop.get("description", "")),
        required=required,
        nullable=nullable,
        default=prop.get("default"),
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        exclusive_minimum=prop.get("exclusiveMinimum"),
        exclusive_maximum=prop.get("exclusiveMaximum"),
        pattern=prop.get("pattern"),
        min_length=prop.get("minLength"),
        max_length=prop.get("maxLength"),
        min_items=prop.get("minItems", prop.get("minProperties")),
        max_items=prop.get("maxItems", prop.get("maxProperties")),
        choices=[str(c) for c in prop.get("enum", [])],
        choice_values=list(prop.get("enum", [])),
        path_mode=str(prop.get("x-path-mode", "open")),
        example=shlex.join(example) if isinstance(example, list) else str(example),
        examples=list(examples),
    )
    if spec.kind == "object":
        spec.fields = _properties(root, prop)
    elif spec.kind == "objects":
        item = _resolve(root, prop["items"])
        spec.fields = _properties(root, item)
        spec.item_title = str(item.get("title") or "Item")
    elif spec.kind == "list":
        spec.item = _field(root, "item", prop.get("items") or {"type": "string"}, True)
    elif spec.kind == "dict":
        values = prop.get("additionalProperties")
        spec.item = _field(root, "value", values if isinstance(values, dict) else {"type": "string"}, True)
    elif spec.kind == "json":
        spec.json_type = str(prop.get("type", "")) if prop.get("type") in ("object", "array") else ""
    return spec


def _scalar(prop: dict[str, Any]) -> bool:
    return prop.get("type") in ("string", "integer", "number", "boolean") or "enum" in prop


def _kind(prop: dict[str, Any]) -> Kind:
    if prop.get("x-json"):
        return "json"
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
        items = prop.get("items")
        if not isinstance(items, dict) or (items.get("type") == "string" and "enum" not in items):
            return "list"
        if items.get("type") == "object" and isinstance(items.get("properties"), dict):
            return "objects"
        if "anyOf" in items or not _scalar(items):
            return "json"
        return "list"
    if t == "object":
        if isinstance(prop.get("properties"), dict) and prop["properties"]:
            return "object"
        values = prop.get("additionalProperties")
        if values is True or values is None:
            return "json"
        if isinstance(values, dict):
            union = values.get("anyOf")
            if isinstance(union, list) and all(_scalar(o) for o in union):
                return "dict"
            return "dict" if _scalar(values) else "json"
        return "json"
    return "text"
