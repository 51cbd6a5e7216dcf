"""Packs the Linux bundle as tablao-VERSION-linux-ARCH.tar.gz: the programs, menu entries, icons and install.sh.

`python packaging/linux/make_tarball.py [BUNDLE] [OUT_DIR]` (defaults: dist/tablao, dist). Inside:
  tablao-VERSION-linux-ARCH/tablao/            the one-folder bundle (tablao, tablao-desktop, tablao-tray)
  tablao-VERSION-linux-ARCH/share/applications the app's and the tray's .desktop files (Exec filled in by install.sh)
  tablao-VERSION-linux-ARCH/share/icons        the icon in the freedesktop theme sizes, and the SVG
  tablao-VERSION-linux-ARCH/install.sh         installs for this user (~/.local) or under --prefix
"""

from __future__ import annotations

import platform
import shutil
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def stage(bundle: Path, folder: Path) -> None:
    """Lay the release out in `folder` (made fresh)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copytree(bundle, folder / "tablao", symlinks=True)
    apps = folder / "share" / "applications"
    apps.mkdir(parents=True)
    for entry in ("org.tablao.Tablao.desktop", "org.tablao.Tray.desktop"):
        shutil.copy2(HERE / entry, apps / entry)
    icons = ROOT / "resources" / "icons"
    for size in ICON_SIZES:
        target = folder / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True)
        shutil.copy2(icons / f"tablao-{size}.png", target / "org.tablao.Tablao.png")
    scalable = folder / "share" / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copy2(icons / "tablao.svg", scalable / "org.tablao.Tablao.svg")
    shutil.copy2(HERE / "install.sh", folder / "install.sh")


def make(bundle: Path, out_dir: Path) -> Path:
    name = f"tablao-{version('tablao')}-linux-{platform.machine()}"
    staging = out_dir / name
    stage(bundle, staging)
    archive = out_dir / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(staging, arcname=name)
    shutil.rmtree(staging)
    return archive


if __name__ == "__main__":
    bundle = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "tablao"
    print(make(bundle, Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "dist"))
