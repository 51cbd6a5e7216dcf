"""Damaged or hand-edited tray settings fall back to their defaults with a log line naming the setting, so the
tray still starts; the settings dialog offers exactly the values the settings load back."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from app.qt import QSettings
from app.settings import APPLICATION, ORGANISATION
from app.tray.dialogs import SettingsDialog
from app.tray.hours import RenderingHours
from app.tray.limits import AWAY_MINUTES_MAX, AWAY_MINUTES_MIN_SHOWN, RENDER_THREADS_MAX
from app.tray.policy import AgentState, Facts, user_away
from app.tray.settings import TraySettings, default_name


@pytest.fixture(autouse=True)
def no_tray_settings() -> None:
    q = QSettings(ORGANISATION, APPLICATION)
    q.remove("tray")  # Qt keeps one settings file per process: start each test from none
    q.sync()


EVENINGS = {"days": {"mon": [["19:00", "08:00"]]}}


def stored(key: str, value: Any) -> None:
    """What a hand edit of [tray] in Tablao.conf leaves (every value of an ini file is text, or a list of it)."""
    q = QSettings(ORGANISATION, APPLICATION)
    q.beginGroup("tray")
    q.setValue(key, value)
    q.endGroup()
    q.sync()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("render_threads", "1e999"),  # OverflowError at start, before
        ("render_threads", "nan"),  # ValueError at start, before
        ("render_threads", "-inf"),
        ("render_threads", "-3"),
        ("render_threads", "2.5"),
        ("render_threads", str(RENDER_THREADS_MAX + 1)),
        ("render_threads", "9" * 5000),
        ("render_threads", ["1", "2"]),
        ("away_minutes", "-5"),  # rendered while the artist was at the desk, before
        ("away_minutes", "nan"),  # never rendered, before
        ("away_minutes", "inf"),
        ("away_minutes", "0"),
        ("away_minutes", str(AWAY_MINUTES_MAX + 1)),
        ("away_minutes", "1e999"),
        ("manager_url", "ftp://manager.lan"),
        ("manager_url", "http://" + "m" * 100_000),
        ("manager_url", ["http://manager.lan", "8081"]),
        ("manager_url", "http://worker:secret@manager.lan:8471"),  # the worker would refuse it at every start
        ("manager_url", "http://manager.lan:8471/?x=1"),
        ("worker_name", "anna ws; rm -rf"),
        ("worker_name", "a" * 65),
        ("tags", "gpu," * 100_000),
        ("low_priority", "maybe"),
        ("away_only", "2"),
        ("notify_failed", ["true", "false"]),
        ("hours", "[" * 5000),  # RecursionError in the JSON parser, before
        ("hours", '{"days": {"mon": [["19:00", "08:00"]]}}' + " " * 100_000),
        ("hours", '{"days": {"moonday": []}}'),
    ],
)
def test_a_damaged_setting_falls_back_to_its_default_and_says_so(
    key: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stored(key, value)
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        loaded = TraySettings.load()
    assert getattr(loaded, key) == getattr(TraySettings(worker_name=default_name()), key)
    assert [r.getMessage().split("=")[0] for r in caplog.records] == [f"tray setting {key}"]
    assert len(caplog.records[0].getMessage()) < 300  # a huge value is not copied into the log


def test_damaged_away_time_cannot_make_the_artist_look_away(caplog: pytest.LogCaptureFixture) -> None:
    stored("away_only", "true")
    stored("away_minutes", "-5")
    s = TraySettings.load()
    assert s.away_only and s.away_minutes == 10.0
    assert not user_away(Facts(AgentState.IDLE, away_only=True, idle_seconds=3.0, away_after=s.away_minutes * 60))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("render_threads", "8", 8),
        ("render_threads", "0", 0),
        ("render_threads", "8.0", 8),
        ("away_minutes", "0.5", 0.5),
        ("away_minutes", str(1 / 60), 1 / 60),  # `tablao tray --away-after 1`, saved
        ("away_minutes", str(AWAY_MINUTES_MAX), AWAY_MINUTES_MAX),
        ("low_priority", "false", False),
        ("worker_name", "anna-ws", "anna-ws"),
        ("tags", "gpu, lic:nuke, cuda-12.4", "gpu, lic:nuke, cuda-12.4"),
        ("hours", json.dumps(EVENINGS), RenderingHours.from_json(EVENINGS)),
    ],
)
def test_good_values_load_without_a_word(key: str, value: str, expected: Any, caplog: pytest.LogCaptureFixture) -> None:
    stored(key, value)
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        got = getattr(TraySettings.load(), key)
    assert got == expected and not caplog.records
    if isinstance(expected, float):
        assert math.isclose(got, expected)


@pytest.mark.parametrize("ends", ["low", "high"])
def test_what_the_dialog_offers_loads_back(qtbot, ends: str, caplog: pytest.LogCaptureFixture) -> None:
    s = TraySettings(manager_url="http://mgr.lan:8081", worker_name="anna-ws")
    dialog = SettingsDialog(s, secret_known=True)
    qtbot.addWidget(dialog)
    assert (dialog.away.minimum(), dialog.away.maximum()) == (AWAY_MINUTES_MIN_SHOWN, AWAY_MINUTES_MAX)
    assert (dialog.threads.minimum(), dialog.threads.maximum()) == (0, RENDER_THREADS_MAX)
    dialog.away.setValue(-1e9 if ends == "low" else 1e9)  # the spin boxes clamp to their ranges
    dialog.threads.setValue(-1 if ends == "low" else 10**6)
    dialog._accept()
    s.save()
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        assert TraySettings.load() == s
    assert not caplog.records


@pytest.mark.parametrize("tags", ["gpu, rtx 4090", "gpu;linux", "-gpu", "g" * 65])
def test_the_dialog_refuses_tags_the_worker_would_refuse(qtbot, tags: str) -> None:
    s = TraySettings(manager_url="http://mgr.lan:8081", worker_name="anna-ws", tags="gpu")
    dialog = SettingsDialog(s, secret_known=True)
    qtbot.addWidget(dialog)
    dialog.tags.setText(tags)
    dialog._accept()
    assert s.tags == "gpu" and dialog.result() != dialog.DialogCode.Accepted
    assert dialog.error.text().startswith("Tags") and "is not a tag" in dialog.error.text()


@pytest.mark.parametrize(
    ("stored_tags", "kept", "refused"),
    [
        ("gpu, rtx 4090", "gpu", "'rtx 4090'"),  # saved before the tag rule: the worker would refuse it at start
        ("gpu, a\nb, linux", "gpu, linux", "'a\\nb'"),
        (",".join(f"t{i}" for i in range(52)), ", ".join(f"t{i}" for i in range(50)), "'t50', 't51'"),
    ],
)
def test_a_tag_the_worker_would_refuse_is_dropped_and_the_good_ones_kept(
    stored_tags: str, kept: str, refused: str, caplog: pytest.LogCaptureFixture
) -> None:
    stored("tags", stored_tags)
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        assert TraySettings.load().tags == kept
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("tray setting tags=") and refused in line and f"using {kept!r}" in line, line


def test_tags_written_by_hand_as_a_list_load(caplog: pytest.LogCaptureFixture) -> None:
    """From an audit: `tags=gpu, linux` written in Tablao.conf reads back as a list, and was dropped."""
    stored("tags", ["gpu", " linux "])
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        assert TraySettings.load().tags == "gpu, linux"
    assert not caplog.records


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", True), ("NO", False), ("True", True), ("0", False), (" 1 ", True)]
)
def test_flags_take_the_yes_and_no_a_person_writes(value: str, expected: bool, caplog) -> None:
    stored("away_only", value)
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        assert TraySettings.load().away_only is expected
    assert not caplog.records


def test_one_bad_rendering_window_keeps_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """From an audit: one mistyped window cost the artist all their rendering hours (render any time)."""
    typed = {"days": {"mon": [["19:00", "08:00"], ["25:00", "26:00"]], "sat": [["00:00", "24:00"]]}}
    stored("hours", json.dumps(typed))
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        hours = TraySettings.load().hours
    assert hours == RenderingHours.from_json({"days": {"mon": [["19:00", "08:00"]], "sat": [["00:00", "24:00"]]}})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("tray setting hours: mon: '25:00'") and "other rendering hours kept" in line, line


@pytest.mark.parametrize(("always", "expected", "warned"), [("false", False, 0), ("Yes", True, 0), ("maybe", False, 1)])
def test_always_written_as_text(always: str, expected: bool, warned: int, caplog: pytest.LogCaptureFixture) -> None:
    """From an audit: "always": "false" was read as true, and the artist's windows ignored."""
    stored("hours", json.dumps({"always": always, "days": {"mon": [["19:00", "08:00"]]}}))
    with caplog.at_level(logging.WARNING, logger="app.tray.settings"):
        hours = TraySettings.load().hours
    assert hours.always is expected and hours.days[0]
    assert len(caplog.records) == warned
