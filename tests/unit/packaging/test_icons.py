"""The committed icon set: every format the installers need, and all of it drawn from the SVG source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from resources.branding import APP_ICON_PNG, APP_ICON_SVG, ICON_DIR, app_icon_sizes
from tests.support.services import ROOT


def test_every_format_is_there_with_its_sizes() -> None:
    assert APP_ICON_SVG.read_text().lstrip().startswith("<?xml")
    assert set(app_icon_sizes()) == {16, 24, 32, 48, 64, 128, 256, 512}
    for size, path in app_icon_sizes().items():
        with Image.open(path) as png:
            assert png.size == (size, size) and png.mode == "RGBA"
    with Image.open(APP_ICON_PNG) as png:
        assert png.size == (256, 256)
    with Image.open(ICON_DIR / "tablao.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    with Image.open(ICON_DIR / "tablao.icns") as icns:
        assert icns.format == "ICNS"
        assert (512, 512, 2) in icns.info["sizes"] or icns.size == (1024, 1024)


@pytest.mark.timeout(60)
def test_the_pngs_are_what_the_svg_draws(tmp_path: Path) -> None:
    """Regenerating from the SVG gives the committed pictures, so nobody edits a PNG by hand and forgets the rest."""
    subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "make_icons.py"), str(tmp_path)], check=True, capture_output=True
    )
    for name in ("tablao.png", "tablao-16.png", "tablao-512.png"):
        with Image.open(ICON_DIR / name) as committed, Image.open(tmp_path / name) as fresh:
            diff = ImageChops.difference(committed.convert("RGBA"), fresh.convert("RGBA"))
            extrema: tuple[tuple[int, int], ...] = diff.getextrema()  # type: ignore[assignment]
            assert max(band_max for _min, band_max in extrema) <= 8, name
