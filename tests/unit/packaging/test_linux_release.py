"""The Linux release: a .tar.gz with the bundle, menu entries and icons, and its install.sh (install, uninstall)."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.services import ROOT


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A stand-in bundle: three programs that say who they are."""
    folder = tmp_path / "bundle"
    (folder / "_internal").mkdir(parents=True)
    for name in ("tablao", "tablao-desktop", "tablao-tray"):
        (folder / name).write_text(f'#!/bin/sh\necho {name} "$@"\n')
        (folder / name).chmod(0o755)
    return folder


@pytest.mark.timeout(60)
def test_tarball_installs_and_uninstalls_for_one_user(bundle: Path, tmp_path: Path) -> None:
    archive: Path = _load(ROOT / "packaging/linux/make_tarball.py").make(bundle, tmp_path / "out")
    assert archive.name.startswith("tablao-") and archive.name.endswith(".tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = archive.name.removesuffix(".tar.gz")
        assert f"{top}/tablao/tablao-tray" in names and f"{top}/install.sh" in names
        assert f"{top}/share/icons/hicolor/48x48/apps/org.tablao.Tablao.png" in names
        tar.extractall(tmp_path / "unpacked", filter="data")
    prefix = tmp_path / "prefix with space"
    unpacked = tmp_path / "unpacked" / top
    out = subprocess.run([unpacked / "install.sh", "--prefix", str(prefix)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    ran = subprocess.run([prefix / "bin" / "tablao", "--version"], capture_output=True, text=True, timeout=30)
    assert ran.stdout == "tablao --version\n"
    for entry, program in (("org.tablao.Tablao", "tablao-desktop"), ("org.tablao.Tray", "tablao-tray")):
        desktop = prefix / "share" / "applications" / f"{entry}.desktop"
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(desktop)
        # quoted: the path has a space; the app takes tablao:// links (%u) from the desktop's URL handling
        link = " %u" if program == "tablao-desktop" else ""
        assert parser["Desktop Entry"]["Exec"] == f'"{prefix}/lib/tablao/{program}"{link}'
        assert parser["Desktop Entry"]["Icon"] == "org.tablao.Tablao"
        if shutil.which("desktop-file-validate"):
            check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout
    app_entry = configparser.ConfigParser(interpolation=None)
    app_entry.read(prefix / "share" / "applications" / "org.tablao.Tablao.desktop")
    assert app_entry["Desktop Entry"]["MimeType"] == "x-scheme-handler/tablao;"
    if shutil.which("update-desktop-database"):  # the cache desktops read to find a link's handler
        cache = (prefix / "share" / "applications" / "mimeinfo.cache").read_text()
        assert "x-scheme-handler/tablao=org.tablao.Tablao.desktop;" in cache
    assert (prefix / "share/icons/hicolor/256x256/apps/org.tablao.Tablao.png").is_file()
    assert (prefix / "share/icons/hicolor/scalable/apps/org.tablao.Tablao.svg").is_file()

    uninstall = [str(unpacked / "install.sh"), "--uninstall", "--prefix", str(prefix)]
    out = subprocess.run(uninstall, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert not (prefix / "lib" / "tablao").exists() and not (prefix / "bin" / "tablao").exists()
    assert not list((prefix / "share" / "applications").glob("org.tablao.*"))
    if shutil.which("update-desktop-database"):
        assert "tablao" not in (prefix / "share" / "applications" / "mimeinfo.cache").read_text()
    assert not list((prefix / "share" / "icons").rglob("org.tablao.*"))


def test_install_sh_refuses_unknown_options(tmp_path: Path) -> None:
    out = subprocess.run([ROOT / "packaging/linux/install.sh", "--prefx", "x"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown option --prefx" in out.stderr
