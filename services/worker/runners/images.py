"""The `merge-images` command: stitch tiles into one image, or average equally-sized seed chunks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from services.protocol.commands import MergeAverageParams, MergeTilesParams
from services.worker.runners.base import CommandFailed, RunContext

if TYPE_CHECKING:
    from PIL import Image

NAME = "merge-images"


async def run_merge_images(params: MergeTilesParams | MergeAverageParams, ctx: RunContext) -> None:
    output = Path(params["output"])
    if params["mode"] == "tiles":
        tiles = [(Path(t["path"]), t["x"], t["y"]) for t in params["tiles"]]
        width, height = params["width"], params["height"]
        await asyncio.to_thread(_stitch, tiles, width, height, output)
        ctx.log(f"stitched {len(tiles)} tiles into {output} ({width}×{height})")
    else:
        inputs = params["inputs"]
        await asyncio.to_thread(_average, [Path(p) for p in inputs], output)
        ctx.log(f"averaged {len(inputs)} images into {output}")
    ctx.output_file(str(output))


def _open(path: Path) -> Image.Image:
    from PIL import Image, UnidentifiedImageError  # lazily: Pillow is not needed by an idle worker

    try:
        with Image.open(path) as img:
            img.load()
            return img
    except FileNotFoundError as exc:
        raise CommandFailed(f"{NAME}: input image {path} does not exist") from exc
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise CommandFailed(f"{NAME}: cannot read image {path}: {exc}") from exc


def _save(img: Image.Image, output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        img.save(output)
    except (OSError, ValueError) as exc:
        raise CommandFailed(f"{NAME}: cannot write {output}: {exc}") from exc


def _stitch(tiles: list[tuple[Path, int, int]], width: int, height: int, output: Path) -> None:
    from PIL import Image

    images = [(_open(path), x, y) for path, x, y in tiles]
    mode = "RGBA" if any(img.mode in ("RGBA", "LA", "PA") for img, _, _ in images) else "RGB"
    canvas = Image.new(mode, (width, height))
    for (img, x, y), (path, _, _) in zip(images, tiles, strict=True):
        if x < 0 or y < 0 or x + img.width > width or y + img.height > height:
            raise CommandFailed(
                f"{NAME}: tile {path} ({img.width}×{img.height} at {x},{y}) does not fit in {width}×{height}"
            )
        canvas.paste(img.convert(mode), (x, y))
    _save(canvas, output)


def _average(paths: list[Path], output: Path) -> None:
    from PIL import Image

    first = _open(paths[0])
    mode = "RGBA" if first.mode in ("RGBA", "LA", "PA") else "RGB"
    result = first.convert(mode)
    for k, path in enumerate(paths[1:], start=2):
        img = _open(path)
        if img.size != result.size:
            raise CommandFailed(f"{NAME}: {path} is {img.width}×{img.height}, expected {result.width}×{result.height}")
        # a running mean: after k images each one weighs 1/k
        result = Image.blend(result, img.convert(mode), 1.0 / k)
    _save(result, output)
