"""What every command runner gets and gives: the run context, the failure type and parameter checks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any


class CommandFailed(Exception):
    """A command did not succeed; the message is the readable reason that goes to the task log."""


@dataclass(frozen=True, slots=True)
class Programs:
    """Where the external programs are; None means not found (the runner fails with a clear reason)."""

    blender: str | None = None
    ffmpeg: str | None = None

    @classmethod
    def find(cls, blender: str | None = None, ffmpeg: str | None = None) -> Programs:
        """Configuration first (flags, then TABLAO_BLENDER / TABLAO_FFMPEG), then PATH."""
        return cls(
            blender=_find(blender or os.environ.get("TABLAO_BLENDER"), "blender"),
            ffmpeg=_find(ffmpeg or os.environ.get("TABLAO_FFMPEG"), "ffmpeg"),
        )


def _find(configured: str | None, default: str) -> str | None:
    if configured:
        # a configured path that does not exist is reported as missing rather than silently replaced
        return shutil.which(configured)
    return shutil.which(default)


@dataclass(slots=True)
class RunContext:
    """The callbacks a runner reports through; the agent wires them to the task's update buffer."""

    log: Callable[[str], None]
    progress: Callable[[int | None, int | None], None] = lambda done, total: None
    output_file: Callable[[str], None] = lambda path: None
    programs: Programs = field(default_factory=Programs)
    # seconds between SIGTERM and SIGKILL when a command is cancelled
    grace_seconds: float = 0.5


Runner = Callable[[Mapping[str, Any], RunContext], Coroutine[Any, Any, None]]


def require_str(command: str, params: Mapping[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise CommandFailed(f"{command}: parameter '{key}' must be a non-empty string, got {value!r}")
    return value


def optional_str(command: str, params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandFailed(f"{command}: parameter '{key}' must be a string, got {value!r}")
    return value


def require_int(command: str, params: Mapping[str, Any], key: str) -> int:
    value = params.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandFailed(f"{command}: parameter '{key}' must be an integer, got {value!r}")
    return value


def str_list(command: str, params: Mapping[str, Any], key: str, *, required: bool = True) -> list[str]:
    value = params.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CommandFailed(f"{command}: parameter '{key}' must be a list of strings, got {value!r}")
    return list(value)


def need_program(command: str, path: str | None, name: str) -> str:
    if path is None:
        raise CommandFailed(
            f"{command}: program '{name}' not found (configure it with --{name} or "
            f"TABLAO_{name.upper()}, or put it on PATH)"
        )
    return path
