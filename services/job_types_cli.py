"""`tablao job-types [NAME]`: the job types a farm offers and, for one, the settings a job of it takes, read from
the Server's schema (what `GET /api/v1/job-types/NAME` answers), with a job that would submit as is."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from services.protocol.jobs import JobTypeInfo
from services.protocol.server_client import ServerClient

WIDTH = 100  # a job type's description in the list, cut between words here


def _kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        kinds = [_kind(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " | ".join(kinds) + (" or null" if len(kinds) < len(prop["anyOf"]) else "")
    kind = str(prop.get("type", "object"))
    if kind == "array":
        return f"list of {_kind(prop.get('items', {}))}"
    return "path" if prop.get("format") == "path" else kind


def _short(text: str) -> str:
    return text if len(text) <= WIDTH else text[:WIDTH].rsplit(" ", 1)[0] + " …"


def _example(prop: dict[str, Any]) -> Any:
    """A value the schema takes: its own example, else one made from its shape."""
    if prop.get("examples"):
        return prop["examples"][0]
    if "enum" in prop:
        return prop["enum"][0]
    if "anyOf" in prop:
        return _example(next((p for p in prop["anyOf"] if p.get("type") != "null"), {}))
    kind = prop.get("type")
    if kind == "object" and "properties" in prop:
        return {k: _example(prop["properties"][k]) for k in prop.get("required", [])}
    if kind == "array":
        return [_example(prop.get("items", {}))] * max(1, int(prop.get("minItems", 1)))
    if kind in ("integer", "number"):
        return prop.get("minimum", 1)
    return {"boolean": False, "object": {}}.get(str(kind), "…")


def refused(info: JobTypeInfo) -> str:
    """Why the caller may not submit this type (the farm's policy, as the Server said), or ""."""
    if info.may_submit:
        return ""
    roles = " or ".join(str(r) for r in info.submit_roles or []) or "no role"
    return f"not for you: the farm's policy reserves it for {roles}"


def describe(info: JobTypeInfo) -> str:
    """A job type's settings, one line each, then a job of it to start from."""
    schema = info.settings_schema
    required = set(schema.get("required", []))
    lines = [f"{info.name}: {info.label}", f"  {info.description}", "", "settings:"]
    if why := refused(info):
        lines[2:2] = ["", f"  ({why})"]
    example: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name in required:
            need = "required"
            example[name] = _example(prop)
        else:
            need = f"default {json.dumps(prop.get('default'))}" if "default" in prop else "optional"
        lines.append(f"  {name} ({_kind(prop)}, {need}): {prop.get('description', '')}")
    job = {"name": f"my {info.name} job", "type": info.name, "settings": example}
    lines += ["", "a job of this type (tablao submit JOB.json):", "  " + json.dumps(job)]
    return "\n".join(lines)


async def run(client: ServerClient, args: argparse.Namespace) -> int:
    if args.name:
        print(describe(await client.job_type(quote(args.name, safe=""))))
        return 0
    infos = await client.job_types()
    width = max((len(i.name) for i in infos), default=0)
    for info in infos:
        why = f" ({refused(info)})" if not info.may_submit else ""
        print(f"{info.name:<{width}}  {info.label}: {_short(info.description)}{why}")
    print("\n`tablao job-types NAME` shows a type's settings and a job of it to start from.")
    return 0
