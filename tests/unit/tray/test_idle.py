"""Idle providers with their platform calls replaced, the fake, and the choice of provider."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import time
from typing import Any

import pytest

from app.tray import idle
from app.tray.idle import (
    Detection,
    FakeIdle,
    IdleUnavailable,
    MacIdle,
    MutterIdle,
    ScreenSaverIdle,
    WindowsIdle,
    X11Idle,
    detect,
)


def test_fake_counts_from_the_last_touch() -> None:
    now = [100.0]
    fake = FakeIdle(lambda: now[0])
    now[0] = 130.0
    assert fake.idle_seconds() == 30.0
    fake.touch()
    assert fake.idle_seconds() == 0.0


class _Fn:
    def __init__(self, impl: Any) -> None:
        self.impl = impl
        self.restype: Any = None
        self.argtypes: Any = None

    def __call__(self, *args: Any) -> Any:
        return self.impl(*args)


class _Lib:
    def __init__(self, **fns: Any) -> None:
        for name, impl in fns.items():
            setattr(self, name, _Fn(impl))


def test_windows_idle_uses_last_input_and_wraps_the_tick_counter() -> None:
    def last_input(ref: Any) -> int:
        ctypes.cast(ref, ctypes.POINTER(idle._LastInputInfo)).contents.dwTime = 0xFFFFF000  # before the wrap
        return 1

    provider = WindowsIdle(user32=_Lib(GetLastInputInfo=last_input), kernel32=_Lib(GetTickCount=lambda: 0x1000))
    assert provider.idle_seconds() == pytest.approx(0x2000 / 1000)
    failing = WindowsIdle(user32=_Lib(GetLastInputInfo=lambda ref: 0), kernel32=_Lib(GetTickCount=lambda: 1))
    with pytest.raises(IdleUnavailable, match="GetLastInputInfo"):
        failing.idle_seconds()


def test_mac_idle_asks_for_any_input_event() -> None:
    calls: list[tuple[int, int]] = []

    def since(state: int, kind: int) -> float:
        calls.append((state, kind))
        return 42.5

    provider = MacIdle(quartz=_Lib(CGEventSourceSecondsSinceLastEventType=since))
    assert provider.idle_seconds() == 42.5
    assert calls == [(1, 0xFFFFFFFF)]


def test_dbus_providers_read_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, ...]] = []

    def call(*args: str) -> int:
        asked.append(args)
        return 12_500

    monkeypatch.setattr(MutterIdle, "call", staticmethod(call))
    monkeypatch.setattr(ScreenSaverIdle, "call", staticmethod(call))
    assert MutterIdle().idle_seconds() == 12.5
    assert ScreenSaverIdle().idle_seconds() == 12.5
    assert asked[0][3] == "GetIdletime" and asked[1][3] == "GetSessionIdleTime"


def test_dbus_without_a_session_bus_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    with pytest.raises(IdleUnavailable, match=r"org\.gnome\.Mutter"):
        MutterIdle().idle_seconds()


def test_x11_without_a_display_or_the_library_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(IdleUnavailable, match="DISPLAY"):
        X11Idle()

    def no_library(name: str) -> Any:
        raise IdleUnavailable(f"lib{name} is not installed")

    monkeypatch.setattr(X11Idle, "load_library", staticmethod(no_library))
    with pytest.raises(IdleUnavailable, match="libX11"):
        X11Idle(":99")


def test_detect_takes_the_first_that_answers_and_collects_the_reasons() -> None:
    def broken() -> Any:
        raise IdleUnavailable("no such thing here")

    fake = FakeIdle(time.monotonic)
    found = detect([broken, lambda: fake])
    assert found.provider is fake
    assert found.reasons == ["broken: no such thing here"]
    none = detect([broken])
    assert none == Detection(None, ["broken: no such thing here"])
    assert "no such thing" in none.why_not
    assert [f.__name__ for f in idle.candidates("win32")] == ["WindowsIdle"]
    assert [f.__name__ for f in idle.candidates("darwin")] == ["MacIdle"]


@pytest.mark.timeout(60)
def test_x11_idle_on_a_real_xvfb(tmp_path) -> None:
    if shutil.which("Xvfb") is None or shutil.which("xdotool") is None:
        pytest.skip("Xvfb and xdotool are not installed (scripts/system-deps.sh installs them)")
    from tests.support.xserver import XServer

    with XServer(tmp_path) as x:
        provider = X11Idle(x.display)
        time.sleep(1.2)
        assert provider.idle_seconds() >= 1.0
        subprocess.run(["xdotool", "mousemove", "10", "10"], env=x.env, check=True, timeout=10)
        subprocess.run(["xdotool", "mousemove", "20", "20"], env=x.env, check=True, timeout=10)
        assert provider.idle_seconds() < 1.0
