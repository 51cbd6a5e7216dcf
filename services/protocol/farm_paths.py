"""Paths and the farm's path variables: write a local path as `{name}/rest` when a shared folder holds it.

Each Worker resolves `{name}` for its own platform, so a path written this way reaches every machine. The
Blender add-on carries its own copy of this function (it may use nothing outside Blender's Python).
"""

from __future__ import annotations

import sys


def current_platform() -> str:
    """The platform names path variables use: linux, windows, macos."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


def _norm(path: str) -> str:
    return path.replace("\\", "/").rstrip("/")


def to_farm_path(path: str, variables: dict[str, dict[str, str]], platform: str) -> str | None:
    """`path` as `{name}/rest` under the variable whose folder holds it (the longest wins); a path already
    starting with a known `{name}` is returned as is; None when no variable's folder holds it."""
    if any(path.startswith("{" + name + "}") for name in variables):
        return path
    roots = []
    for name, table in variables.items():
        root = table.get(platform, table.get("all"))
        if root:
            roots.append((len(_norm(root)), name, _norm(root)))
    target = _norm(path)
    case_blind = platform in ("windows", "macos")
    for _, name, root in sorted(roots, reverse=True):
        a, b = (target.lower(), root.lower()) if case_blind else (target, root)
        if a == b or a.startswith(b + "/"):
            rest = target[len(root) :].lstrip("/")
            return "{" + name + "}" + ("/" + rest if rest else "")
    return None
