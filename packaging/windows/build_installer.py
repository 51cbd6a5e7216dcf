"""Builds the Windows installer (NSIS) from a bundle folder: `python packaging/windows/build_installer.py BUNDLE OUT`.

BUNDLE is the PyInstaller folder holding tablao.exe, tablao-desktop.exe and tablao-tray.exe; OUT the installer to
write (default dist/Tablao-VERSION-setup.exe). makensis runs on Windows (the NSIS install) and on Linux (Debian's
`nsis` package); the script is packaging/windows/tablao.nsi.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def makensis() -> str:
    found = shutil.which("makensis")
    for candidate in (found, r"C:\Program Files (x86)\NSIS\makensis.exe", r"C:\Program Files\NSIS\makensis.exe"):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("build_installer: makensis not found (Debian: apt-get install nsis; Windows: choco install nsis)")


def build(bundle: Path, out: Path, app_version: str | None = None) -> Path:
    app_version = app_version or version("tablao")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        makensis(),
        "-V2",
        "-WX",  # a warning is an error: a mistyped variable or label must not ship
        f"-DBUNDLE_DIR={bundle.resolve()}",
        f"-DVERSION={app_version}",
        f"-DOUTFILE={out.resolve()}",
        f"-DICON={ROOT / 'resources' / 'icons' / 'tablao.ico'}",
        str(HERE / "tablao.nsi"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build_installer: makensis failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return out


if __name__ == "__main__":
    bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "tablao"
    default = ROOT / "dist" / f"Tablao-{version('tablao')}-setup.exe"
    print(build(bundle, Path(sys.argv[2]) if len(sys.argv) > 2 else default))
