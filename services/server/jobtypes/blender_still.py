"""The `blender-still` job type: one frame split into border-rendered tiles or seed chunks, then merged."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from services.protocol.commands import (
    BLENDER_RENDER,
    MERGE_IMAGES,
    MERGE_SAMPLES,
    BlenderRenderParams,
    MergeSamplesParams,
    MergeTilesParams,
    TaskType,
)
from services.server.jobtypes.base import (
    Capability,
    CompiledTask,
    JobContext,
    JobType,
    JobTypeSettings,
    SizeEstimate,
    measured,
)
from services.server.jobtypes.fields import (
    FORMAT_EXTENSIONS,
    BlenderName,
    ImageFormat,
    PathStr,
    blendfile_field,
    invalid,
    name_field,
    path_field,
)
from services.server.jobtypes.paths import blender_output, padded, stem_and_extension

MERGE_TASK = "merge"
MAX_PARTS = 256
# The worker that merges the parts holds the whole image and every part in memory (RGBA: 4 bytes a pixel, 640 MB
# at this size); Pillow refuses to open images past 179 million pixels as a "decompression bomb".
MAX_PIXELS = 160_000_000
# Blender turns a border into pixels by truncating border × size in single precision; a quarter pixel
# inside each edge lands on the intended pixel whether Blender truncates or rounds.
_EDGE_NUDGE = 0.25


class StillFormat(StrEnum):
    PNG = "PNG"
    JPEG = "JPEG"
    TIFF = "TIFF"


class StillSplit(StrEnum):
    TILES = "tiles"
    SAMPLES = "samples"


class BlenderStillSettings(JobTypeSettings):
    model_config = ConfigDict(title="Blender still")

    blendfile: PathStr = blendfile_field()
    scene: BlenderName | None = name_field("Scene", "Scene to render; empty: the file's active scene.")
    frame: int = Field(1, ge=0, le=1_000_000, title="Frame", description="The frame to render.")
    output_path: PathStr = path_field(
        "Output image",
        "The final image, e.g. `{render_root}/poster.png`; parts are written next to it.",
        example="{render_root}/poster.png",
        mode="save",
    )
    format: StillFormat = Field(
        StillFormat.PNG, title="Format", description="Format of the final image; its extension must match."
    )
    width: int = Field(1920, ge=1, le=65_536, title="Width", description="Width of the final image in pixels.")
    height: int = Field(1080, ge=1, le=65_536, title="Height", description="Height of the final image in pixels.")
    split: StillSplit = Field(
        StillSplit.TILES,
        title="Split by",
        description="`tiles`: each task renders a region; `samples`: each task renders the whole image with "
        "part of the samples and its own seed, and the parts are averaged.",
    )
    tiles_x: int = Field(2, ge=1, le=MAX_PARTS, title="Tiles across", description="Columns of tiles.")
    tiles_y: int = Field(2, ge=1, le=MAX_PARTS, title="Tiles down", description="Rows of tiles.")
    samples: int = Field(
        128, ge=1, le=1_000_000, title="Samples", description="Total Cycles samples, shared among the chunks."
    )
    chunks: int = Field(4, ge=1, le=MAX_PARTS, title="Sample chunks", description="Tasks sharing the samples.")

    @field_validator("format")
    @classmethod
    def _extension_matches(cls, value: StillFormat, info: ValidationInfo) -> StillFormat:
        output = info.data.get("output_path")
        valid = FORMAT_EXTENSIONS[ImageFormat(value.value)]
        if output is not None and not output.lower().endswith(valid):
            raise invalid(f"output_path must end in {' or '.join(valid)} for {value.value} images")
        return value

    @field_validator("height")
    @classmethod
    def _pixels_bounded(cls, value: int, info: ValidationInfo) -> int:
        width = info.data.get("width")
        if width is not None and width * value > MAX_PIXELS:
            raise invalid(
                f"{width}×{value} is {width * value:,} pixels; a still may have at most {MAX_PIXELS:,} (e.g. "
                "16,000 × 10,000): the worker that merges its parts holds the whole image in memory"
            )
        return value

    @field_validator("tiles_x")
    @classmethod
    def _tiles_fit_width(cls, value: int, info: ValidationInfo) -> int:
        width = info.data.get("width")
        if info.data.get("split") is StillSplit.TILES and width is not None and value > width:
            raise invalid(f"{value} tiles across do not fit in {width} pixels")
        return value

    @field_validator("tiles_y")
    @classmethod
    def _tiles_fit_height(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("split") is not StillSplit.TILES:
            return value
        height = info.data.get("height")
        if height is not None and value > height:
            raise invalid(f"{value} tiles down do not fit in {height} pixels")
        across = info.data.get("tiles_x")
        if across is not None and across * value > MAX_PARTS:
            raise invalid(f"{across}×{value} tiles are more than {MAX_PARTS}")
        return value

    @field_validator("chunks")
    @classmethod
    def _chunks_have_samples(cls, value: int, info: ValidationInfo) -> int:
        samples = info.data.get("samples")
        if info.data.get("split") is StillSplit.SAMPLES and samples is not None and value > samples:
            raise invalid(f"{value} chunks cannot share {samples} samples; use at most {samples} chunks")
        return value


def tile_rects(width: int, height: int, across: int, down: int) -> list[tuple[int, int, int, int]]:
    """Pixel rectangles (x0, y0, x1, y1), top-left origin, ends exclusive, row by row from the top.

    Edges are computed once per row and column, so neighbouring tiles share them and abut exactly.
    """
    xs = [i * width // across for i in range(across + 1)]
    ys = [j * height // down for j in range(down + 1)]
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(down) for i in range(across)]


def _border(lo: int, hi: int, size: int) -> tuple[float, float]:
    return (lo + _EDGE_NUDGE) / size, min(1.0, (hi + _EDGE_NUDGE) / size)


class BlenderStill(JobType):
    name = "blender-still"
    capability = Capability.PROGRAM
    label = "Blender still"
    description = "Render one frame on several workers, as tiles or as sample chunks, and merge the parts."
    Settings = BlenderStillSettings

    def estimate(self, settings: Any) -> SizeEstimate:  # at most 257 tasks: built and measured
        return measured(self._tasks(BlenderStillSettings.model_validate(settings)))

    def compile(self, ctx: JobContext, settings: Any) -> list[CompiledTask]:  # a few tasks: a list is fine
        return self._tasks(BlenderStillSettings.model_validate(settings))

    @staticmethod
    def _tasks(s: BlenderStillSettings) -> list[CompiledTask]:
        # Tiles: JPEG parts would compound compression artefacts; PNG is lossless and what the merge reads best.
        # Sample chunks: 32-bit OpenEXR, scene-linear, so the merge averages light, not display values.
        if s.split is StillSplit.SAMPLES:
            part_format = ImageFormat.OPEN_EXR
        else:
            part_format = ImageFormat.TIFF if s.format is StillFormat.TIFF else ImageFormat.PNG
        stem, _ = stem_and_extension(s.output_path)
        scene = f"bpy.data.scenes[{s.scene!r}]" if s.scene else "bpy.context.scene"
        # Runs before `-S` switches scenes, hence the scene by name.
        setup = (
            f"import bpy; s = {scene}; r = s.render; r.resolution_x = {s.width}; "
            f"r.resolution_y = {s.height}; r.resolution_percentage = 100; "
        )
        parts: list[tuple[str, str, str]] = []  # (task name, part pattern, python expression)
        rects = []
        weights: list[int] = []  # samples of each chunk
        if s.split is StillSplit.TILES:
            rects = tile_rects(s.width, s.height, s.tiles_x, s.tiles_y)
            for n, (x0, y0, x1, y1) in enumerate(rects):
                min_x, max_x = _border(x0, x1, s.width)
                # Blender's border is in 0..1 from the bottom-left.
                min_y, max_y = _border(s.height - y1, s.height - y0, s.height)
                expr = (
                    setup + "r.use_border = True; r.use_crop_to_border = True; "
                    f"r.border_min_x = {min_x!r}; r.border_max_x = {max_x!r}; "
                    f"r.border_min_y = {min_y!r}; r.border_max_y = {max_y!r}"
                )
                name = f"tile {n} ({x0},{y0} {x1 - x0}×{y1 - y0})"
                parts.append((name, f"{stem}_part_{n}_####", expr))
        else:
            base, extra = divmod(s.samples, s.chunks)
            for n in range(s.chunks):
                samples = base + (1 if n < extra else 0)
                weights.append(samples)
                # `-F OPEN_EXR` comes after this expression on Blender's command line and sets half floats:
                # full float is set when the render starts
                expr = (
                    setup + f"r.use_border = False; s.cycles.seed = {n}; s.cycles.samples = {samples}; "
                    "bpy.app.handlers.render_pre.append("
                    "lambda sc, *a: setattr(sc.render.image_settings, 'color_depth', '32'))"
                )
                parts.append((f"samples {n} (seed {n}, {samples} samples)", f"{stem}_part_{n}_####", expr))

        tasks: list[CompiledTask] = []
        files: list[str] = []
        for name, pattern, expr in parts:
            parameters: BlenderRenderParams = {
                "blendfile": s.blendfile,
                "output": pattern,
                "format": part_format.value,
                "frames": str(s.frame),
                "python_expr": expr,
            }
            if s.scene is not None:
                parameters["scene"] = s.scene
            tasks.append(CompiledTask(name=name, type=TaskType.BLENDER.value, commands=[BLENDER_RENDER(parameters)]))
            # Blender puts the padded frame number in place of the `#`s and appends the extension.
            files.append(blender_output(pattern, part_format, padded(pattern, s.frame)))

        if s.split is StillSplit.TILES:
            merge: MergeTilesParams = {
                "mode": "tiles",
                "inputs": files,
                "output": s.output_path,
                "tiles": [{"path": f, "x": r[0], "y": r[1]} for f, r in zip(files, rects, strict=True)],
                "width": s.width,
                "height": s.height,
            }
            merge_task = CompiledTask(
                name=MERGE_TASK,
                type=TaskType.IMAGE.value,
                commands=[MERGE_IMAGES(merge)],
                depends_on=range(len(tasks)),
            )
        else:
            # in Blender, averaging linear light, then written with the scene's colour management
            merge_samples: MergeSamplesParams = {
                "blendfile": s.blendfile,
                "inputs": [{"path": f, "weight": w} for f, w in zip(files, weights, strict=True)],
                "output": s.output_path,
                "format": s.format.value,
            }
            if s.scene is not None:
                merge_samples["scene"] = s.scene
            merge_task = CompiledTask(
                name=MERGE_TASK,
                type=TaskType.BLENDER.value,
                commands=[MERGE_SAMPLES(merge_samples)],
                depends_on=range(len(tasks)),
            )
        tasks.append(merge_task)
        return tasks
