"""Thumbnails of saved frames for the last-rendered preview: at most 512 px, JPEG, under the wire's size limit.

JPEG rather than WebP: the desktop app's Qt (PySide6-Essentials) reads JPEG without the image-formats add-on.
Formats Pillow cannot read (OpenEXR, Radiance HDR, DPX, videos) get no thumbnail: `NoThumbnail` says why, and
the task goes on as before. Pillow is imported lazily: an idle worker does not need it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.protocol.preview import PREVIEW_MAX_BYTES, PREVIEW_MAX_PIXELS, Preview

if TYPE_CHECKING:
    from PIL import Image

# what Blender, ffmpeg and merge-images write that Pillow reads; anything else is not tried
READABLE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".tga", ".webp", ".sgi", ".rgb"})
MAX_SOURCE_PIXELS = 200_000_000  # a frame larger than this (about 16K × 12K) is not decoded for a preview
QUALITIES = (82, 65, 45, 30)
BACKGROUND = (48, 48, 48)  # transparent pixels are shown on a dark grey, as Blender's image editor does


class NoThumbnail(Exception):
    """No thumbnail can be made of this file; the message says why (for the task log)."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int
    frame_width: int
    frame_height: int

    def preview(self, frame_path: str) -> Preview:
        return Preview(
            content_type="image/jpeg", width=self.width, height=self.height, data=self.data,
            frame_path=frame_path, frame_width=self.frame_width, frame_height=self.frame_height,
        )  # fmt: skip


def can_try(path: str | Path) -> bool:
    """Whether the file's kind is one Pillow reads (cheap: the name only)."""
    return Path(path).suffix.lower() in READABLE_SUFFIXES


def make_thumbnail(path: Path, max_pixels: int = PREVIEW_MAX_PIXELS, max_bytes: int = PREVIEW_MAX_BYTES) -> Thumbnail:
    """Read the frame at `path` and return a JPEG at most `max_pixels` on its longer side (blocking: run it
    in a thread)."""
    from PIL import Image, UnidentifiedImageError

    if not can_try(path):
        raise NoThumbnail(f"no preview of {path.name}: Pillow cannot read {path.suffix or 'files without a suffix'}")
    try:
        with warnings.catch_warnings():
            # Pillow warns about (and above twice its limit refuses) huge images; a preview never needs one
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                frame_size = img.size
                if frame_size[0] * frame_size[1] > MAX_SOURCE_PIXELS:
                    raise NoThumbnail(f"no preview of {path.name}: {frame_size[0]}×{frame_size[1]} is too large")
                img.draft("RGB", (max_pixels, max_pixels))  # JPEG sources decode at a fraction of their size
                small = _to_rgb(img)
                small.thumbnail((max_pixels, max_pixels), Image.Resampling.LANCZOS, reducing_gap=3.0)
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise NoThumbnail(f"no preview of {path.name}: {exc}") from None
    except OSError as exc:
        raise NoThumbnail(f"no preview of {path.name}: cannot read it ({exc})") from None
    # a frame of fine noise (an early, unconverged sample) may not fit at full size: lower the quality, then
    # halve the size, rather than show nothing
    for _ in range(3):
        for quality in QUALITIES:
            out = io.BytesIO()
            small.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= max_bytes:
                return Thumbnail(out.getvalue(), "image/jpeg", small.width, small.height, *frame_size)
        small = small.resize((max(1, small.width // 2), max(1, small.height // 2)), Image.Resampling.BILINEAR)
    raise NoThumbnail(f"no preview of {path.name}: the thumbnail stays over {max_bytes} bytes")


def _to_rgb(img: Image.Image) -> Image.Image:
    """An 8-bit RGB copy: alpha composited on a dark grey, 16-bit and float greys scaled down."""
    from PIL import Image

    if img.mode in ("RGB", "L"):
        return img.convert("RGB")
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit greys (Blender's BW 16-bit PNG): 0-65535 down to 0-255
        return img.convert("I").point(lambda v: v / 256).convert("L").convert("RGB")
    if img.mode == "F":
        return img.point(lambda v: v * 255).convert("L").convert("RGB")
    rgba = img.convert("RGBA")
    flat = Image.new("RGB", rgba.size, BACKGROUND)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat
