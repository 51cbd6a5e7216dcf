"""The tray offscreen: menu actions change the state and what the worker is told; dialogs round-trip;
settings persist and the registration secret goes to the keyring (the in-memory backend)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.tray.autostart import XdgAutostart
from app.tray.dialogs import HoursDialog, SettingsDialog
from app.tray.hours import RenderingHours
from app.tray.idle import Detection, FakeIdle
from app.tray.policy import TrayState
from app.tray.settings import TraySettings, load_registration_secret, save_registration_secret


class FakeChild:
    """Stands in for the worker process: records the control lines it is sent."""

    def __init__(self) -> None:
        self.running = True
        self.sent: list[dict[str, Any]] = []
        self.stopped = False

    def send(self, command: dict[str, Any]) -> None:
        self.sent.append(command)

    def stop(self, timeout_ms: int = 0) -> None:
        self.stopped = True
        self.running = False

    def wait_stopped(self, timeout_ms: int = 0) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def tray(qapp, tmp_path: Path):
    from app.tray.app import TrayApp

    clock = Clock()
    idle = FakeIdle(clock)
    now = [datetime(2026, 12, 7, 12, 0, tzinfo=UTC)]  # a Monday noon
    settings = TraySettings(manager_url="http://127.0.0.1:9", away_minutes=1.0)
    app = TrayApp(
        settings,
        data_dir=tmp_path,
        idle=Detection(idle, []),
        autostart=XdgAutostart(tmp_path / "home"),
        save_settings=False,
        now=lambda: now[0],
    )
    app.child = FakeChild()  # type: ignore[assignment]
    app.info = {"status": "awake", "reachable": True, "task": None, "paused": False}
    app.clock, app.fake_idle, app.clock_now = clock, idle, now  # type: ignore[attr-defined]
    yield app
    app.timer.stop()


def rendering(app: Any) -> None:
    app.info = {"status": "awake", "reachable": True, "paused": False,
                "task": {"id": 7, "name": "frame 3", "job_id": 1, "job_name": "shot", "steps_done": 1,
                         "steps_total": 2}}  # fmt: skip


def test_menu_actions_change_the_state(tray) -> None:
    tray.tick()
    assert tray.decision.state == TrayState.WAITING
    assert tray.icon.toolTip() == "Tablao: Waiting for work"
    rendering(tray)
    tray.tick()
    assert tray.icon.toolTip() == "Tablao: Rendering shot: frame 3 (1/2)"
    assert tray.a_finish.isEnabled()

    tray.a_pause.trigger()  # the task goes back now
    assert tray.child.sent[-2:] == [
        {"cmd": "pause", "now": True, "reason": "paused-by-user"},
        {"cmd": "pause", "now": False, "reason": "paused-by-user"},
    ]
    tray.info["task"] = None
    tray.tick()
    assert tray.decision.state == TrayState.PAUSED
    assert tray.a_resume.isVisible() and not tray.a_pause.isVisible()
    tray.a_resume.trigger()
    assert tray.child.sent[-1] == {"cmd": "resume"}
    assert tray.decision.state == TrayState.WAITING

    tray.a_hour.trigger()
    assert tray.decision.state == TrayState.PAUSED
    assert "until Mon 13:00" in tray.icon.toolTip()
    tray.clock_now[0] += timedelta(hours=1, seconds=1)
    tray.tick()
    assert tray.decision.state == TrayState.WAITING and tray.child.sent[-1] == {"cmd": "resume"}

    rendering(tray)
    tray.tick()
    tray.a_finish.trigger()  # lazy: the task keeps rendering
    assert tray.child.sent[-1] == {"cmd": "pause", "now": False, "reason": "paused-by-user"}
    assert tray.decision.state == TrayState.RENDERING
    tray.a_resume.trigger()

    tray.a_stop.trigger()
    assert tray.child.stopped
    assert tray.decision.state == TrayState.STOPPED and "by you" in tray.icon.toolTip()
    assert tray.a_start.isVisible()


def test_away_only_stops_a_render_when_the_user_returns_and_notifies(tray) -> None:
    tray.a_away.setChecked(True)  # away after 1 minute
    assert tray.child.sent[-1] == {"cmd": "pause", "now": False, "reason": "user-active"}
    assert tray.decision.state == TrayState.USER_ACTIVE
    assert "resumes after 1 minutes away" in tray.icon.toolTip()
    tray.clock.t += 61
    tray.tick()
    assert tray.child.sent[-1] == {"cmd": "resume"}
    rendering(tray)
    tray._on_event({**tray.info, "event": "task-started"})
    assert tray.notices[-1][0] == "Rendering started"
    tray.fake_idle.touch()  # the user is back
    tray.tick()
    assert tray.child.sent[-1] == {"cmd": "pause", "now": True, "reason": "user-active"}
    assert tray.notices[-1][0] == "Rendering stopped"
    tray._on_event({**tray.info, "event": "task-finished", "outcome": "failed", "task": None})
    assert tray.notices[-1][0] == "A task failed"


@pytest.mark.parametrize("markup", [True, False])
def test_a_notification_shows_a_job_name_as_written(tray, markup: bool) -> None:
    """A freedesktop server reads the body as markup: a job named `<img src=...>` is escaped there, never loaded;
    where the body is plain text (Windows, macOS, Qt's balloon) it stays as written. Controls never pass."""
    tray.markup = markup
    tray.a_away.setChecked(True)
    tray.clock.t += 61
    tray.tick()
    rendering(tray)
    tray.info["task"]["job_name"] = '<img src="file:///etc/passwd">\u202e & co'
    tray._on_event({**tray.info, "event": "task-started"})
    title, body = tray.notices[-1]
    assert title == "Rendering started"
    if markup:
        assert body == 'While you were away: &lt;img src="file:///etc/passwd"&gt; &amp; co frame 3'
    else:
        assert body == 'While you were away: <img src="file:///etc/passwd"> & co frame 3'


def test_outside_hours_and_asleep_show_their_state(tray) -> None:
    tray.settings.hours = RenderingHours.after_hours()
    tray.tick()
    assert tray.decision.state == TrayState.OUTSIDE_HOURS
    assert "next start Mon 19:00" in tray.icon.toolTip()
    assert tray.child.sent[-1] == {"cmd": "pause", "now": False, "reason": "outside-hours"}
    tray.settings.hours = RenderingHours()
    tray.info["status"] = "asleep"
    tray.tick()
    assert tray.decision.state == TrayState.ASLEEP
    tray.info = {**tray.info, "status": "awake", "reachable": False}
    tray.tick()
    assert tray.decision.state == TrayState.UNREACHABLE
    assert "Cannot reach the Manager at http://127.0.0.1:9" in tray.icon.toolTip()


def test_no_idle_detection_disables_the_option_with_the_reason(qapp, tmp_path: Path) -> None:
    from app.tray.app import TrayApp

    app = TrayApp(TraySettings(), data_dir=tmp_path, idle=Detection(None, ["X11: no X display"]),
                  autostart=XdgAutostart(tmp_path), save_settings=False)  # fmt: skip
    assert not app.a_away.isEnabled()
    assert "unavailable: X11: no X display" in app.a_away.text()
    app.tick()
    assert app.decision is not None and app.decision.state == TrayState.STOPPED
    assert "set the Manager address" in app.icon.toolTip()


def test_start_at_login_writes_and_removes_the_autostart_file(tray, tmp_path: Path) -> None:
    tray.a_login.setChecked(True)
    path = tmp_path / "home" / ".config" / "autostart" / "org.tablao.Tray.desktop"
    assert path.is_file() and "app.cli tray" in path.read_text()
    tray.a_login.setChecked(False)
    assert not path.exists()


def test_the_hours_dialog_round_trips(qtbot) -> None:
    hours = RenderingHours.after_hours()
    dialog = HoursDialog(hours)
    qtbot.addWidget(dialog)
    assert dialog.days[0].text() == "19:00-08:00"
    assert dialog.hours() == hours
    dialog.days[2].setText("12:00-13:00, 22:00-02:00")
    got = dialog.hours()
    assert [w.text() for w in got.days[2]] == ["12:00–13:00", "22:00–02:00"]
    dialog.days[3].setText("25:00-08:00")
    dialog._accept()
    assert "Thursday" in dialog.error.text() and dialog.result() == 0
    dialog.always.setChecked(True)
    assert not dialog.days[0].isEnabled()


def test_settings_persist_and_the_secret_goes_to_the_keyring(qtbot, memory_keyring) -> None:
    s = TraySettings()
    dialog = SettingsDialog(s, secret_known=False)
    qtbot.addWidget(dialog)
    dialog.manager.setText("ftp://nope")
    dialog._accept()
    assert "http://" in dialog.error.text()
    dialog.manager.setText("http://mgr.lan:8081/")
    dialog.name.setText("anna-ws")
    dialog.threads.setValue(4)
    dialog.secret.setText("  farm-secret ")
    dialog._accept()
    assert (s.manager_url, s.worker_name, s.render_threads) == ("http://mgr.lan:8081", "anna-ws", 4)
    assert save_registration_secret(s.manager_url, dialog.new_secret())
    assert load_registration_secret("http://mgr.lan:8081") == "farm-secret"
    assert ("tablao-tray", "http://mgr.lan:8081") in memory_keyring.secrets
    s.hours = RenderingHours.after_hours()
    s.away_only = True
    s.save()
    again = TraySettings.load()
    assert again == s


def test_the_workers_tab_says_why_a_worker_is_unavailable() -> None:
    from app.models.columns import worker_columns
    from services.protocol.farm import Worker
    from services.protocol.states import Unavailability, WorkerStatus

    class Store:
        managers: dict[int, Any] = {}

    w = Worker(id="w1", name="anna-ws", manager_id=1, platform="linux", task_types=["exec"], tags=[], software={},
               status=WorkerStatus.AWAKE, status_requested=None, current_task_id=None, last_seen=None,
               utilisation=None, unavailable=Unavailability.USER_ACTIVE)  # fmt: skip
    column = next(c for c in worker_columns(Store()) if c.title == "Unavailable")  # type: ignore[arg-type]
    assert column.display(w) == "user at desk"
    assert column.display(w.model_copy(update={"unavailable": None})) == ""


def test_settings_given_for_one_run_are_not_saved_by_a_later_change(qapp, tmp_path: Path) -> None:
    """From an admin/artist audit: `--hours` or `--away-after`, given once (a test, a demo), were saved for good by
    the next menu change, and the artist's own rendering hours were lost. What the artist changes in that run is
    saved; the run's own values are not."""
    from app.tray.app import TrayApp

    stored = TraySettings(manager_url="http://farm:8471", worker_name="anna-ws", hours=RenderingHours.after_hours())
    stored.save()
    this_run = dataclasses.replace(stored, hours=RenderingHours.from_json({"always": True}), away_only=True,
                                   away_minutes=0.1)  # fmt: skip
    app = TrayApp(
        this_run, data_dir=tmp_path, idle=Detection(None, ["none here"]),
        autostart=XdgAutostart(tmp_path / "home"),
        run_only={"hours": stored.hours, "away_only": stored.away_only, "away_minutes": stored.away_minutes},
    )  # fmt: skip
    app.child = FakeChild()  # type: ignore[assignment]
    try:
        app.set_start_at_login(False)  # any change saves the settings
        assert TraySettings.load() == stored
        app.set_away_only(True)  # the artist's own choice is kept, the run's hours still not
        assert TraySettings.load() == dataclasses.replace(stored, away_only=True, away_minutes=0.1)
    finally:
        app.timer.stop()


def test_away_only_chosen_where_idle_time_cannot_be_read_renders_nothing_and_can_be_turned_off(
    qapp, tmp_path: Path
) -> None:
    """From an admin/artist audit: chosen on another desktop (or before), it was silently ignored where the idle
    time cannot be read, and the tray rendered while the artist was at the desk."""
    from app.tray.app import TrayApp

    settings = TraySettings(manager_url="http://127.0.0.1:9", away_only=True)
    app = TrayApp(settings, data_dir=tmp_path, idle=Detection(None, ["X11: no X display"]),
                  autostart=XdgAutostart(tmp_path), save_settings=False)  # fmt: skip
    app.child = FakeChild()  # type: ignore[assignment]
    app.info = {"status": "awake", "reachable": True, "task": None, "paused": False}
    try:
        app.tick()
        assert app.decision is not None and not app.decision.may_claim
        assert app.a_away.isEnabled() and app.a_away.isChecked()
        app.set_away_only(False)
        app.tick()
        assert app.decision.may_claim
    finally:
        app.timer.stop()


@pytest.mark.parametrize(("wanted", "code"), [(True, 1), (True, 2), (True, 78), (False, 0)])
def test_a_worker_that_stopped_is_said_once_in_the_tooltip(qapp, tmp_path: Path, wanted: bool, code: int) -> None:
    """From an admin/artist audit: the tooltip read "Stopped: stopped: it needs your attention"."""
    from app.qt import QProcess
    from app.tray.child import WorkerChild
    from app.tray.texts import state_text

    child = WorkerChild(tmp_path / "worker.log")
    child.proc, child.wanted = QProcess(), wanted
    child._finished(code, QProcess.ExitStatus.NormalExit)
    assert child.last_exit is not None
    said = state_text(TrayState.STOPPED, stopped_why=child.last_exit[1])
    assert said.lower().count("stopped") == 1, said


@pytest.mark.parametrize(
    ("given", "read_as"),
    [
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("HTTP://Manager.Studio.LAN:8081", "http://manager.studio.lan:8081"),
        ("http://mgr.lan:80/", "http://mgr.lan"),
        ("https://mgr.lan:443", "https://MGR.lan/"),
    ],
)
def test_the_secret_is_found_however_the_manager_url_is_written(given: str, read_as: str) -> None:
    """From an audit: the secret was keyed by the exact URL, so a trailing slash or a capital lost it."""
    assert save_registration_secret(given, "farm-secret")
    assert load_registration_secret(read_as) == "farm-secret"
    assert load_registration_secret("http://other.lan:8081") is None


def test_a_secret_kept_by_an_older_version_is_still_found(memory_keyring) -> None:
    memory_keyring.set_password("tablao-tray", "http://Mgr.lan:8081/", "old-secret")  # the exact URL, as before
    assert load_registration_secret("http://Mgr.lan:8081/") == "old-secret"
    assert load_registration_secret("http://Mgr.lan:8081") == "old-secret"


def test_a_secret_without_a_manager_is_not_kept(memory_keyring) -> None:
    assert not save_registration_secret("", "farm-secret")
    assert memory_keyring.secrets == {}
