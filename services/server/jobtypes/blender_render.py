"""The `blender-render` job type: an animation rendered in frame chunks, optionally with a preview video."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from services.protocol.commands import (
    BLENDER_RENDER,
    FFMPEG,
    BlenderRenderParams,
    FfmpegParams,
    TaskType,
)
from services.server.jobtypes.base import (
    Capability,
    CompiledTask,
    JobContext,
    JobType,
    JobTypeSettings,
    SizeEstimate,
    command_bytes,
)
from services.server.jobtypes.fields import (
    BlenderName,
    FrameRange,
    ImageFormat,
    PathStr,
    blendfile_field,
    frames_field,
    invalid,
    name_field,
    path_field,
)
from services.server.jobtypes.frames import Chunk, chunk_bounds, frame_sequence, iter_chunks
from services.server.jobtypes.paths import blender_output, hashes_in_name, printf_token, sibling

PREVIEW_TASK = "preview-video"
# H.264 in MP4 that every player opens; yuv420p needs even sizes and tiny test renders may be odd.
PREVIEW_CODEC_ARGS = [
    "-vf",
    "scale=trunc(iw/2)*2:trunc(ih/2)*2",
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-crf",
    "20",
    "-movflags",
    "+faststart",
]


class BlenderRenderSettings(JobTypeSettings):
    model_config = ConfigDict(title="Blender render")

    blendfile: PathStr = blendfile_field()
    frames: FrameRange = frames_field()
    chunk_size: int = Field(
        1, ge=1, le=10_000, title="Chunk size", description="Frames rendered by one task, one Blender run."
    )
    output_path: PathStr = path_field(
        "Output",
        "Where frames go: Blender's output pattern, `#` marks the zero-padded frame number "
        "(e.g. `{render_root}/myjob/frame_####`); the format's extension is added.",
        example="{render_root}/myjob/frame_####",
        mode="save",
    )
    format: ImageFormat = Field(ImageFormat.PNG, title="Format", description="Image file format of the frames.")
    scene: BlenderName | None = name_field("Scene", "Scene to render; empty: the file's active scene.")
    fps: float = Field(24, gt=0, le=1000, title="Frame rate", description="Frames per second of the preview.")
    preview_video: bool = Field(
        False,
        title="Preview video",
        description="After all frames, encode them into an H.264 MP4 (not for OPEN_EXR frames).",
    )
    preview_path: PathStr | None = path_field(
        "Preview video path",
        "Where the preview goes; empty: `preview.mp4` next to the frames.",
        mode="save",
        default=None,
    )

    @field_validator("output_path")
    @classmethod
    def _has_hashes(cls, value: str) -> str:
        if not hashes_in_name(value):
            raise invalid("the file name must contain `#` where Blender puts the frame number, e.g. frame_####")
        return value

    @field_validator("preview_path")
    @classmethod
    def _preview_is_mp4(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.lower().endswith(".mp4"):
            raise invalid("the preview video is an H.264 MP4: the path must end in .mp4")
        return value


class BlenderRender(JobType):
    name = "blender-render"
    capability = Capability.PROGRAM
    label = "Blender render"
    description = "Render an animation with Blender, in chunks of frames; optionally a preview video after."
    Settings = BlenderRenderSettings

    def estimate(self, settings: Any) -> SizeEstimate:
        s = BlenderRenderSettings.model_validate(settings)
        frames = frame_sequence(s.frames)
        n, first, last = chunk_bounds(frames, s.chunk_size)
        base = self._base(s)
        each = max(command_bytes(self._chunk_task(base, c)) for c in (first, last))
        size = SizeEstimate(n, n * each)
        if s.preview_video and s.format is not ImageFormat.OPEN_EXR:
            preview = command_bytes(self._preview(s, frames, depends_on=()))
            size = SizeEstimate(n + 1, size.command_bytes + preview)
        return size

    @staticmethod
    def _base(s: BlenderRenderSettings) -> BlenderRenderParams:
        base: BlenderRenderParams = {
            "blendfile": s.blendfile,
            "output": s.output_path,
            "format": s.format.value,
            "frames": "",  # each task's own
        }
        if s.scene is not None:
            base["scene"] = s.scene
        return base

    @staticmethod
    def _chunk_task(base: BlenderRenderParams, chunk: Chunk) -> CompiledTask:
        """A task of several frames (what the estimate measures; one-frame tasks are built inline below)."""
        return CompiledTask(
            name=f"render {chunk.name}",
            type=TaskType.BLENDER.value,
            commands=[BLENDER_RENDER({**base, "frames": chunk.blender})],
            steps_total=len(chunk.frames),
        )

    def compile(self, ctx: JobContext, settings: Any) -> Iterator[CompiledTask]:
        s = BlenderRenderSettings.model_validate(settings)
        frames = frame_sequence(s.frames)
        base = self._base(s)
        blender = TaskType.BLENDER.value  # a plain str: the database binds it faster than a str subclass
        # Plain dicts, one task at a time: 100,000 frames compile in a fraction of a second.
        n = 0
        if s.chunk_size == 1:
            for f in frames:
                yield CompiledTask(
                    name=f"render frame {f}", type=blender, commands=[BLENDER_RENDER({**base, "frames": str(f)})]
                )
            n = len(frames)
        else:
            for chunk in iter_chunks(frames, s.chunk_size):
                yield self._chunk_task(base, chunk)
                n += 1
        if s.preview_video and s.format is not ImageFormat.OPEN_EXR:
            yield self._preview(s, frames, depends_on=range(n))

    @staticmethod
    def _preview(s: BlenderRenderSettings, frames: Sequence[int], depends_on: Sequence[int]) -> CompiledTask:
        output = s.preview_path or sibling(s.output_path, "preview.mp4")
        fps = f"{s.fps:g}"
        if frames[-1] - frames[0] == len(frames) - 1:
            # Contiguous: the image2 sequence reader, exact with -start_number and -frames:v.
            pattern = blender_output(s.output_path, s.format, "\0").replace("%", "%%")
            pattern = pattern.replace("\0", printf_token(s.output_path))
            inputs = ["-framerate", fps, "-start_number", str(frames[0]), "-i", pattern]
            inputs += ["-frames:v", str(len(frames))]
        else:
            # Gaps stop the sequence reader at the first missing file; a glob reads whatever exists.
            pattern = blender_output(s.output_path, s.format, "\0")
            for special in "[]*?":
                pattern = pattern.replace(special, "\\" + special)
            pattern = pattern.replace("\0", "*")
            inputs = ["-framerate", fps, "-pattern_type", "glob", "-i", pattern]
        args = [*inputs, *PREVIEW_CODEC_ARGS, output]
        encode: FfmpegParams = {"args": args, "total_frames": len(frames), "output": output}
        return CompiledTask(
            name=PREVIEW_TASK,
            type=TaskType.FFMPEG.value,
            commands=[FFMPEG(encode)],
            depends_on=depends_on,
            steps_total=len(frames),
        )
