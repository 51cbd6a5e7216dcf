"""Draws Tablao's icon set from its SVG source: PNG sizes, a Windows .ico and a macOS .icns.

Run from the repository with `.venv/bin/python packaging/make_icons.py` after editing resources/icons/tablao.svg,
and commit what it writes. Pillow cannot read SVG, so Qt's SVG renderer (already a dependency of the desktop app)
rasterises the source once at 1024 px; Pillow scales that down and writes every file format.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = [(s, s) for s in (16, 24, 32, 48, 64, 128, 256)]
MASTER = 1024


def rasterise(svg: Path, size: int) -> Image.Image:
    """The SVG drawn into a transparent size x size image."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(data.data()))).convert("RGBA")


def main(out: Path = ICONS) -> int:
    master = rasterise(ICONS / "tablao.svg", MASTER)
    out.mkdir(parents=True, exist_ok=True)
    for size in PNG_SIZES:
        master.resize((size, size), Image.Resampling.LANCZOS).save(out / f"tablao-{size}.png", optimize=True)
    master.resize((256, 256), Image.Resampling.LANCZOS).save(out / "tablao.png", optimize=True)
    master.save(out / "tablao.ico", sizes=ICO_SIZES)
    master.save(out / "tablao.icns")
    print(f"make_icons: wrote {len(PNG_SIZES) + 3} files into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ICONS))
