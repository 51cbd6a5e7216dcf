"""Thumbnails of saved frames: size, format, the kinds of image Blender writes, and files that get none."""

from __future__ import annotations

import asyncio
import io
import random
from pathlib import Path

import pytest
from PIL import Image

from services.protocol.preview import PREVIEW_MAX_BYTES, Preview
from services.worker.previews import PreviewMaker
from services.worker.thumbnail import NoThumbnail, make_thumbnail


def opened(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_a_full_hd_frame_becomes_a_512_px_jpeg(tmp_path: Path) -> None:
    frame = tmp_path / "frame_0001.png"
    Image.new("RGBA", (1920, 1080), (255, 0, 0, 255)).save(frame)
    thumb = make_thumbnail(frame)
    assert (thumb.width, thumb.height) == (512, 288)
    assert (thumb.frame_width, thumb.frame_height) == (1920, 1080)
    img = opened(thumb.data)
    assert (img.format, img.size, img.mode) == ("JPEG", (512, 288), "RGB")
    r, g, b = img.getpixel((256, 144))  # type: ignore[misc]
    assert r > 240 and g < 20 and b < 20
    preview = thumb.preview(str(frame))
    assert Preview.model_validate_json(preview.model_dump_json()) == preview  # base64 on the wire, bytes here


def test_small_frames_are_not_enlarged_and_tall_ones_keep_their_shape(tmp_path: Path) -> None:
    small, tall = tmp_path / "small.png", tmp_path / "tall.tif"
    Image.new("RGB", (64, 36), "blue").save(small)
    Image.new("RGB", (300, 2400), "green").save(tall)
    assert (make_thumbnail(small).width, make_thumbnail(small).height) == (64, 36)
    assert (make_thumbnail(tall).width, make_thumbnail(tall).height) == (64, 512)


def test_transparent_16_bit_and_jpeg_frames(tmp_path: Path) -> None:
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (100, 50), (0, 0, 0, 0)).save(clear)
    img = opened(make_thumbnail(clear).data)
    assert all(abs(c - 48) <= 3 for c in img.getpixel((50, 25)))  # type: ignore[union-attr]  # on dark grey
    deep = tmp_path / "deep.png"
    Image.new("I;16", (80, 40), 65535).save(deep)
    assert opened(make_thumbnail(deep).data).getpixel((40, 20))[0] > 240  # type: ignore[index]
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (4000, 3000), "white").save(photo, quality=90)
    assert (make_thumbnail(photo).width, make_thumbnail(photo).height) == (512, 384)


def test_noise_is_squeezed_under_the_size_limit(tmp_path: Path) -> None:
    rng = random.Random(3)
    noise = tmp_path / "noise.png"
    Image.frombytes("RGB", (512, 512), bytes(rng.randrange(256) for _ in range(512 * 512 * 3))).save(noise)
    thumb = make_thumbnail(noise, max_bytes=60_000)
    assert len(thumb.data) <= 60_000 and thumb.width < 512  # halved once the lowest quality was not enough
    assert len(make_thumbnail(noise).data) <= PREVIEW_MAX_BYTES
    with pytest.raises(NoThumbnail, match="stays over 300 bytes"):
        make_thumbnail(noise, max_bytes=300)  # not even an eighth of the size fits: no preview, said so


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("frame_0001.exr", b"v/1\x01" + b"\0" * 100, "Pillow cannot read .exr"),
        ("preview.mp4", b"\0\0\0 ftypisom", "Pillow cannot read .mp4"),
        ("broken.png", b"not a png at all", "cannot identify image file"),
        ("gone.png", None, "cannot read it"),
    ],
)
def test_files_pillow_cannot_read_get_no_thumbnail(tmp_path: Path, name: str, content: bytes | None, reason: str):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NoThumbnail, match=reason):
        make_thumbnail(path)


async def test_the_maker_skips_frames_overtaken_and_notes_unreadable_ones_once(tmp_path: Path) -> None:
    frames = []
    for i in range(1, 31):
        frames.append(tmp_path / f"frame_{i:04d}.png")
        Image.new("RGB", (640, 360), (i * 8, 0, 0)).save(frames[-1])
    delivered: list[Preview] = []
    notes: list[str] = []
    maker = PreviewMaker(delivered.append, notes.append)
    runner = asyncio.create_task(maker.run())
    for f in frames:  # saved faster than thumbnails are made
        maker.offer(str(f))
    for i in range(3):
        maker.offer(str(tmp_path / f"frame_{i:04d}.exr"))
    await maker.settle(10)
    runner.cancel()
    assert delivered, "no preview at all"
    assert delivered[-1].frame_path == str(frames[-1])  # the newest always makes it
    assert len(delivered) < len(frames)  # the overtaken ones were skipped
    assert [(p.width, p.height) for p in delivered][-1] == (512, 288)
    assert notes == ["no preview of frame_0000.exr: not an image Pillow reads"]
