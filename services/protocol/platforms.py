"""The operating-system names of the farm: one vocabulary for workers, path variables and the API.

Python spells macOS `darwin` (`sys.platform`, `platform.system()`) while people and the path-variable tables
say `macos`; everything on the wire and in configuration uses the names of `Platform`, and `normalize`
turns what Python (or an older worker) reports into one of them.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator, Strict


class Platform(StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"
    MACOS = "macos"


# what Python and older workers report, mapped to the farm's names
_ALIASES = {"darwin": Platform.MACOS, "mac": Platform.MACOS, "osx": Platform.MACOS, "win32": Platform.WINDOWS}


def normalize(name: str) -> Platform:
    """The farm's name for a platform as Python or a person spells it; ValueError for anything else."""
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("win"):
        return Platform.WINDOWS
    if key.startswith("linux"):
        return Platform.LINUX
    try:
        return Platform(key)
    except ValueError:
        known = ", ".join(p.value for p in Platform)
        shown = f"{name[:40]!r}…" if len(name) > 40 else repr(name)  # the client's text, of any length
        raise ValueError(f"unknown platform {shown}: expected one of {known}") from None


def current() -> Platform:
    return normalize(sys.platform)


def _coerce(value: object) -> object:
    return normalize(value) if isinstance(value, str) else value


# a wire field: accepts `darwin`, `Linux`, … and stores the farm's name
PlatformField = Annotated[Platform, Strict(False), BeforeValidator(_coerce)]
