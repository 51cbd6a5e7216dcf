"""Whether Qt has a display to open windows on, checked before any QApplication exists; imports no Qt.

Without one, Qt on Linux aborts the whole process (SIGABRT, "Reinstalling the application may fix this problem"),
so the desktop app, `tablao all-in-one` and the tray say so in one line instead. A platform plugin that needs no
display (QT_QPA_PLATFORM=offscreen, as the tests and the bundle's checks use, or minimal, vnc, eglfs...) is fine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# the platform plugins that show windows on a display server: they need DISPLAY or WAYLAND_DISPLAY
_DISPLAY_PLATFORMS = frozenset({"", "xcb", "wayland", "wayland-egl", "wayland-brcm"})


def missing_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """True on Linux (and other X11/Wayland systems) when neither DISPLAY nor WAYLAND_DISPLAY is set and
    QT_QPA_PLATFORM names no plugin that works without one."""
    env = os.environ if environ is None else environ
    if (platform or sys.platform) in ("darwin", "win32", "cygwin"):
        return False
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return False
    # QT_QPA_PLATFORM may list fallbacks ("wayland;xcb") and give options ("offscreen:fontengine=freetype")
    wanted = {part.split(":", 1)[0].strip().lower() for part in env.get("QT_QPA_PLATFORM", "").split(";")}
    return wanted <= _DISPLAY_PLATFORMS
