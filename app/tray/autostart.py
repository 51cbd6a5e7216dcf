"""Start at login: an XDG autostart .desktop file (Linux), a LaunchAgent plist (macOS), HKCU Run (Windows).

Each writer takes the home directory (or a registry stand-in) so tests run on any platform. Qt-free.
"""

from __future__ import annotations

import os
import plistlib
import sys
from pathlib import Path
from typing import Any, Protocol

APP_ID = "org.tablao.Tray"
RUN_VALUE = "Tablao Tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


def tray_command() -> list[str]:
    """How to start the tray from a login: the frozen bundle's program, or this Python with `-m app.cli tray`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "tray"]
    return [sys.executable, "-m", "app.cli", "tray"]


class Autostart(Protocol):
    def enabled(self) -> bool: ...
    def enable(self, command: list[str]) -> None: ...
    def disable(self) -> None: ...


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class XdgAutostart:
    """$XDG_CONFIG_HOME/autostart/org.tablao.Tray.desktop (the freedesktop autostart specification)."""

    def __init__(self, home: Path, config_home: str | None = None) -> None:
        base = Path(config_home) if config_home else home / ".config"
        self.path = base / "autostart" / f"{APP_ID}.desktop"

    def enabled(self) -> bool:
        return self.path.is_file()

    def enable(self, command: list[str]) -> None:
        # the Exec key's quoting: double quotes around arguments, with \", \\, \` and \$ escaped
        def quote(arg: str) -> str:
            if not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
                return arg
            return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'

        text = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=Tablao Tray\n"
            "Comment=Render on this workstation after hours\n"
            f"Exec={' '.join(quote(a) for a in command)}\n"
            "Icon=tablao\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
        )
        _write_private(self.path, text.encode())

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


class LaunchAgent:
    """~/Library/LaunchAgents/org.tablao.Tray.plist, run at load (login), not kept alive (the tray may quit)."""

    def __init__(self, home: Path) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{APP_ID}.plist"

    def enabled(self) -> bool:
        return self.path.is_file()

    def enable(self, command: list[str]) -> None:
        plist = {
            "Label": APP_ID,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": False,
            "ProcessType": "Interactive",
        }
        _write_private(self.path, plistlib.dumps(plist))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


class RegistryLike(Protocol):
    """The part of `winreg` the Run-key writer uses (tests pass a stand-in)."""

    HKEY_CURRENT_USER: Any
    KEY_SET_VALUE: int
    KEY_READ: int
    REG_SZ: int

    def CreateKeyEx(self, key: Any, sub_key: str, reserved: int, access: int) -> Any: ...
    def OpenKey(self, key: Any, sub_key: str, reserved: int, access: int) -> Any: ...
    def SetValueEx(self, key: Any, name: str, reserved: int, kind: int, value: str) -> None: ...
    def QueryValueEx(self, key: Any, name: str) -> tuple[Any, int]: ...
    def DeleteValue(self, key: Any, name: str) -> None: ...
    def CloseKey(self, key: Any) -> None: ...


class WindowsRun:
    """HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run, value "Tablao Tray" = the quoted command line."""

    def __init__(self, registry: RegistryLike | None = None) -> None:
        if registry is None:
            import winreg  # type: ignore[import-not-found,unused-ignore]

            registry = winreg  # type: ignore[assignment,unused-ignore]
        assert registry is not None
        self.reg = registry

    def enabled(self) -> bool:
        try:
            key = self.reg.OpenKey(self.reg.HKEY_CURRENT_USER, RUN_KEY, 0, self.reg.KEY_READ)
        except OSError:
            return False
        try:
            self.reg.QueryValueEx(key, RUN_VALUE)
        except OSError:
            return False
        finally:
            self.reg.CloseKey(key)
        return True

    def enable(self, command: list[str]) -> None:
        line = " ".join(f'"{a}"' if (" " in a or not a) else a for a in command)
        key = self.reg.CreateKeyEx(self.reg.HKEY_CURRENT_USER, RUN_KEY, 0, self.reg.KEY_SET_VALUE)
        try:
            self.reg.SetValueEx(key, RUN_VALUE, 0, self.reg.REG_SZ, line)
        finally:
            self.reg.CloseKey(key)

    def disable(self) -> None:
        try:
            key = self.reg.OpenKey(self.reg.HKEY_CURRENT_USER, RUN_KEY, 0, self.reg.KEY_SET_VALUE)
        except OSError:
            return
        try:
            self.reg.DeleteValue(key, RUN_VALUE)
        except OSError:
            pass
        finally:
            self.reg.CloseKey(key)


def for_this_platform(home: Path | None = None) -> Autostart:
    home = home or Path.home()
    if sys.platform == "win32":
        return WindowsRun()
    if sys.platform == "darwin":
        return LaunchAgent(home)
    return XdgAutostart(home, os.environ.get("XDG_CONFIG_HOME"))
