"""The Windows installer (NSIS) compiles here and, run silently under Wine, installs and uninstalls as IT expects.

The payload is a few small stand-in files named like the bundle's programs: what is tested is the installer's
logic (per-user and all-users folders, Start-menu entries, the tray's login entry with the Manager address and the
registration secret, the uninstaller that removes all of it and keeps the user's data unless /PURGE). Wine runs
in a private prefix with its desktop integration off and HOME in the test's folder, so nothing reaches the real
system.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import ROOT

pytestmark = pytest.mark.timeout(240)
PROGRAMS = ("tablao.exe", "tablao-desktop.exe", "tablao-tray.exe")
RUN_KEY = r"[Software\\Microsoft\\Windows\\CurrentVersion\\Run]"
UNINSTALL_KEY = r"[Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Tablao]"
LINK_KEY = r"[Software\\Classes\\tablao]"
LINK_COMMAND_KEY = r"[Software\\Classes\\tablao\\shell\\open\\command]"


def _need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/system-deps.sh installs nsis and wine on Debian)")


@pytest.fixture(scope="module")
def installer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need("makensis")
    spec = importlib.util.spec_from_file_location("build_installer", ROOT / "packaging/windows/build_installer.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    payload = tmp_path_factory.mktemp("payload")
    for name in PROGRAMS:
        (payload / name).write_bytes(b"MZ stand-in for " + name.encode())
    (payload / "_internal" / "PySide6").mkdir(parents=True)
    (payload / "_internal" / "PySide6" / "Qt6Core.dll").write_bytes(b"stand-in")
    out: Path = module.build(payload, tmp_path_factory.mktemp("out") / "Tablao-0.1.0-setup.exe", "0.1.0")
    return out


class Wine:
    """A private Wine prefix: runs a Windows program and waits until everything it started has ended."""

    def __init__(self, root: Path) -> None:
        _need("wine", "wineserver")
        self.prefix = root / "prefix"
        (root / "home").mkdir(exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")},
            "WINEPREFIX": str(self.prefix),
            "HOME": str(root / "home"),
            "XDG_DATA_HOME": str(root / "home" / "share"),
            "XDG_CONFIG_HOME": str(root / "home" / "config"),
            "WINEDEBUG": "-all",
            # no Mono/Gecko downloads, and no menu entries or icons written into the (real) desktop
            "WINEDLLOVERRIDES": "mscoree,mshtml=;winemenubuilder.exe=d",
        }
        self.user = self.prefix / "drive_c" / "users" / getpass.getuser()

    def run(self, *argv: str) -> int:
        code = subprocess.run(["wine", *argv], env=self.env, capture_output=True, timeout=180).returncode
        subprocess.run(["wineserver", "-w"], env=self.env, timeout=180, check=True)
        return code

    def registry(self, hive: str, key: str) -> dict[str, str]:
        """The string values of one key in user.reg or system.reg (written out once wineserver has ended)."""
        text = (self.prefix / hive).read_text(encoding="utf-8", errors="replace")
        values: dict[str, str] = {}
        inside = False
        for line in text.splitlines():
            if line.startswith("["):
                inside = line.split("]")[0] + "]" == key.split("]")[0] + "]"
            elif inside and (m := re.match(r'^(?:"(.+?)"|@)="(.*)"$', line)):
                values[m[1] or ""] = m[2].replace('\\"', '"').replace("\\\\", "\\")  # @: the key's default
        return values


def test_installer_compiles_and_is_a_windows_program(installer: Path) -> None:
    assert installer.read_bytes()[:2] == b"MZ"
    assert 50_000 < installer.stat().st_size < 5_000_000


def test_silent_per_user_install_and_uninstall(installer: Path, tmp_path: Path) -> None:
    wine = Wine(tmp_path)
    assert wine.run(str(installer), "/S", "/MANAGER=http://tablao-manager:8471", "/SECRET=s3cret-value") == 0
    app = wine.user / "AppData" / "Local" / "Programs" / "Tablao"
    for name in (*PROGRAMS, "Uninstall.exe", "tablao.ico", "_internal/PySide6/Qt6Core.dll"):
        assert (app / name).is_file(), name
    menu = wine.user / "AppData" / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Tablao"
    assert sorted(p.name for p in menu.iterdir()) == ["Tablao Tray.lnk", "Tablao.lnk", "Uninstall Tablao.lnk"]
    secret = wine.user / "AppData" / "Roaming" / "Tablao" / "worker-registration.secret"
    assert secret.read_text() == "s3cret-value"
    run = wine.registry("user.reg", RUN_KEY)["Tablao Tray"]
    assert run.startswith('"C:\\users\\') and '\\Programs\\Tablao\\tablao-tray.exe" ' in run
    assert '--manager "http://tablao-manager:8471"' in run
    assert '--registration-secret-file "C:\\users\\' in run
    uninstall = wine.registry("user.reg", UNINSTALL_KEY)
    assert uninstall["DisplayVersion"] == "0.1.0" and uninstall["QuietUninstallString"].endswith('Uninstall.exe" /S')
    assert wine.registry("system.reg", UNINSTALL_KEY) == {}, "a per-user install writes nothing machine-wide"
    # tablao:// links (shown by the Blender add-on) open the desktop app on their job
    assert "URL Protocol" in wine.registry("user.reg", LINK_KEY)
    command = wine.registry("user.reg", LINK_COMMAND_KEY)[""]
    assert command.endswith('\\Programs\\Tablao\\tablao-desktop.exe" "%1"') and command.startswith('"C:\\users\\')

    assert wine.run(str(app / "Uninstall.exe"), "/S") == 0
    assert not app.exists()
    assert not menu.exists()
    assert "Tablao Tray" not in wine.registry("user.reg", RUN_KEY)
    assert wine.registry("user.reg", UNINSTALL_KEY) == {}
    assert wine.registry("user.reg", LINK_COMMAND_KEY) == {} and wine.registry("user.reg", LINK_KEY) == {}
    assert secret.read_text() == "s3cret-value", "the user's data stays unless /PURGE"


def test_no_autostart_without_a_manager_and_purge_removes_user_data(installer: Path, tmp_path: Path) -> None:
    wine = Wine(tmp_path)
    assert wine.run(str(installer), "/S", "/SECRET=abc") == 0
    assert "Tablao Tray" not in wine.registry("user.reg", RUN_KEY)
    app = wine.user / "AppData" / "Local" / "Programs" / "Tablao"
    data = wine.user / "AppData" / "Local" / "tablao" / "tablao"
    data.mkdir(parents=True)
    (data / "settings.json").write_text("{}")
    assert wine.run(str(app / "Uninstall.exe"), "/S", "/PURGE") == 0
    assert not app.exists()
    assert not (wine.user / "AppData" / "Local" / "tablao").exists()
    assert not (wine.user / "AppData" / "Roaming" / "Tablao").exists()


def test_silent_all_users_install_with_autostart_for_everyone(installer: Path, tmp_path: Path) -> None:
    wine = Wine(tmp_path)
    assert wine.run(str(installer), "/S", "/ALLUSERS", "/AUTOSTART=1") == 0
    app = wine.prefix / "drive_c" / "Program Files" / "Tablao"
    assert (app / "tablao-tray.exe").is_file()
    menu = wine.prefix / "drive_c" / "ProgramData" / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Tablao"
    assert (menu / "Tablao.lnk").is_file()
    machine_run = wine.registry("system.reg", r"[Software\\Microsoft\\Windows\\CurrentVersion\\Run]")
    assert machine_run["Tablao Tray"] == '"C:\\Program Files\\Tablao\\tablao-tray.exe"'
    assert wine.registry("system.reg", UNINSTALL_KEY)["InstallLocation"] == "C:\\Program Files\\Tablao"
    machine_link = wine.registry("system.reg", LINK_COMMAND_KEY)
    assert machine_link[""] == '"C:\\Program Files\\Tablao\\tablao-desktop.exe" "%1"'
    assert wine.run(str(app / "Uninstall.exe"), "/S") == 0
    assert not app.exists() and not menu.exists()
    assert "Tablao Tray" not in wine.registry("system.reg", r"[Software\\Microsoft\\Windows\\CurrentVersion\\Run]")
    assert wine.registry("system.reg", LINK_COMMAND_KEY) == {}
