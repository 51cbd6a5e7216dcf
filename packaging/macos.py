"""macOS bundle details: Tablao.app's Info.plist, and the tray agent as a background helper app inside it.

Tablao.app opens the desktop app. `Contents/Library/LoginItems/Tablao Tray.app` is the tray agent: an agent app
(LSUIElement: no Dock icon, no menu bar) that runs the bundle's `tablao-tray`, which is where a login item points.
Used by tablao.spec on macOS; tests check the plists with plistlib on any platform.
"""

from __future__ import annotations

import plistlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

BUNDLE_ID = "org.tablao.Tablao"
TRAY_BUNDLE_ID = "org.tablao.Tablao.tray"
TRAY_APP = "Contents/Library/LoginItems/Tablao Tray.app"
MINIMUM_MACOS = "11.0"


def app_info(version: str) -> dict[str, Any]:
    """Info.plist keys of Tablao.app (PyInstaller's BUNDLE adds its defaults around them)."""
    return {
        "CFBundleName": "Tablao",
        "CFBundleDisplayName": "Tablao",
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleExecutable": "tablao-desktop",
        "CFBundleIconFile": "tablao.icns",
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "LSMinimumSystemVersion": MINIMUM_MACOS,
        "NSHighResolutionCapable": True,
        "NSHumanReadableCopyright": "GPL-3.0-or-later",
        # tablao://job/ID links (the Blender add-on shows them): macOS hands them to the app, which opens the job
        "CFBundleURLTypes": [{"CFBundleURLName": f"{BUNDLE_ID}.job-link", "CFBundleURLSchemes": ["tablao"]}],
    }


def tray_info(version: str) -> dict[str, Any]:
    """Info.plist of the tray helper: a background agent without a Dock icon."""
    return {
        **app_info(version),
        "CFBundleName": "Tablao Tray",
        "CFBundleDisplayName": "Tablao Tray",
        "CFBundleIdentifier": TRAY_BUNDLE_ID,
        "CFBundleExecutable": "tablao-tray",
        "LSUIElement": True,
        "LSBackgroundOnly": False,  # it shows a menu-bar icon and menus, so it is not background-only
    }


# The helper's executable starts the real one three folders up: Contents/MacOS of Tablao.app.
TRAY_LAUNCHER = """#!/bin/sh
# Tablao Tray.app: runs the tray agent of the Tablao.app this helper sits in.
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../../../../MacOS/tablao-tray" "$@"
"""


def add_tray_helper(app: Path, version: str, icon: Path | None = None) -> Path:
    """Write the tray helper app into `app` (a Tablao.app); returns the helper's path."""
    helper = app / TRAY_APP
    (helper / "Contents" / "MacOS").mkdir(parents=True, exist_ok=True)
    (helper / "Contents" / "Resources").mkdir(parents=True, exist_ok=True)
    with (helper / "Contents" / "Info.plist").open("wb") as f:
        plistlib.dump(tray_info(version), f)
    launcher = helper / "Contents" / "MacOS" / "tablao-tray"
    launcher.write_text(TRAY_LAUNCHER)
    launcher.chmod(0o755)
    source = icon or app / "Contents" / "Resources" / "tablao.icns"
    if source.exists():
        shutil.copy2(source, helper / "Contents" / "Resources" / "tablao.icns")
    return helper


def sign_ad_hoc(app: Path) -> None:
    """Seal the app again after the helper was added (PyInstaller signed it before): an ad-hoc signature, which is
    what runs on Apple silicon without a developer identity; a release signs with its own identity instead."""
    if shutil.which("codesign"):
        subprocess.run(["codesign", "--force", "--deep", "--sign", "-", str(app)], check=True)
