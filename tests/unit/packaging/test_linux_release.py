"""The Linux release: a .tar.gz with the bundle, menu entries and icons, and its install.sh (install, uninstall)."""

from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType

import pytest

from app.tray.autostart import XdgAutostart
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


def _program(pid: int) -> str | None:
    """What process `pid` runs, or None once it has gone (a zombie runs nothing)."""
    try:
        return str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:
        return None


def _runs(pid: int, program: Path, timeout: float = 10.0) -> bool:
    """Whether `pid` comes to run `program`: a shell's `&` child is its parent's program until it has exec'd."""
    deadline = time.monotonic() + timeout
    while _program(pid) != str(program):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _program(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """An unpacked release whose programs really run: `tablao-tray` a shell (it starts its worker), the others
    `sleep`, so /proc shows each process's program inside the installation."""
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    shell, sleep = shutil.which("sh"), shutil.which("sleep")
    assert shell and sleep
    shutil.copy(os.path.realpath(shell), bundle / "tablao-tray")
    for name in ("tablao", "tablao-desktop"):
        shutil.copy(os.path.realpath(sleep), bundle / name)
    folder = tmp_path / "release"
    _load(ROOT / "packaging/linux/make_tarball.py").stage(bundle, folder)
    return folder


@pytest.mark.timeout(60)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_uninstall_stops_the_tray_agent_and_removes_its_login_entry(release: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix with space"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    install = subprocess.run([release / "install.sh", "--prefix", str(prefix)], env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    lib = prefix / "lib" / "tablao"
    login = XdgAutostart(tmp_path / "home", str(tmp_path / "config"))
    login.enable([str(lib / "tablao-tray"), "tray"])  # what "Start at login" writes in a frozen bundle
    # the tray, and its worker child (`tablao`, here a sleep)
    tray = subprocess.Popen([lib / "tablao-tray", "-c", '"$0" 600 & echo $!; wait', lib / "tablao"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    elsewhere = tmp_path / "other" / "tablao-tray"  # another installation's tray: not this uninstall's business
    elsewhere.parent.mkdir()
    shutil.copy(lib / "tablao", elsewhere)
    others = [subprocess.Popen([elsewhere, "600"]), subprocess.Popen([lib / "tablao-desktop", "600"])]
    try:
        assert tray.stdout is not None
        worker = int(tray.stdout.readline())
        assert _runs(worker, lib / "tablao")
        started = time.monotonic()
        uninstall = [str(release / "install.sh"), "--uninstall", "--prefix", str(prefix)]
        out = subprocess.run(uninstall, env=env, capture_output=True, text=True, timeout=50)
        assert out.returncode == 0, out.stderr
        assert time.monotonic() - started < 20  # it did not wait out its 60 s
        assert f"Stopping the Tablao tray agent (process {tray.pid} {worker})" in out.stdout
        assert tray.wait(timeout=5) == -signal.SIGTERM
        assert _gone(worker)
        assert [p.poll() for p in others] == [None, None]
        assert not login.path.exists()
        assert not lib.exists()
    finally:
        tray.kill()
        tray.wait()
        for proc in others:
            proc.kill()
            proc.wait()
        assert tray.stdout is not None
        tray.stdout.close()


@pytest.mark.timeout(60)
def test_uninstall_keeps_a_login_entry_for_another_installation(release: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    subprocess.run([release / "install.sh", "--prefix", str(prefix)], env=env, check=True, capture_output=True)
    login = XdgAutostart(tmp_path / "home", str(tmp_path / "config"))
    login.enable(["/opt/tablao/tablao-tray", "tray"])
    uninstall = [str(release / "install.sh"), "--uninstall", "--prefix", str(prefix)]
    subprocess.run(uninstall, env=env, check=True, capture_output=True, timeout=50)
    assert login.path.is_file() and not (prefix / "lib" / "tablao").exists()
