"""A notification's body shows farm text as written: escaped only where the notification server reads markup."""

from __future__ import annotations

import pytest

from app import notification_text
from app.notification_text import body_takes_markup, notification_body, one_line

NAME = '<img src="file:///etc/passwd"> & <a href="https://x.example">shot</a>'


def test_escaped_for_a_server_that_reads_markup() -> None:
    body = notification_body(f"While you were away: {NAME} frame 3", markup=True)
    assert body == (
        'While you were away: &lt;img src="file:///etc/passwd"&gt; &amp; &lt;a href="https://x.example"&gt;shot'
        "&lt;/a&gt; frame 3"
    )


def test_as_written_where_the_body_is_plain_text() -> None:
    assert notification_body(NAME, markup=False) == NAME  # Windows, macOS, Qt's balloon: `&lt;` would show


def test_controls_become_spaces_and_bidi_controls_go() -> None:
    assert one_line("shot\n010\x1b[2J\u2028end") == "shot 010 [2J end"
    assert one_line("\u202eevil\u202c.exe\u2066x\u2069") == "evil.exex"
    assert one_line("Été 🎬 \u200f ok") == "Été 🎬 \u200f ok"  # letters, emoji and bidi marks stay
    assert notification_body("a\tb <c>", markup=True) == "a b &lt;c&gt;"


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_windows_and_macos_show_plain_text(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    asked: list[str] = []

    def session_bus_has(name: str) -> bool:
        asked.append(name)
        return True

    monkeypatch.setattr(notification_text, "session_bus_has", session_bus_has)
    assert not body_takes_markup(platform) and asked == []


@pytest.mark.parametrize("watcher", [True, False])
def test_linux_reads_markup_where_qt_sends_over_dbus(monkeypatch: pytest.MonkeyPatch, watcher: bool) -> None:
    """With a StatusNotifierItem watcher Qt's tray notifies over D-Bus (markup); without one, its balloon (plain)."""
    asked: list[str] = []

    def session_bus_has(name: str) -> bool:
        asked.append(name)
        return watcher

    monkeypatch.setattr(notification_text, "session_bus_has", session_bus_has)
    assert body_takes_markup("linux") is watcher
    assert asked == ["org.kde.StatusNotifierWatcher"]
