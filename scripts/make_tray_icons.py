"""Draws the tray's state icons (resources/icons/tray/*.png) with Pillow; run again after changing a design.

One disc per state in a colour that reads at 16 px, with a glyph that does not rely on colour alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 64
OUT = Path(__file__).resolve().parent.parent / "resources" / "icons" / "tray"

# state: (disc colour, glyph)
STATES = {
    "rendering": ((46, 160, 67), "play"),
    "waiting": ((90, 120, 160), "dots"),
    "paused": ((220, 150, 30), "pause"),
    "outside-hours": ((110, 90, 170), "moon"),
    "user-active": ((60, 140, 200), "person"),
    "asleep": ((120, 120, 120), "zz"),
    "unreachable": ((200, 60, 50), "cross"),
    "stopped": ((70, 70, 70), "square"),
}


def draw(colour: tuple[int, int, int], glyph: str, size: int) -> Image.Image:
    scale = 4  # drawn large and scaled down: smooth edges without an anti-aliasing library
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((s * 0.04, s * 0.04, s * 0.96, s * 0.96), fill=(*colour, 255), outline=(255, 255, 255, 255),
              width=int(s * 0.05))  # fmt: skip
    w = (255, 255, 255, 255)
    c = s / 2
    if glyph == "play":
        d.polygon([(c - s * 0.14, c - s * 0.22), (c - s * 0.14, c + s * 0.22), (c + s * 0.24, c)], fill=w)
    elif glyph == "pause":
        d.rectangle((c - s * 0.18, c - s * 0.22, c - s * 0.05, c + s * 0.22), fill=w)
        d.rectangle((c + s * 0.05, c - s * 0.22, c + s * 0.18, c + s * 0.22), fill=w)
    elif glyph == "dots":
        for dx in (-0.2, 0.0, 0.2):
            r = s * 0.06
            d.ellipse((c + dx * s - r, c - r, c + dx * s + r, c + r), fill=w)
    elif glyph == "moon":
        d.ellipse((c - s * 0.24, c - s * 0.24, c + s * 0.24, c + s * 0.24), fill=w)
        d.ellipse((c - s * 0.12, c - s * 0.32, c + s * 0.3, c + s * 0.12), fill=(*colour, 255))
    elif glyph == "person":
        d.ellipse((c - s * 0.09, c - s * 0.27, c + s * 0.09, c - s * 0.09), fill=w)
        d.pieslice((c - s * 0.22, c - s * 0.04, c + s * 0.22, c + s * 0.4), 180, 360, fill=w)
    elif glyph == "zz":
        lw = int(s * 0.05)
        for ox, oy, k in ((-0.12, -0.04, 0.16), (0.1, -0.2, 0.11)):
            x0, y0, x1 = c + ox * s - k * s / 2, c + oy * s - k * s / 2, c + ox * s + k * s / 2
            y1 = y0 + k * s
            d.line([(x0, y0), (x1, y0), (x0, y1), (x1, y1)], fill=w, width=lw, joint="curve")
    elif glyph == "cross":
        lw = int(s * 0.08)
        d.line([(c - s * 0.18, c - s * 0.18), (c + s * 0.18, c + s * 0.18)], fill=w, width=lw)
        d.line([(c - s * 0.18, c + s * 0.18), (c + s * 0.18, c - s * 0.18)], fill=w, width=lw)
    elif glyph == "square":
        d.rectangle((c - s * 0.16, c - s * 0.16, c + s * 0.16, c + s * 0.16), fill=w)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for state, (colour, glyph) in STATES.items():
        draw(colour, glyph, SIZE).save(OUT / f"{state}.png", optimize=True)
    print(f"wrote {len(STATES)} icons to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
