"""What every command runner gets and gives: the run context, the failure type, and its checked parameters."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from services.protocol.command_spec import CommandSpec, InvalidParameters
from services.protocol.file_paths import not_a_file_path
from services.protocol.path_mapping import PathMapping

P = TypeVar("P")


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
    # the farm's path variables as rules from other platforms' paths to this worker's (OpenJD sessions use them)
    path_mappings: Sequence[PathMapping] = ()
    # the command's program has started (the task tells the Manager it runs, and asks for its next one)
    started: Callable[[], None] = lambda: None


# What the task runner calls: the parameters as they came (variables resolved), not yet checked.
Runner = Callable[[Mapping[str, Any], RunContext], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Registered(Generic[P]):
    """A runner bound to its command of the contract: the parameters are checked before it runs."""

    spec: CommandSpec[P]
    run: Callable[[P, RunContext], Coroutine[Any, Any, None]]

    async def __call__(self, parameters: Mapping[str, Any], ctx: RunContext) -> None:
        try:
            checked = self.spec.validate(parameters)
        except InvalidParameters as exc:
            raise CommandFailed(str(exc)) from None
        await self.run(checked, ctx)


def exec_argv(argv: Sequence[str]) -> list[str] | None:
    """`exec`'s command line as it starts: its program found on the worker's PATH (None when it is not there).
    One rule for the command's start and for a process made ahead for it (warm_start.py), which must agree."""
    program = shutil.which(argv[0])
    return None if program is None else [program, *argv[1:]]


def need_program(command: str, path: str | None, name: str) -> str:
    if path is None:
        raise CommandFailed(
            f"{command}: program '{name}' not found (configure it with --{name} or "
            f"TABLAO_{name.upper()}, or put it on PATH)"
        )
    return path


def need_file_path(command: str, what: str, path: str) -> None:
    """A path the program will be given must be a file's path, not a URL or an option (file_paths.py)."""
    if (problem := not_a_file_path(path)) is not None:
        raise CommandFailed(f"{command}: the {what} {path!r} is refused: {problem}")


async def need_blend_file(command: str, blendfile: str) -> None:
    need_file_path(command, "blend file", blendfile)
    if not await asyncio.to_thread(Path(blendfile).is_file):
        # Blender would say so too, but only after a second of start-up
        if await asyncio.to_thread(Path(blendfile).is_dir):
            raise CommandFailed(f"{command}: blend file {blendfile} is a folder, not a file")
        raise CommandFailed(f"{command}: blend file {blendfile} does not exist")
