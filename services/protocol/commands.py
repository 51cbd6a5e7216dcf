"""The command contract: task types, each command's typed parameters, and the builder job types use.

A task is an ordered list of commands `{"name": ..., "parameters": {...}}`. Job types on the Server build
them by calling a `CommandSpec` below with its parameter record; the Worker runs each with the runner
registered under the same spec, which gets the parameters validated against the same record. The records
are TypedDicts, so on the wire, in the database and while compiling 100,000 tasks they stay plain dicts;
mypy checks the job types' side, pydantic the Worker's.

Adding a command: see "Adding a command" in docs/commands.md (generated from `commands_doc.py`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from services.protocol.command_spec import CommandSpec, tagged

# Strict: a number is not a string and "5" is not a number; unknown parameters are errors, so a parameter
# renamed on one side and not the other fails the task with its name instead of being silently ignored.
_STRICT = ConfigDict(strict=True, extra="forbid")

Text = Annotated[str, Field(min_length=1)]
# a path as the job type wrote it; the Worker has replaced its `{variables}` before the check
PathText = Annotated[str, Field(min_length=1)]


# a task type a job names and a worker offers: one word of lower case letters, digits and dashes
TASK_TYPE_PATTERN = r"^[a-z][a-z0-9-]{0,49}$"
TaskTypeName = Annotated[str, Field(pattern=TASK_TYPE_PATTERN)]


class TaskType(StrEnum):
    """Which workers may run a task: those that offer its type."""

    BLENDER = "blender"
    FFMPEG = "ffmpeg"
    IMAGE = "image"
    FILE_MANAGEMENT = "file-management"
    EXEC = "exec"
    OPENJD = "openjd"
    MISC = "misc"


# The program a worker needs to offer each task type (None: every worker offers it).
TASK_TYPE_PROGRAMS: dict[TaskType, str | None] = {
    TaskType.BLENDER: "blender",
    TaskType.FFMPEG: "ffmpeg",
    TaskType.IMAGE: None,
    TaskType.FILE_MANAGEMENT: None,
    TaskType.EXEC: None,
    TaskType.OPENJD: None,  # openjd-sessions runs the template's own commands
    TaskType.MISC: None,
}

BlenderFormat = Literal["PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "TIFF", "BMP", "TGA", "WEBP"]
CacheKind = Literal["point-cache", "fluid", "cloth"]


@with_config(_STRICT)
class BlenderRenderParams(TypedDict):
    blendfile: Annotated[PathText, Field(description="the .blend file")]
    output: Annotated[PathText, Field(description="Blender's `-o` pattern, `#` for the padded frame number")]
    format: Annotated[BlenderFormat, Field(description="Blender's `-F` image format")]
    frames: Annotated[Text, Field(description="Blender's `-f` frames: `7`, `1..4`, `1,3,5`")]
    scene: NotRequired[Annotated[Text, Field(description="scene to render (`-S`); absent: the active one")]]
    python_expr: NotRequired[
        Annotated[Text, Field(description="Python run with `--python-expr` before rendering (a border, a seed)")]
    ]
    args: NotRequired[Annotated[list[str], Field(description="extra Blender arguments, before `-o`")]]


@with_config(_STRICT)
class BakeParams(TypedDict):
    blendfile: Annotated[PathText, Field(description="the .blend file (never saved)")]
    target: Annotated[CacheKind, Field(description="the kind of simulation to bake")]
    object: NotRequired[Annotated[Text | None, Field(description="object holding it; absent: every object")]]
    modifier: NotRequired[Annotated[Text | None, Field(description="modifier of that object; absent: every one")]]
    frame_start: Annotated[int, Field(description="first frame")]
    frame_end: Annotated[int, Field(description="last frame, not before the first")]


@with_config(_STRICT)
class CacheEntry(TypedDict):
    target: CacheKind
    object: NotRequired[Text | None]
    modifier: NotRequired[Text | None]


@with_config(_STRICT)
class VerifyBakeParams(TypedDict):
    blendfile: Annotated[PathText, Field(description="the .blend file")]
    target: Literal["verify"]
    caches: Annotated[
        list[CacheEntry], Field(min_length=1, description="caches to check: `{target, object?, modifier?}` each")
    ]
    frame_start: Annotated[int, Field(description="first frame")]
    frame_end: Annotated[int, Field(description="last frame, not before the first")]


@with_config(_STRICT)
class Tile(TypedDict):
    path: PathText
    x: Annotated[int, Field(ge=0)]
    y: Annotated[int, Field(ge=0)]


@with_config(_STRICT)
class MergeTilesParams(TypedDict):
    mode: Literal["tiles"]
    tiles: Annotated[list[Tile], Field(min_length=1, description="`{path, x, y}` each, pixels from the top-left")]
    width: Annotated[int, Field(ge=1, description="width of the result in pixels")]
    height: Annotated[int, Field(ge=1, description="height of the result in pixels")]
    output: Annotated[PathText, Field(description="the merged image")]
    inputs: NotRequired[Annotated[list[str], Field(description="the tiles' paths in order, for readers; not read")]]


@with_config(_STRICT)
class MergeAverageParams(TypedDict):
    mode: Literal["average"]
    inputs: Annotated[list[PathText], Field(min_length=1, description="equally-sized images (seed chunks)")]
    output: Annotated[PathText, Field(description="the averaged image")]


@with_config(_STRICT)
class SampleChunk(TypedDict):
    path: PathText
    weight: Annotated[int, Field(ge=1)]


@with_config(_STRICT)
class MergeSamplesParams(TypedDict):
    blendfile: Annotated[PathText, Field(description="the .blend whose scene's colour management applies")]
    inputs: Annotated[
        list[SampleChunk],
        Field(min_length=1, description="32-bit OpenEXR sample chunks and their samples: `{path, weight}` each"),
    ]
    output: Annotated[PathText, Field(description="the merged image")]
    format: Annotated[Literal["PNG", "JPEG", "TIFF", "OPEN_EXR"], Field(description="its format")]
    scene: NotRequired[Annotated[Text, Field(description="scene by name; absent: the file's active scene")]]


@with_config(_STRICT)
class OpenjdParameterValue(TypedDict):
    type: Literal["INT", "FLOAT", "STRING", "PATH", "CHUNK[INT]"]
    value: str


@with_config(_STRICT)
class OpenjdTaskParams(TypedDict):
    template: Annotated[
        dict[str, Any],
        Field(description="the job template cut to this task's step, with the job's parameters and environments"),
    ]
    job_parameters: Annotated[dict[str, str], Field(description="every job parameter's value, defaults applied")]
    step: Annotated[Text, Field(description="the step's name")]
    task_parameters: Annotated[
        dict[str, OpenjdParameterValue], Field(description="this task's parameter set: `{name: {type, value}}`")
    ]


@with_config(_STRICT)
class FfmpegParams(TypedDict):
    args: Annotated[list[str], Field(min_length=1, description="everything after `ffmpeg`, ending with the output")]
    total_frames: NotRequired[Annotated[int, Field(ge=0, description="frames it will write, for progress")]]
    output: NotRequired[Annotated[PathText, Field(description="the file it writes, checked to exist afterwards")]]


@with_config(_STRICT)
class ExecParams(TypedDict):
    argv: Annotated[list[str], Field(min_length=1, description="the program and its arguments (no shell)")]
    cwd: NotRequired[Annotated[PathText, Field(description="working folder; absent: the Worker's")]]
    env: NotRequired[Annotated[dict[str, str], Field(description="extra environment variables")]]


@with_config(_STRICT)
class PathParams(TypedDict):
    path: Annotated[PathText, Field(description="the file or folder")]


@with_config(_STRICT)
class CopyFileParams(TypedDict):
    src: Annotated[PathText, Field(description="the file to copy")]
    dest: Annotated[PathText, Field(description="where the copy goes; its folder is created")]


@with_config(_STRICT)
class RemovePathParams(TypedDict):
    path: Annotated[PathText, Field(description="the file or folder")]
    recursive: NotRequired[Annotated[bool, Field(description="whether a folder may be removed; default false")]]


@with_config(_STRICT)
class EchoParams(TypedDict):
    message: Annotated[str, Field(description="written to the task log, line by line")]


@with_config(_STRICT)
class SleepParams(TypedDict):
    duration: Annotated[float, Field(ge=0, allow_inf_nan=False, description="seconds")]


BLENDER_RENDER: CommandSpec[BlenderRenderParams] = CommandSpec(
    "blender-render",
    BlenderRenderParams,
    "`blender -b BLENDFILE [--python-expr E] [-S SCENE] [ARGS] -o OUTPUT -F FORMAT -f FRAMES`; progress = frames "
    "saved (`Saved: '…'` lines) of the frames named; fails on a non-zero exit, an `Error:` line, or no frame saved.",
    example={
        "blendfile": "/projects/shot.blend",
        "output": "{render_root}/shot/frame_####",
        "format": "PNG",
        "frames": "1..4",
    },
)
BLENDER_BAKE: CommandSpec[BakeParams | VerifyBakeParams] = CommandSpec(
    "blender-bake",
    tagged(BakeParams, VerifyBakeParams, tag="target"),
    "Bakes simulations into disk caches with a Python script run by `blender -b BLENDFILE --python-expr …`, never "
    "saving the .blend (so bakes of one file run in parallel on several workers); `verify` checks that each listed "
    "cache has files for every frame and fails naming the first one missing.",
    discriminator="target",
    example={
        "blendfile": "/projects/sim.blend",
        "target": "cloth",
        "object": "Flag",
        "frame_start": 1,
        "frame_end": 250,
    },
)
MERGE_IMAGES: CommandSpec[MergeTilesParams | MergeAverageParams] = CommandSpec(
    "merge-images",
    tagged(MergeTilesParams, MergeAverageParams, tag="mode"),
    "Stitches tiles into one image of `width`×`height`, or averages equally-sized 8-bit images (display values; "
    "`blender-still` merges its sample chunks in linear light with `merge-samples` instead).",
    discriminator="mode",
    example={
        "mode": "average",
        "inputs": ["{render_root}/a_part_0_0001.png", "{render_root}/a_part_1_0001.png"],
        "output": "{render_root}/a.png",
    },
)
MERGE_SAMPLES: CommandSpec[MergeSamplesParams] = CommandSpec(
    "merge-samples",
    MergeSamplesParams,
    "Inside `blender -b BLENDFILE`: the mean of the sample chunks weighted by their samples, in linear light, "
    "written by the render pipeline through a compositor that shows only the merged image (no scene render), "
    "so the scene's colour management, dither and rounding apply as to a full render of all the samples.",
    example={
        "blendfile": "/projects/poster.blend",
        "inputs": [
            {"path": "{render_root}/poster_part_0_0001.exr", "weight": 64},
            {"path": "{render_root}/poster_part_1_0001.exr", "weight": 64},
        ],
        "output": "{render_root}/poster.png",
        "format": "PNG",
    },
)
OPENJD_TASK: CommandSpec[OpenjdTaskParams] = CommandSpec(
    "openjd-task",
    OpenjdTaskParams,
    "One Open Job Description task through openjd-sessions: enters the job's and the step's environments, runs the "
    "task's script with its parameter set, and exits the entered environments in reverse order, also after a "
    "failure or cancel (which follows the action's own cancelation mode).",
    example={
        "template": {
            "specificationVersion": "jobtemplate-2023-09",
            "name": "hello",
            "steps": [
                {
                    "name": "say",
                    "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Task.Param.N}}"]}}},
                    "parameterSpace": {"taskParameterDefinitions": [{"name": "N", "type": "INT", "range": "1-3"}]},
                }
            ],
        },
        "job_parameters": {},
        "step": "say",
        "task_parameters": {"N": {"type": "INT", "value": "2"}},
    },
)
FFMPEG: CommandSpec[FfmpegParams] = CommandSpec(
    "ffmpeg",
    FfmpegParams,
    "Runs `ffmpeg -y -nostdin -progress pipe:1 -nostats ARGS`; progress from `frame=` lines.",
    example={
        "args": ["-i", "{render_root}/f_%04d.png", "{render_root}/f.mp4"],
        "total_frames": 250,
        "output": "{render_root}/f.mp4",
    },
)
EXEC: CommandSpec[ExecParams] = CommandSpec(
    "exec",
    ExecParams,
    "Runs a program found on the Worker's `PATH`; exit status 0 is success.",
    example={"argv": ["my-tool", "--frame", "7"], "env": {"QUALITY": "high"}},
)
MOVE_OUT_OF_WAY: CommandSpec[PathParams] = CommandSpec(
    "move-out-of-way",
    PathParams,
    "Renames an existing path to `PATH-YYYY-MM-DD_HHMMSS`; nothing there is success.",
    example={"path": "{render_root}/shot"},
)
COPY_FILE: CommandSpec[CopyFileParams] = CommandSpec(
    "copy-file",
    CopyFileParams,
    "Copies a file, creating the destination folder.",
    example={"src": "/projects/a.txt", "dest": "{render_root}/a.txt"},
)
REMOVE_PATH: CommandSpec[RemovePathParams] = CommandSpec(
    "remove-path",
    RemovePathParams,
    "Removes a file, or a folder with `recursive`; nothing there is success.",
    example={"path": "{render_root}/shot_segment_0000.ts"},
)
ECHO: CommandSpec[EchoParams] = CommandSpec(
    "echo", EchoParams, "Writes the message to the task log.", example={"message": "hello"}
)
SLEEP: CommandSpec[SleepParams] = CommandSpec("sleep", SleepParams, "Waits; cancellable.", example={"duration": 1.5})

COMMANDS: dict[str, CommandSpec[Any]] = {
    spec.name: spec
    for spec in (
        BLENDER_RENDER,
        BLENDER_BAKE,
        MERGE_IMAGES,
        MERGE_SAMPLES,
        FFMPEG,
        EXEC,
        OPENJD_TASK,
        MOVE_OUT_OF_WAY,
        COPY_FILE,
        REMOVE_PATH,
        ECHO,
        SLEEP,
    )
}
