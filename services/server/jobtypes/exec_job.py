"""The `exec` job type: a program run once per frame chunk, with `{start}`, `{end}`, `{frame}` filled in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from services.protocol.commands import EXEC, TASK_TYPE_PATTERN, ExecParams
from services.server.jobtypes.base import (
    Capability,
    CompiledTask,
    JobContext,
    JobType,
    JobTypeSettings,
    SizeEstimate,
    command_bytes,
)
from services.server.jobtypes.fields import PATH_MAX, FrameRange, PathStr, frames_field, invalid, path_field
from services.server.jobtypes.frames import Chunk, chunk_bounds, frame_sequence, iter_chunks

# Only these three are ours; any other `{name}` is a path variable the Worker resolves.
_PLACEHOLDER = re.compile(r"\{(start|end|frame)\}")
ARG_MAX = PATH_MAX
"""One command item, in characters: room for a path, the longest thing an argument usually is; a script longer
than that belongs in a file. With at most 1000 items a task's command line stays within what Linux runs (2 MiB
in all; Windows takes only 32,767 characters)."""
ENV_MAX = 100
"""Extra environment variables of an exec job."""
ENV_NAME_MAX = 256
ENV_VALUE_MAX = 32_767
"""One environment value, in characters: Windows' own limit for a variable, room for a long search path."""


class ExecSettings(JobTypeSettings):
    model_config = ConfigDict(title="Command line")

    command: list[Annotated[str, StringConstraints(max_length=ARG_MAX)]] = Field(
        min_length=1,
        max_length=1000,
        title="Command",
        description="The program and its arguments, one item each (no shell, no quoting). `{start}` and "
        "`{end}` become the chunk's first and last frame, `{frame}` the frame when chunks hold one frame.",
        examples=[["my-tool", "--from", "{start}", "--to", "{end}"]],
    )
    cwd: PathStr | None = path_field(
        "Working folder", "Folder to run in; empty: the Worker's.", mode="directory", default=None
    )
    env: dict[
        Annotated[str, StringConstraints(max_length=ENV_NAME_MAX)],
        Annotated[str, StringConstraints(max_length=ENV_VALUE_MAX)],
    ] = Field(
        default_factory=dict,
        max_length=ENV_MAX,
        title="Environment",
        description="Extra environment variables; the placeholders work in values too.",
    )
    frames: FrameRange = frames_field(default="1")
    chunk_size: int = Field(
        1,
        ge=1,
        le=1_000_000,
        title="Chunk size",
        description="Frames per run; a chunk never spans a gap in the frames, so {start}..{end} is exact.",
    )
    task_type: str = Field(
        "exec",
        pattern=TASK_TYPE_PATTERN,
        title="Task type",
        description="Which workers may run it: those offering this task type.",
    )

    @field_validator("command")
    @classmethod
    def _program_named(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise invalid("the first item must name the program")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or "=" in name or "\0" in name:
                raise invalid(f"{name!r} is not an environment variable name")
        return value

    @field_validator("chunk_size")
    @classmethod
    def _frame_needs_single_frames(cls, value: int, info: ValidationInfo) -> int:
        if value == 1:
            return value
        places = [
            name
            for name, texts in (
                ("command", info.data.get("command") or ()),
                ("cwd", [info.data.get("cwd") or ""]),
                ("env", (info.data.get("env") or {}).values()),
            )
            if any("{frame}" in t for t in texts)
        ]
        if places:
            raise invalid(
                f"`{{frame}}` in {' and '.join(places)} needs chunk_size 1 (it is {value}); "
                "use `{start}` and `{end}` for chunks of several frames"
            )
        return value


def substitute(text: str, start: int, end: int) -> str:
    if "{" not in text:
        return text
    values = {"start": str(start), "end": str(end), "frame": str(start)}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


class ExecJob(JobType):
    name = "exec"
    capability = Capability.COMMAND  # the submitter names the program: wranglers and admins by default
    label = "Command line"
    description = "Run a program once per chunk of frames, with the frame numbers in its arguments."
    Settings = ExecSettings
    path_placeholders = frozenset({"start", "end", "frame"})  # the working folder may hold them

    def estimate(self, settings: Any) -> SizeEstimate:
        s = ExecSettings.model_validate(settings)
        n, first, last = chunk_bounds(frame_sequence(s.frames), s.chunk_size, split_at_gaps=True)
        return SizeEstimate(n, n * max(command_bytes(_task(s, c)) for c in (first, last)))

    def compile(self, ctx: JobContext, settings: Any) -> Iterator[CompiledTask]:
        s = ExecSettings.model_validate(settings)
        for chunk in iter_chunks(frame_sequence(s.frames), s.chunk_size, split_at_gaps=True):
            yield _task(s, chunk)


def _task(s: ExecSettings, chunk: Chunk) -> CompiledTask:
    start, end = chunk.start, chunk.end
    parameters: ExecParams = {"argv": [substitute(a, start, end) for a in s.command]}
    if s.cwd is not None:
        parameters["cwd"] = substitute(s.cwd, start, end)
    if s.env:
        parameters["env"] = {k: substitute(v, start, end) for k, v in s.env.items()}
    return CompiledTask(name=chunk.name, type=s.task_type, commands=[EXEC(parameters)], steps_total=len(chunk.frames))
