"""Tablao's own icon as a QIcon, with every size of the icon set, for windows and notifications."""

from __future__ import annotations

from app.qt import QIcon
from resources.branding import app_icon_sizes


def app_icon() -> QIcon | None:
    """The icon with all its PNG sizes, or None when the icon files are missing (a broken install)."""
    icon = QIcon()
    for _size, path in sorted(app_icon_sizes().items()):
        icon.addFile(str(path))
    return None if icon.isNull() else icon
