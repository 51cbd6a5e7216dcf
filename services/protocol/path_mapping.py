"""Path mapping rules derived from the farm's path variables, for runtimes that map paths themselves.

A variable such as `render_root` has one value per platform (`{"windows": "R:\\\\renders", "linux": "/mnt/r"}`).
A worker on Linux gets one rule per other platform's value: `R:\\renders` (Windows form) → `/mnt/r`. Open Job
Description sessions apply such rules to PATH parameters (openjd-sessions' `PathMappingRule`), so a template
written with one platform's paths runs on another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from services.protocol.common import ResponseModel
from services.protocol.platforms import Platform, normalize

PathFormat = Literal["posix", "windows"]


class PathMapping(ResponseModel):
    """Paths starting with `source_path` (written in `source_format`) are read as under `destination_path`."""

    source_format: PathFormat
    source_path: str
    destination_path: str


def path_format(platform: Platform) -> PathFormat:
    return "windows" if platform == Platform.WINDOWS else "posix"


def _platform(name: str) -> Platform | None:
    try:
        return normalize(name)
    except ValueError:
        return None  # "all" or a name the farm does not know: the same path everywhere, nothing to map


def derive_path_mappings(table: Mapping[str, Mapping[str, str]], platform: str) -> list[PathMapping]:
    """The rules for a worker on `platform`: each variable's value on the other platforms → its value here.

    A variable with no value here maps nothing. Rules are unique by source and longest source first, so the
    most specific folder wins where one variable's folder lies inside another's.
    """
    here = normalize(platform)
    rules: dict[tuple[str, str], PathMapping] = {}
    for values in table.values():
        by_platform = {p: v for k, v in values.items() if (p := _platform(k)) is not None and v.strip()}
        destination = by_platform.get(here) or values.get("all")
        if not destination:
            continue
        for other, source in by_platform.items():
            if other == here or source == destination:
                continue
            fmt = path_format(other)
            key = (fmt, source.lower() if fmt == "windows" else source)
            rules.setdefault(key, PathMapping(source_format=fmt, source_path=source, destination_path=destination))
    return sorted(rules.values(), key=lambda r: (-len(r.source_path), r.source_format, r.source_path))
