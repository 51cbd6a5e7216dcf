"""The submission form's raw values turned into settings, checked against the schema's rules (no Qt).

Raw values are what the widgets hold: text, numbers, booleans; a nested object's raw value is a dict of its
fields' raw values (None when an optional object is switched off), a list of objects' a list of such dicts.
Errors are keyed by dotted path, as the Server's are (`caches.0.target`), so they land next to their field.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from app.schema import FieldSpec

_SKIP = object()  # leave the setting out, so the job type's default applies


def _number(spec: FieldSpec, raw: Any) -> Any:
    if raw is None or str(raw).strip() == "":
        if spec.required and spec.default is None:
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
    if spec.exclusive_maximum is not None and number >= spec.exclusive_maximum:
        raise ValueError(f"must be less than {spec.exclusive_maximum:g}")
    return number


def _text(spec: FieldSpec, raw: Any) -> Any:
    text = "" if raw is None else str(raw).strip()
    if not text:
        if spec.nullable:
            return None
        if spec.required and spec.default is None:
            raise ValueError("is required")
        if spec.default is not None:
            return spec.default
        return None
    if spec.kind == "enum" and spec.choices:
        if text not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}")
        return spec.choice_values[spec.choices.index(text)]
    if spec.min_length and len(text) < spec.min_length:
        raise ValueError(f"needs at least {spec.min_length} characters")
    if spec.max_length is not None and len(text) > spec.max_length:
        raise ValueError(f"may have at most {spec.max_length} characters")
    if spec.pattern and not re.search(spec.pattern, text):
        raise ValueError(f"must match {spec.pattern}")
    return text


def _item(spec: FieldSpec | None, text: str, where: str) -> Any:
    if spec is None or spec.kind not in ("int", "float", "enum", "bool"):
        return text
    if spec.kind == "bool":
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{where}: write true or false")
    try:
        return _number(spec, text) if spec.kind in ("int", "float") else _text(spec, text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _count(spec: FieldSpec, n: int, noun: str) -> None:
    if spec.min_items and n < spec.min_items:
        raise ValueError("is required" if not n else f"needs at least {spec.min_items} {noun}")
    if spec.max_items is not None and n > spec.max_items:
        raise ValueError(f"may have at most {spec.max_items} {noun}")


def convert(spec: FieldSpec, raw: Any) -> Any:
    """A field's raw value → the setting's value; ValueError says what is wrong. Not for objects."""
    if spec.kind == "bool":
        return bool(raw)
    if spec.kind in ("int", "float"):
        return _number(spec, raw)
    if spec.kind == "list":
        try:
            words = shlex.split(str(raw or ""))
        except ValueError as exc:
            raise ValueError(f"cannot split into items: {exc}") from None
        _count(spec, len(words), "items")
        return [_item(spec.item, w, f"item {n}") for n, w in enumerate(words, start=1)]
    if spec.kind == "dict":
        out: dict[str, Any] = {}
        for n, line in enumerate(str(raw or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"line {n}: write NAME=value")
            out[key.strip()] = _item(spec.item, value, f"line {n}")
        _count(spec, len(out), "entries")
        return out
    if spec.kind == "json":
        text = str(raw or "").strip()
        if not text:
            if spec.required:
                raise ValueError("is required")
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"is not JSON: {exc}") from None
        wanted = {"object": dict, "array": list}.get(spec.json_type)
        if wanted is not None and not isinstance(value, wanted):
            raise ValueError(f"must be a JSON {spec.json_type}")
        return value
    return _text(spec, raw)


def value_of(spec: FieldSpec, raw: Any, path: str, errors: dict[str, str]) -> Any:
    """The setting for one field, or _SKIP; problems go into `errors` under their dotted path."""
    if spec.kind == "object":
        if raw is None:  # an optional object left out
            if spec.required:
                errors[path] = "is required"
            return _SKIP
        sub, sub_errors = build_settings(spec.fields, raw)
        errors.update({f"{path}.{k}": v for k, v in sub_errors.items()})
        return sub
    if spec.kind == "objects":
        items = list(raw or [])
        try:
            _count(spec, len(items), f"{spec.item_title.lower() or 'item'}s")
        except ValueError as exc:
            errors[path] = str(exc)
            return _SKIP
        out = []
        for i, item in enumerate(items):
            sub, sub_errors = build_settings(spec.fields, item)
            errors.update({f"{path}.{i}.{k}": v for k, v in sub_errors.items()})
            out.append(sub)
        return out if out or spec.required else _SKIP
    try:
        value = convert(spec, raw)
    except ValueError as exc:
        errors[path] = str(exc)
        return _SKIP
    if value is None and not spec.required:
        return _SKIP
    if spec.kind in ("dict", "list") and not value and not spec.required:
        return _SKIP
    return value


def build_settings(specs: list[FieldSpec], raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings from raw form values, and errors by dotted path. Settings left at an empty optional value
    are left out so the job type's defaults apply."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        value = value_of(spec, raw.get(spec.name, ""), spec.name, errors)
        if value is not _SKIP:
            settings[spec.name] = value
    return settings, errors


def initial_text(spec: FieldSpec) -> Any:
    """What a scalar, list, mapping or JSON field shows before the user types: the default, in its terms."""
    d = spec.default
    if spec.kind == "bool":
        return bool(d)
    if spec.kind == "list":
        return shlex.join(str(x) for x in d) if isinstance(d, list) else ""
    if spec.kind == "dict":
        return "\n".join(f"{k}={v}" for k, v in d.items()) if isinstance(d, dict) else ""
    if spec.kind == "json":
        return "" if d is None else json.dumps(d, indent=1)
    if spec.kind == "enum" and d in spec.choice_values:
        return spec.choices[spec.choice_values.index(d)]
    return "" if d is None else d


def as_raw(spec: FieldSpec, value: Any) -> Any:
    """A setting's value in the form's raw terms (to fill a form from a job's settings)."""
    if spec.kind == "object":
        if not isinstance(value, dict):
            return None
        return {f.name: as_raw(f, value[f.name]) for f in spec.fields if f.name in value}
    if spec.kind == "objects":
        items = value if isinstance(value, list) else []
        return [as_raw(FieldSpec("", "", "object", fields=spec.fields), v) or {} for v in items]
    return initial_text(FieldSpec(spec.name, spec.title, spec.kind, default=value, choices=spec.choices,
                                  choice_values=spec.choice_values))  # fmt: skip
