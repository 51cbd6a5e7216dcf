"""The desktop app's windows carry Tablao's icon in all its sizes."""

from __future__ import annotations

from app.ui.app_icon import app_icon


def test_app_icon_has_small_and_large_sizes(qapp: object) -> None:
    icon = app_icon()
    assert icon is not None
    sizes = {s.width() for s in icon.availableSizes()}
    assert {16, 32, 256, 512} <= sizes
