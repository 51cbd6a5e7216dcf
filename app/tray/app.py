"""The tray icon, its menu and the policy loop: the artist's side of rendering on a workstation.

Four times a second the tray gathers the facts (its worker's last report, the artist's pause, rendering
hours, idle time), lets the pure policy decide, sends the worker what changed over the control channel and
redraws the icon. A user's return therefore stops a render within about 0.25 s plus the worker's grace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.notification_text import body_takes_markup, notification_body
from app.qt import (
    QAction,
    QDesktopServices,
    QIcon,
    QMenu,
    QMessageBox,
    QObject,
    QProcess,
    QSystemTrayIcon,
    QTimer,
    QUrl,
)
from app.tray import autostart as autostart_mod
from app.tray.child import WorkerChild
from app.tray.datadir import LOG_NAME, private_log
from app.tray.dialogs import HoursDialog, SettingsDialog
from app.tray.idle import Detection, IdleUnavailable
from app.tray.policy import AgentState, Decision, Facts, Policy, TrayState, user_away
from app.tray.settings import TraySettings, load_registration_secret, save_registration_secret
from app.tray.texts import icon_path, state_text
from services.localfarm.supervisor import tablao_argv

TICK_MS = 250


def local_now() -> datetime:
    return datetime.now().astimezone()


class TrayApp(QObject):
    def __init__(
        self,
        settings: TraySettings,
        *,
        data_dir: Path,
        idle: Detection,
        autostart: autostart_mod.Autostart,
        save_settings: bool = True,
        worker_extra: list[str] | None = None,
        now: Callable[[], datetime] = local_now,
        run_only: dict[str, Any] | None = None,
    ) -> None:
        """`run_only`: the stored values of settings given for this run only (`--hours`, `--away-after`): saved
        as they were, unless the artist changes that setting in this run."""
        super().__init__()
        self.settings = settings
        self.run_only = dict(run_only or {})
        self.data_dir = data_dir
        self.log_path = data_dir / LOG_NAME
        self.idle = idle
        self.autostart = autostart
        self.save_settings = save_settings
        self.worker_extra = worker_extra or []
        self.now = now
        self.policy = Policy()
        self.decision: Decision | None = None
        self.info: dict[str, Any] | None = None  # the worker's last control line
        self.paused = False
        self.paused_until: datetime | None = None
        self.quit_after_task = False
        self.stopped_why = "" if settings.manager_url else "set the Manager address in Settings…"
        self.notices: list[tuple[str, str]] = []  # (title, body) of notifications shown, newest last
        self.child = WorkerChild(self.log_path, self)
        self.child.control_line.connect(self._on_event)
        self.child.started.connect(self._on_child_started)
        self.child.exited.connect(self._on_exit)
        self.icon = QSystemTrayIcon(self)
        self.icons = {s: QIcon(str(icon_path(s))) for s in TrayState}
        self.icon.setIcon(self.icons[TrayState.STOPPED])
        self.menu = QMenu()
        self._build_menu()
        self.icon.setContextMenu(self.menu)
        self.markup = body_takes_markup()  # whether the notification server reads the body as markup
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.on_quit: Callable[[], None] = lambda: None

    # -- the menu ---------------------------------------------------------------------------------------

    def _action(self, text: str, slot: Callable[..., None], *, checkable: bool = False) -> QAction:
        action = QAction(text, self.menu)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.menu.addAction(action)
        return action

    def _build_menu(self) -> None:
        self.state_line = QAction("Starting…", self.menu)
        self.state_line.setEnabled(False)
        self.menu.addAction(self.state_line)
        self.menu.addSeparator()
        self.a_pause = self._action("Pause", lambda: self.pause())
        self.a_resume = self._action("Resume", self.resume)
        self.a_hour = self._action("Pause for 1 hour", lambda: self.pause(timedelta(hours=1)))
        self.a_tomorrow = self._action("Pause until tomorrow", self.pause_until_tomorrow)
        self.a_finish = self._action("Finish this task, then pause", self.finish_then_pause)
        self.a_stop = self._action("Stop now", self.stop_now)
        self.a_start = self._action("Start rendering", self.start_worker)
        self.menu.addSeparator()
        self.a_away = self._action("Render only when I'm away", self.set_away_only, checkable=True)
        # as stored: not the artist's choice in this run (which `toggled` would take it for, and save)
        self.a_away.blockSignals(True)
        self.a_away.setChecked(self.settings.away_only)
        self.a_away.blockSignals(False)
        if self.idle.provider is None:
            # chosen before (another desktop, an earlier session): it holds, since being away cannot be told
            # here, and stays there to be turned off; not chosen: it cannot be
            self.a_away.setEnabled(self.settings.away_only)
            self.a_away.setText(f"Render only when I'm away (unavailable: {self.idle.why_not})")
        self.a_hours = self._action("Rendering hours…", self.edit_hours)
        self.a_settings = self._action("Settings…", self.edit_settings)
        self.a_login = self._action("Start at login", self.set_start_at_login, checkable=True)
        self.a_login.blockSignals(True)
        self.a_login.setChecked(self.autostart.enabled())
        self.a_login.blockSignals(False)
        self.menu.addSeparator()
        self.a_open = self._action("Open Tablao", self.open_desktop)
        self.a_log = self._action("Show log", self.show_log)
        self.a_quit = self._action("Quit", self.quit)

    # -- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.icon.show()
        self.start_worker()
        self.tick()
        self.timer.start(TICK_MS)

    def worker_args(self) -> list[str]:
        s = self.settings
        args = ["--manager", s.manager_url, "--name", s.worker_name, "--data-dir", str(self.data_dir / "worker"),
                "--credentials", "keyring", "--render-priority", "low" if s.low_priority else "normal"]  # fmt: skip
        if s.tags:
            args += ["--tags", s.tags]
        if s.render_threads > 0:
            args += ["--render-threads", str(s.render_threads)]
        return args + self.worker_extra

    def start_worker(self) -> None:
        if not self.settings.manager_url:
            self.stopped_why = "set the Manager address in Settings…"
            self.tick()
            return
        env = {}
        if secret := load_registration_secret(self.settings.manager_url):
            env["TABLAO_WORKER_REGISTRATION_SECRET"] = secret
        self.stopped_why = ""
        self.child.start(self.worker_args(), env)
        self.tick()

    def _on_child_started(self) -> None:
        self.info = None
        self.policy.forget()

    def _on_exit(self, code: int, why: str) -> None:
        self.info = None
        self.stopped_why = why
        self.tick()

    # -- the policy loop --------------------------------------------------------------------------------

    def idle_seconds(self) -> float | None:
        if self.idle.provider is None:
            return None
        try:
            return self.idle.provider.idle_seconds()
        except (IdleUnavailable, OSError):
            return None

    def agent_state(self) -> AgentState:
        if not self.child.running:
            return AgentState.STOPPED
        info = self.info
        if info is None or info.get("status") == "starting" or not info.get("reachable", True):
            return AgentState.UNREACHABLE
        return AgentState.RENDERING if info.get("task") else AgentState.IDLE

    def facts(self) -> Facts:
        now = self.now()
        if self.paused_until is not None and now >= self.paused_until:
            self.paused, self.paused_until = False, None
        s = self.settings
        return Facts(
            agent=self.agent_state(),
            paused=self.paused,
            in_hours=s.hours.allows(now),
            asleep=bool(self.info and self.info.get("status") == "asleep"),
            # chosen but not measurable here: never proven away, so nothing renders (the artist said so)
            away_only=s.away_only,
            idle_seconds=self.idle_seconds() if s.away_only else None,
            away_after=s.away_minutes * 60.0,
            finish_on_return=s.finish_on_return,
        )

    def tick(self) -> None:
        facts = self.facts()
        decision, commands = self.policy.step(facts)
        for command in commands:
            self.child.send(command.as_json())
            if command.now and command.reason == "user-active" and self.settings.notify_stopped:
                self.notify("Rendering stopped", "You came back: the task went back to the farm.")
        self.decision = decision
        self._show(decision)

    def _show(self, d: Decision) -> None:
        s = self.settings
        text = state_text(
            d.state,
            task=(self.info or {}).get("task"),
            paused_until=self.paused_until,
            next_start=s.hours.next_start(self.now()),
            away_minutes=s.away_minutes,
            manager_url=s.manager_url,
            stopped_why=self.stopped_why,
        )
        if self.icon.toolTip() != f"Tablao: {text}":
            self.icon.setIcon(self.icons[d.state])
            self.icon.setToolTip(f"Tablao: {text}")
            self.state_line.setText(text)
        running = self.child.running
        self.a_pause.setVisible(not self.paused)
        self.a_hour.setVisible(not self.paused)
        self.a_tomorrow.setVisible(not self.paused)
        self.a_resume.setVisible(self.paused)
        self.a_finish.setEnabled(running and not self.paused and d.state == TrayState.RENDERING)
        self.a_stop.setVisible(running)
        self.a_start.setVisible(not running)

    def _on_event(self, msg: dict[str, Any]) -> None:
        self.info = msg
        kind = msg.get("event")
        s = self.settings
        if kind == "task-started" and s.notify_started and s.away_only and self.idle.provider is not None:
            idle = self.idle_seconds()
            if idle is not None and user_away(
                Facts(AgentState.IDLE, idle_seconds=idle, away_after=s.away_minutes * 60)
            ):
                task = msg.get("task") or {}
                self.notify(
                    "Rendering started", f"While you were away: {task.get('job_name', '')} {task.get('name', '')}"
                )
        elif kind == "task-finished":
            if msg.get("outcome") == "failed" and s.notify_failed:
                self.notify("A task failed", "A task this computer ran failed; see the job's log in Tablao.")
            if self.quit_after_task:
                self._quit_now()
                return
        self.tick()

    def notify(self, title: str, text: str) -> None:
        """Show `text`, which may hold farm text (a job's name), as written: escaped where it would be markup."""
        body = notification_body(text, markup=self.markup)
        self.notices.append((title, body))
        if QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, body, self.icons[TrayState.RENDERING], 8000)

    # -- menu actions -----------------------------------------------------------------------------------

    def pause(self, for_: timedelta | None = None) -> None:
        """Pause: the running task goes back to the queue now, nothing new is claimed."""
        self.paused = True
        self.paused_until = self.now() + for_ if for_ else None
        self.child.send({"cmd": "pause", "now": True, "reason": "paused-by-user"})
        self.tick()

    def pause_until_tomorrow(self) -> None:
        now = self.now()
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.pause(tomorrow - now)

    def finish_then_pause(self) -> None:
        self.paused, self.paused_until = True, None
        self.tick()  # the policy tells the worker: claim nothing new, let the task finish

    def resume(self) -> None:
        self.paused, self.paused_until = False, None
        self.tick()

    def stop_now(self) -> None:
        """Stop the worker: its task goes back to the queue (not a failure), it signs off."""
        self.child.stop()
        self.stopped_why = "by you"
        self.tick()

    def set_away_only(self, on: bool) -> None:
        self.settings.away_only = on
        self.run_only.pop("away_only", None)  # the artist's own choice: kept
        self.run_only.pop("away_minutes", None)
        self._save()
        self.tick()

    def edit_hours(self) -> None:
        dialog = HoursDialog(self.settings.hours)
        if dialog.exec():
            self.settings.hours = dialog.result_hours
            self.run_only.pop("hours", None)  # the artist's own choice: kept
            self._save()
            self.tick()

    def edit_settings(self) -> None:
        s = self.settings
        before = (s.manager_url, s.worker_name, s.tags, s.render_threads, s.low_priority)
        dialog = SettingsDialog(s, secret_known=load_registration_secret(s.manager_url) is not None)
        if not dialog.exec():
            return
        if (secret := dialog.new_secret()) and not save_registration_secret(s.manager_url, secret):
            if not s.manager_url:  # kept under no Manager, it would never be used
                said = "The registration secret was not kept: it belongs to a Manager, so set the Manager address too."
            else:
                said = "No secure keyring was found: the registration secret was not kept (it is never written to a " \
                       "plain file); give it again once a keyring is available."  # fmt: skip
            QMessageBox.warning(None, "Tablao", said)
        self._save()
        if secret or before != (s.manager_url, s.worker_name, s.tags, s.render_threads, s.low_priority):
            self.child.stop()
            self.child.wait_stopped()
            self.start_worker()
        self.tick()

    def set_start_at_login(self, on: bool) -> None:
        try:
            if on:
                self.autostart.enable(autostart_mod.tray_command())
            else:
                self.autostart.disable()
        except OSError as exc:
            QMessageBox.warning(None, "Tablao", f"Could not change the start at login: {exc}")
        self.settings.start_at_login = self.autostart.enabled()
        self._save()

    def open_desktop(self) -> None:
        argv = tablao_argv()
        QProcess.startDetached(argv[0], argv[1:])

    def show_log(self) -> None:
        private_log(self.log_path)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.log_path)))

    def quit(self, ask: bool = True) -> None:
        if ask and self.agent_state() == AgentState.RENDERING:
            box = QMessageBox(QMessageBox.Icon.Question, "Quit Tablao tray", "A task is rendering on this computer.")
            give = box.addButton("Give it back and quit", QMessageBox.ButtonRole.AcceptRole)
            finish = box.addButton("Finish it, then quit", QMessageBox.ButtonRole.ActionRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() == finish:
                self.quit_after_task = True
                self.finish_then_pause()
                return
            if box.clickedButton() != give:
                return
        self._quit_now()

    def _quit_now(self) -> None:
        self.timer.stop()
        self.child.stop()
        self.child.wait_stopped()
        self.icon.hide()
        self.on_quit()

    def _save(self) -> None:
        if self.save_settings:
            # what the command line gave for this run only stays as it was stored (an artist's hours were lost
            # to `--hours` given once for a test)
            dataclasses.replace(self.settings, **self.run_only).save()
