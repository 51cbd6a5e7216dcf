"""How long the user has been away from keyboard and mouse: one interface, a provider per platform, a fake.

Providers: X11 (the XScreenSaver extension through ctypes), Wayland (GNOME Mutter's IdleMonitor, then the
freedesktop ScreenSaver interface, over D-Bus with jeepney), Windows (GetLastInputInfo) and macOS
(CGEventSourceSecondsSinceLastEventType). `detect()` returns the first that answers, or the reasons none did,
so the menu can disable "Render only when I'm away" and say why. Qt-free; the platform calls are attributes
the tests replace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# a plain str, so type checkers do not prune the other platforms' branches
PLATFORM: str = sys.platform


class IdleUnavailable(Exception):
    """This provider cannot tell idle time here; the message says why (shown in the menu)."""


class IdleProvider(Protocol):
    name: str

    def idle_seconds(self) -> float:
        """Seconds since the last keyboard or mouse input; raises IdleUnavailable."""
        ...


class FakeIdle:
    """For tests: idle time is what the test says, or counts up from the last `touch()`."""

    name = "fake"

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.last_input = clock()

    def touch(self) -> None:
        self.last_input = self.clock()

    def idle_seconds(self) -> float:
        return max(0.0, self.clock() - self.last_input)


# -- X11 ----------------------------------------------------------------------------------------------------


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("eventMask", ctypes.c_ulong),
    ]


def _load_library(name: str) -> Any:
    path = ctypes.util.find_library(name)
    if path is None:
        raise IdleUnavailable(f"lib{name} is not installed")
    return ctypes.CDLL(path)


class X11Idle:
    """XScreenSaverQueryInfo on the display in $DISPLAY; the connection stays open (one query is ~50 µs)."""

    name = "X11"
    load_library: Callable[[str], Any] = staticmethod(_load_library)

    def __init__(self, display: str | None = None) -> None:
        display = display if display is not None else os.environ.get("DISPLAY", "")
        if not display:
            raise IdleUnavailable("no X display ($DISPLAY is not set)")
        self.xlib = self.load_library("X11")
        self.xss = self.load_library("Xss")
        self.xlib.XOpenDisplay.restype = ctypes.c_void_p
        self.xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.xlib.XDefaultRootWindow.restype = ctypes.c_ulong
        self.xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self.xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        self.xss.XScreenSaverQueryExtension.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int),
        ]  # fmt: skip
        self.xss.XScreenSaverQueryInfo.argtypes = [
            ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo),
        ]  # fmt: skip
        self.dpy = self.xlib.XOpenDisplay(display.encode())
        if not self.dpy:
            raise IdleUnavailable(f"cannot open X display {display}")
        event, error = ctypes.c_int(), ctypes.c_int()
        if not self.xss.XScreenSaverQueryExtension(self.dpy, ctypes.byref(event), ctypes.byref(error)):
            raise IdleUnavailable("the X server has no XScreenSaver extension")
        self.info = self.xss.XScreenSaverAllocInfo()
        self.root = self.xlib.XDefaultRootWindow(self.dpy)

    def idle_seconds(self) -> float:
        if not self.xss.XScreenSaverQueryInfo(self.dpy, self.root, self.info):
            raise IdleUnavailable("XScreenSaverQueryInfo failed")
        return float(self.info.contents.idle) / 1000.0


# -- Wayland (D-Bus) ------------------------------------------------------------------------------------------


def _dbus_call(bus_name: str, path: str, interface: str, method: str) -> Any:
    """One method call on the session bus; the reply body's first value."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
    except ImportError as exc:  # pragma: no cover - jeepney comes with keyring on Linux
        raise IdleUnavailable("jeepney is not installed") from exc
    try:
        with open_dbus_connection(bus="SESSION") as conn:
            msg = new_method_call(DBusAddress(path, bus_name=bus_name, interface=interface), method)
            reply = conn.send_and_get_reply(msg, timeout=2)
    except Exception as exc:  # no bus, no such service, a D-Bus error reply: all mean "not here"
        raise IdleUnavailable(f"{bus_name}: {exc}") from exc
    body = reply.body
    if not body:
        raise IdleUnavailable(f"{bus_name}.{method} answered nothing")
    return body[0]


class MutterIdle:
    """GNOME (also on Wayland): org.gnome.Mutter.IdleMonitor GetIdletime, in milliseconds."""

    name = "GNOME Mutter"
    call: Callable[[str, str, str, str], Any] = staticmethod(_dbus_call)

    def idle_seconds(self) -> float:
        ms = self.call(
            "org.gnome.Mutter.IdleMonitor", "/org/gnome/Mutter/IdleMonitor/Core",
            "org.gnome.Mutter.IdleMonitor", "GetIdletime",
        )  # fmt: skip
        return float(ms) / 1000.0


class ScreenSaverIdle:
    """KDE and others: org.freedesktop.ScreenSaver GetSessionIdleTime, in milliseconds."""

    name = "freedesktop ScreenSaver"
    call: Callable[[str, str, str, str], Any] = staticmethod(_dbus_call)

    def idle_seconds(self) -> float:
        ms = self.call(
            "org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver",
            "org.freedesktop.ScreenSaver", "GetSessionIdleTime",
        )  # fmt: skip
        return float(ms) / 1000.0


# -- Windows and macOS ------------------------------------------------------------------------------------


class _LastInputInfo(ctypes.Structure):
    _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]


class WindowsIdle:
    """GetLastInputInfo against GetTickCount (both in ms, 32-bit: the difference wraps correctly)."""

    name = "Windows"

    def __init__(self, user32: Any = None, kernel32: Any = None) -> None:
        if user32 is None or kernel32 is None:
            if PLATFORM != "win32":
                raise IdleUnavailable("not Windows")
            windll: Any = getattr(ctypes, "windll")  # noqa: B009 - exists on Windows only
            user32, kernel32 = windll.user32, windll.kernel32
        self.user32, self.kernel32 = user32, kernel32

    def idle_seconds(self) -> float:
        info = _LastInputInfo()
        info.cbSize = ctypes.sizeof(_LastInputInfo)
        if not self.user32.GetLastInputInfo(ctypes.byref(info)):
            raise IdleUnavailable("GetLastInputInfo failed")
        now = int(self.kernel32.GetTickCount()) & 0xFFFFFFFF
        return float((now - info.dwTime) & 0xFFFFFFFF) / 1000.0


_CG_ANY_INPUT = 0xFFFFFFFF  # kCGAnyInputEventType
_CG_HID_STATE = 1  # kCGEventSourceStateHIDSystemState


class MacIdle:
    """CoreGraphics' CGEventSourceSecondsSinceLastEventType for any input event."""

    name = "macOS"

    def __init__(self, quartz: Any = None) -> None:
        if quartz is None:
            if PLATFORM != "darwin":
                raise IdleUnavailable("not macOS")
            quartz = _load_library("ApplicationServices")
        quartz.CGEventSourceSecondsSinceLastEventType.restype = ctypes.c_double
        quartz.CGEventSourceSecondsSinceLastEventType.argtypes = [ctypes.c_int32, ctypes.c_uint32]
        self.quartz = quartz

    def idle_seconds(self) -> float:
        return float(self.quartz.CGEventSourceSecondsSinceLastEventType(_CG_HID_STATE, _CG_ANY_INPUT))


# -- choosing one ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    provider: IdleProvider | None
    reasons: list[str]  # why each tried provider did not work

    @property
    def why_not(self) -> str:
        return "; ".join(self.reasons) or "no idle detection for this platform"


def candidates(platform: str | None = None) -> list[Callable[[], IdleProvider]]:
    platform = platform or PLATFORM
    if platform == "win32":
        return [WindowsIdle]
    if platform == "darwin":
        return [MacIdle]
    # Wayland first when it is the session: XWayland's XScreenSaver idle time ignores native Wayland input
    wayland: list[Callable[[], IdleProvider]] = [MutterIdle, ScreenSaverIdle]
    x11: list[Callable[[], IdleProvider]] = [X11Idle]
    return wayland + x11 if os.environ.get("WAYLAND_DISPLAY") else x11 + wayland


def detect(factories: list[Callable[[], IdleProvider]] | None = None) -> Detection:
    """The first provider that constructs and answers one query."""
    reasons: list[str] = []
    for make in factories if factories is not None else candidates():
        try:
            provider = make()
            provider.idle_seconds()
        except IdleUnavailable as exc:
            reasons.append(f"{getattr(make, 'name', getattr(make, '__name__', 'provider'))}: {exc}")
            continue
        except OSError as exc:
            reasons.append(f"{getattr(make, '__name__', 'provider')}: {exc}")
            continue
        return Detection(provider, reasons)
    return Detection(None, reasons)
