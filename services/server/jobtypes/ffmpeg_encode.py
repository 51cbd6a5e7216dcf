"""The `ffmpeg-encode` job type: an image sequence encoded in parallel segments, then joined."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from services.protocol.commands import FFMPEG, REMOVE_PATH, TaskType
from services.server.jobtypes.base import (
    Capability,
    CompiledTask,
    JobContext,
    JobType,
    JobTypeSettings,
    SizeEstimate,
    command_bytes,
)
from services.server.jobtypes.fields import PathStr, frame_end_not_before_start, invalid, path_field
from services.server.jobtypes.frames import MAX_FRAMES
from services.server.jobtypes.paths import split, stem_and_extension

CONCAT_TASK = "concat"
SEGMENT_CLOCK_BASE = 10.0  # seconds
_PRINTF = re.compile(r"%0?\d*d")
_HASHES = re.compile(r"#+")


class Codec(StrEnum):
    H264 = "h264"
    H265 = "h265"
    PRORES = "prores"


CONTAINERS = (".mp4", ".mov", ".mkv")


class FfmpegEncodeSettings(JobTypeSettings):
    model_config = ConfigDict(title="ffmpeg encode")

    input_pattern: PathStr = path_field(
        "Input frames",
        "The image sequence, with the frame number as `%04d` or `####`, e.g. `{render_root}/shot/frame_%04d.png`.",
        example="{render_root}/shot/frame_%04d.png",
    )
    frame_start: int = Field(1, ge=0, le=10_000_000, title="First frame", description="First frame number.")
    frame_end: int = Field(250, ge=0, le=10_000_000, title="Last frame", description="Last frame number.")
    fps: float = Field(24, ge=0.01, le=1000, title="Frame rate", description="Frames per second of the video.")
    output_path: PathStr = path_field(
        "Output video", "The video file: .mp4, .mov or .mkv.", mode="save", example="{render_root}/shot/shot.mp4"
    )
    codec: Codec = Field(
        Codec.H264,
        title="Codec",
        description="h264 or h265 (segments encoded in parallel), or prores (for .mov/.mkv, one task).",
    )
    crf: int = Field(
        20,
        ge=0,
        le=51,
        title="Quality (CRF)",
        description="Constant rate factor: lower is better; not for prores.",
    )
    segment_frames: int = Field(
        500, ge=1, le=1_000_000, title="Frames per segment", description="Frames encoded by one task."
    )

    @field_validator("segment_frames")
    @classmethod
    def _segments_bounded(cls, value: int, info: ValidationInfo) -> int:
        """Counted before any task is built, as the frame ranges of the other job types are (frames.MAX_FRAMES)."""
        start, end = info.data.get("frame_start"), info.data.get("frame_end")
        if start is None or end is None or info.data.get("codec") is Codec.PRORES:
            return value
        segments = -(-(end - start + 1) // value)
        if segments > MAX_FRAMES:
            raise invalid(
                f"{end - start + 1:,} frames in segments of {value} make {segments:,} tasks, more than "
                f"{MAX_FRAMES:,}; use longer segments"
            )
        return value

    @field_validator("input_pattern")
    @classmethod
    def _one_frame_number(cls, value: str) -> str:
        name = split(value)[1]
        numbers = len(_PRINTF.findall(name.replace("%%", ""))) + len(_HASHES.findall(name))
        if numbers != 1:
            raise invalid("the file name must hold the frame number once, as %04d or ####")
        return value

    _end_after_start = field_validator("frame_end")(frame_end_not_before_start)

    @field_validator("output_path")
    @classmethod
    def _container(cls, value: str) -> str:
        if not value.lower().endswith(CONTAINERS):
            raise invalid(f"the video must end in {', '.join(CONTAINERS)}")
        if "|" in value:  # its segments are joined as `concat:a|b|…`, which a `|` in their names would split
            raise invalid("the video's path cannot contain '|'")
        return value

    @field_validator("codec")
    @classmethod
    def _codec_fits(cls, value: Codec, info: ValidationInfo) -> Codec:
        output = info.data.get("output_path")
        if value is Codec.PRORES and output is not None and output.lower().endswith(".mp4"):
            raise invalid("prores goes in .mov or .mkv, not .mp4")
        return value


def printf_pattern(pattern: str) -> str:
    """`frame_####.png` → `frame_%04d.png`; a printf pattern is kept as it is."""
    folder, name = split(pattern)
    match = _HASHES.search(name)
    if match is None:
        return pattern
    # A `%` of the name is a literal for the submitter but a directive for ffmpeg.
    name = (
        name[: match.start()].replace("%", "%%") + f"%0{len(match.group())}d" + name[match.end() :].replace("%", "%%")
    )
    return folder + name


def codec_args(codec: Codec, crf: int, container: str) -> list[str]:
    if codec is Codec.PRORES:
        return ["-c:v", "prores_ks", "-profile:v", "3", "-pix_fmt", "yuv422p10le"]
    # 4:2:0 needs even sizes; the scale only rounds odd ones down.
    args = ["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "yuv420p", "-crf", str(crf)]
    if codec is Codec.H264:
        return ["-c:v", "libx264", *args]
    # hvc1 is the tag Apple's players want for H.265 in MP4 and QuickTime.
    tag = ["-tag:v", "hvc1"] if container in (".mp4", ".mov") else []
    return ["-c:v", "libx265", *args, *tag]


class FfmpegEncode(JobType):
    name = "ffmpeg-encode"
    capability = Capability.PROGRAM
    label = "ffmpeg encode"
    description = "Encode an image sequence into a video: segments in parallel, then joined without re-encoding."
    Settings = FfmpegEncodeSettings

    def estimate(self, settings: Any) -> SizeEstimate:
        s = FfmpegEncodeSettings.model_validate(settings)
        plan = _Plan(s)
        if len(plan.starts) == 1:
            return SizeEstimate(1, command_bytes(plan.whole()))
        n = len(plan.starts)
        each = max(command_bytes(plan.segment(i, plan.starts[i])) for i in (0, n - 1))
        # the join names every segment twice (ffmpeg's input, then a removal): a long output path counts n times
        path = len(orjson.dumps(plan.segment_path(n - 1)))  # the longest, as JSON
        remove = command_bytes(CompiledTask("", "", [REMOVE_PATH({"path": ""})]))
        concat = n * (2 * path + remove) + command_bytes(plan.concat([]))
        return SizeEstimate(n + 1, n * each + concat)

    def compile(self, ctx: JobContext, settings: Any) -> Iterator[CompiledTask]:
        s = FfmpegEncodeSettings.model_validate(settings)
        plan = _Plan(s)
        if len(plan.starts) == 1:
            yield plan.whole()
            return
        segments: list[str] = []
        for n, start in enumerate(plan.starts):
            yield plan.segment(n, start)
            segments.append(plan.segment_path(n))
        yield plan.concat(segments)


class _Plan:
    """The tasks of an encode, each built on its own (so the size estimate can build just one or two)."""

    def __init__(self, s: FfmpegEncodeSettings) -> None:
        self.s = s
        self.stem, container = stem_and_extension(s.output_path)
        container = container.lower()
        self.pattern = printf_pattern(s.input_pattern)
        self.fps = f"{s.fps:g}"
        self.total = s.frame_end - s.frame_start + 1
        self.faststart = ["-movflags", "+faststart"] if container in (".mp4", ".mov") else []
        self.codec = codec_args(s.codec, s.crf, container)
        # MPEG-TS, the one container joined by plain concatenation, cannot carry ProRes: ProRes is intra-only
        # and quick, so it is encoded in one task.
        self.segment_size = self.total if s.codec is Codec.PRORES else s.segment_frames
        self.starts = range(s.frame_start, s.frame_end + 1, self.segment_size)

    def inputs(self, start: int, count: int) -> list[str]:
        return ["-framerate", self.fps, "-start_number", str(start), "-i", self.pattern, "-frames:v", str(count)]

    def whole(self) -> CompiledTask:
        s = self.s
        args = [*self.inputs(s.frame_start, self.total), *self.codec, *self.faststart, s.output_path]
        return _ffmpeg_task(f"encode frames {s.frame_start}-{s.frame_end}", args, self.total, s.output_path)

    def segment_path(self, n: int) -> str:
        return f"{self.stem}_segment_{n:04d}.ts"

    def segment(self, n: int, start: int) -> CompiledTask:
        s = self.s
        count = min(self.segment_size, s.frame_end - start + 1)
        path = self.segment_path(n)
        # Each segment's clock continues where the previous one stopped, so the joined stream's
        # timestamps keep rising. The base keeps B-frame decode times positive in every segment:
        # otherwise ffmpeg shifts only the first segment's timestamps and frames overlap at the seam.
        offset = f"{SEGMENT_CLOCK_BASE + (start - s.frame_start) / s.fps:.6f}"
        args = [*self.inputs(start, count), *self.codec, "-output_ts_offset", offset, "-f", "mpegts", path]
        return _ffmpeg_task(f"encode frames {start}-{start + count - 1}", args, count, path)

    def concat(self, segments: list[str]) -> CompiledTask:
        s = self.s
        concat = ["-i", "concat:" + "|".join(segments), "-c", "copy", *self.faststart, s.output_path]
        joined = _ffmpeg_task(CONCAT_TASK, concat, self.total, s.output_path, depends_on=range(len(segments)))
        # The segments are only a means to the video: removed once it is written.
        joined.commands += [REMOVE_PATH({"path": p}) for p in segments]
        return joined


def _ffmpeg_task(name: str, args: list[str], frames: int, output: str, depends_on: Sequence[int] = ()) -> CompiledTask:
    return CompiledTask(
        name=name,
        type=TaskType.FFMPEG.value,
        commands=[FFMPEG({"args": args, "total_frames": frames, "output": output})],
        depends_on=depends_on,
        steps_total=frames,
    )
