"""Settings building blocks shared by the job types: paths, frame ranges, image formats, readable errors."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from services.protocol.file_paths import control_character, not_a_file_path
from services.server.jobtypes.frames import parse_frames

# Every free-text setting is bounded (a 422 naming it), since the compilers copy settings into every task.
PATH_MAX = 4096
"""A path setting, in characters: the bound of every path the API takes (docs/api.md)."""
NAME_MAX = 1024
"""A Blender data name (scene, object, modifier): Blender's own limit is 255 bytes (63 before 5.0)."""
FRAMES_MAX = 65_536
"""A frame range's text: some 10,000 frames listed one by one; ranges say more in less (`1-250x2`)."""


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose `msg` is exactly `message` (no "Value error, " prefix, braces kept)."""
    return PydanticCustomError("invalid_setting", "{reason}", {"reason": message})


def frame_end_not_before_start(cls: type, value: int, info: ValidationInfo) -> int:
    """A field validator for `frame_end` of settings that also have `frame_start` (declared first)."""
    start = info.data.get("frame_start")
    if start is not None and value < start:
        raise invalid(f"the last frame {value} comes before the first frame {start}")
    return value


# where a path every worker reads the same way may start: a POSIX root (and Blender's `//`, relative to the
# .blend), a Windows root or UNC share (`\\`), a drive's root (`R:\\`, `R:/`), or a path variable (`{render_root}`)
_WORKER_ABSOLUTE = re.compile(r"[/\\{]|[A-Za-z]:[/\\]")


def _path(value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid("a path is required")
    if (problem := not_a_file_path(value)) is not None:
        raise invalid(problem)
    if value.startswith("~"):
        raise invalid(
            "a path cannot start with '~': on a worker that is the home folder of the account the worker runs "
            "as, not yours; give the full path, or start it with a path variable such as {render_root}"
        )
    if not _WORKER_ABSOLUTE.match(value):
        raise invalid(
            f"{value[:60]!r} is a relative path, which each worker would read from its own folder: give the full "
            "path as the workers see it (/mnt/projects/…, R:\\projects\\…, \\\\server\\share\\…), or start it "
            "with a path variable such as {render_root}"
        )
    return value


def _name(value: str) -> str:
    if (c := control_character(value)) is not None:
        raise invalid(f"a name cannot contain the control character {c!r}")
    return value


def _frames(value: str) -> str:
    try:
        parse_frames(value)
    except ValueError as e:
        raise invalid(str(e)) from None
    return value.strip()


# A non-empty path as the submitter wrote it, variables such as `{render_root}` included; the Worker
# resolves it for its own platform, so the Server never touches the file system.
PathStr = Annotated[str, StringConstraints(max_length=PATH_MAX), AfterValidator(_path)]
FrameRange = Annotated[str, StringConstraints(max_length=FRAMES_MAX), AfterValidator(_frames)]
# A Blender data name: no line break or bidirectional override, which would forge or garble the task log's lines
BlenderName = Annotated[str, AfterValidator(_name)]


def path_field(
    title: str, description: str, *, mode: str = "open", default: Any = ..., example: str | None = None
) -> Any:
    """A path setting; `format: path` and `x-path-mode` (open, save, directory) tell the form to browse.
    A required path gives an `example` this job type accepts: the form shows it, and tests submit it."""
    return Field(
        default,
        title=title,
        description=description,
        examples=[example] if example is not None else None,
        json_schema_extra={"format": "path", "x-path-mode": mode},
    )


def frames_field(default: str = "1-250") -> Any:
    return Field(
        default,
        title="Frames",
        description="Frames to render: single frames and ranges separated by commas, `x` sets a step, "
        "e.g. `1-250` or `1-9,20,30-40x2`.",
        examples=["1-250", "1-9,20,30-40x2"],
    )


def name_field(title: str, description: str) -> Any:
    """An optional Blender data name (a scene, an object, a modifier): empty means the file's own choice."""
    return Field(None, min_length=1, max_length=NAME_MAX, title=title, description=description)


def blendfile_field() -> Any:
    return path_field(
        "Blend file",
        "The .blend file to open, as the workers see it (path variables allowed).",
        example="{render_root}/sh010/sh010.blend",
    )


class ImageFormat(StrEnum):
    PNG = "PNG"
    JPEG = "JPEG"
    OPEN_EXR = "OPEN_EXR"
    TIFF = "TIFF"


# Extensions Blender accepts as already right for each format; the first is the one it appends.
FORMAT_EXTENSIONS: dict[ImageFormat, tuple[str, ...]] = {
    ImageFormat.PNG: (".png",),
    ImageFormat.JPEG: (".jpg", ".jpeg"),
    ImageFormat.OPEN_EXR: (".exr",),
    ImageFormat.TIFF: (".tif", ".tiff"),
}
