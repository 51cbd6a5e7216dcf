"""Where Tablao's icon set lives, in a checkout and in the PyInstaller bundle alike (resources/icons/)."""

from __future__ import annotations

from pathlib import Path

ICON_DIR = Path(__file__).resolve().parent / "icons"
APP_ICON_PNG = ICON_DIR / "tablao.png"  # 256 px; the windows' icon and the Linux desktop files'
APP_ICON_SVG = ICON_DIR / "tablao.svg"


def app_icon_sizes() -> dict[int, Path]:
    """The square PNG renderings by size in pixels (16 to 512), for icon themes and Qt's QIcon."""
    return {int(p.stem.rsplit("-", 1)[1]): p for p in ICON_DIR.glob("tablao-*.png")}
