"""The start-at-login writers, each on a temporary home (and Windows' with a stand-in for winreg)."""

from __future__ import annotations

import configparser
import plistlib
from pathlib import Path
from typing import Any

from app.tray.autostart import RUN_KEY, RUN_VALUE, LaunchAgent, WindowsRun, XdgAutostart


def test_xdg_autostart_file(tmp_path: Path) -> None:
    writer = XdgAutostart(tmp_path)
    assert not writer.enabled()
    writer.enable(["/opt/my apps/python", "-m", "app.cli", "tray"])
    assert writer.enabled()
    path = tmp_path / ".config" / "autostart" / "org.tablao.Tray.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(path)
    assert entry["Desktop Entry"]["Type"] == "Application"
    assert entry["Desktop Entry"]["Exec"] == '"/opt/my apps/python" -m app.cli tray'
    writer.disable()
    assert not path.exists() and not writer.enabled()
    writer.disable()  # twice is fine
    custom = XdgAutostart(tmp_path, str(tmp_path / "cfg"))
    custom.enable(["tablao", "tray"])
    assert (tmp_path / "cfg" / "autostart" / "org.tablao.Tray.desktop").is_file()


def test_macos_launch_agent(tmp_path: Path) -> None:
    writer = LaunchAgent(tmp_path)
    writer.enable(["/Applications/Tablao.app/Contents/MacOS/tablao", "tray"])
    plist = plistlib.loads((tmp_path / "Library" / "LaunchAgents" / "org.tablao.Tray.plist").read_bytes())
    assert plist["Label"] == "org.tablao.Tray"
    assert plist["ProgramArguments"] == ["/Applications/Tablao.app/Contents/MacOS/tablao", "tray"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] is False
    assert writer.enabled()
    writer.disable()
    assert not writer.enabled()


class FakeRegistry:
    """The winreg calls the writer makes, over a dict of key path -> values."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_SET_VALUE = 2
    KEY_READ = 1
    REG_SZ = 1

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, tuple[Any, int]]] = {}
        self.open = 0

    def CreateKeyEx(self, key: str, sub_key: str, reserved: int, access: int) -> str:
        path = f"{key}\\{sub_key}"
        self.keys.setdefault(path, {})
        self.open += 1
        return path

    def OpenKey(self, key: str, sub_key: str, reserved: int, access: int) -> str:
        path = f"{key}\\{sub_key}"
        if path not in self.keys:
            raise FileNotFoundError(path)
        self.open += 1
        return path

    def SetValueEx(self, key: str, name: str, reserved: int, kind: int, value: str) -> None:
        self.keys[key][name] = (value, kind)

    def QueryValueEx(self, key: str, name: str) -> tuple[Any, int]:
        try:
            return self.keys[key][name]
        except KeyError:
            raise FileNotFoundError(name) from None

    def DeleteValue(self, key: str, name: str) -> None:
        if name not in self.keys[key]:
            raise FileNotFoundError(name)
        del self.keys[key][name]

    def CloseKey(self, key: str) -> None:
        self.open -= 1


def test_windows_run_key() -> None:
    reg = FakeRegistry()
    writer = WindowsRun(reg)
    assert not writer.enabled()
    writer.disable()  # no key yet: nothing to do
    writer.enable([r"C:\Program Files\Tablao\tablao.exe", "tray"])
    assert reg.keys[f"HKCU\\{RUN_KEY}"][RUN_VALUE] == (r'"C:\Program Files\Tablao\tablao.exe" tray', reg.REG_SZ)
    assert writer.enabled()
    writer.disable()
    assert not writer.enabled()
    assert reg.keys[f"HKCU\\{RUN_KEY}"] == {}
    assert reg.open == 0  # every key opened was closed
