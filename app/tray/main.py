"""`tablao tray`: the command line (parsed before Qt loads, so --help needs no display), one instance per
user session, and the Qt application around the TrayApp."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

EXIT_ALREADY_RUNNING = 3
QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tablao tray",
        description="The tray worker agent: renders for the farm on this workstation when you allow it.",
    )
    p.add_argument(
        "--manager", metavar="URL", help="the Manager's URL, remembered in Settings… (with --no-save: this run only)"
    )
    p.add_argument("--name", help="the worker's name, remembered in Settings… (with --no-save: this run only)")
    p.add_argument("--data-dir", type=Path, metavar="D", help="where the tray's worker keeps its files")
    p.add_argument(
        "--registration-secret-file", type=Path, metavar="F", help="read the farm's registration secret from F "
        "and keep it in the keyring"
    )  # fmt: skip
    p.add_argument(
        "--away-after", type=float, metavar="S", help="render only after S seconds without input, for this run"
    )
    p.add_argument("--hours", metavar="JSON", help="rendering hours for this run, as stored in the settings")
    p.add_argument("--no-save", action="store_true", help="do not save settings changed in this run")
    # tries a schedule as if the clock showed this local time now (and runs on from there): for tests and demos
    p.add_argument("--pretend-time", metavar="ISO", help=argparse.SUPPRESS)
    p.add_argument("--worker-arg", action="append", default=[], metavar="ARG", help=argparse.SUPPRESS)
    return p


def instance_name() -> str:
    """One name per user and desktop session: two sessions of one user each get their own tray."""
    session = os.environ.get("XDG_SESSION_ID") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    key = f"{getpass.getuser()}|{session or 'console'}"
    return "tablao-tray-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def log_warnings(log_path: Path) -> None:
    """The tray's own warnings (a hand-edited setting ignored) go to stderr and to the log the artist opens with
    Show log (its worker's, which it appends to), not only to a terminal no one sees at login."""
    from app.tray.datadir import private_log

    logger = logging.getLogger("app.tray")
    if any(h.get_name() == "tablao-tray" for h in logger.handlers):
        return
    private_log(log_path)
    to_file = logging.FileHandler(log_path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s tablao tray: %(levelname)s: %(message)s"))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setFormatter(logging.Formatter("tablao tray: %(levelname)s: %(message)s"))
    for handler in (to_file, to_stderr):
        handler.set_name("tablao-tray")
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


class SignalQuit:
    """Ctrl-C (SIGINT) and SIGTERM quit the tray as its menu's Quit does without asking: the worker gives its task
    back and signs off, then the loop ends; `code` is then 128 + the signal (130 for Ctrl-C), as a shell reports.

    Python runs signal handlers only between bytecodes and the Qt loop may sit in C for long: `timer` (started by
    `install`) hands control to Python a few times a second so the handler runs promptly.
    """

    def __init__(self, quit_now: Callable[[], None]) -> None:
        from app.qt import QTimer

        self.quit_now = quit_now
        self.received: int | None = None
        self.timer = QTimer()
        self.timer.timeout.connect(lambda: None)

    @property
    def code(self) -> int | None:
        return None if self.received is None else 128 + self.received

    def install(self) -> None:
        for sig in QUIT_SIGNALS:
            signal.signal(sig, self._on_signal)
        self.timer.start(200)

    def _on_signal(self, signum: int, _frame: object) -> None:
        from app.qt import QTimer

        first = self.received is None
        self.received = signum
        if first:  # not from inside the handler: the quit waits for the worker, which may take seconds
            QTimer.singleShot(0, lambda: self.quit_now())  # the quit in place when it runs


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.away_after is not None and not (math.isfinite(args.away_after) and args.away_after > 0):
        print("tablao tray: error: --away-after must be a finite number > 0", file=sys.stderr)
        return 2
    from app.tray.limits import AWAY_MINUTES_MAX, valid_manager_url, valid_worker_name

    # what the worker it starts would refuse: one line here, not a worker restarted for ever behind the icon
    if args.manager and not valid_manager_url(args.manager.rstrip("/")):
        print("tablao tray: error: --manager: not an http:// or https:// URL of a Manager (without a user name, "
              "password, query or fragment)", file=sys.stderr)  # fmt: skip
        return 2
    if args.name is not None and not valid_worker_name(args.name):
        print("tablao tray: error: --name: 1 – 64 letters, digits, '.', '_', '@' or '-', starting with a letter or "
              "digit", file=sys.stderr)  # fmt: skip
        return 2

    if args.away_after is not None and args.away_after > AWAY_MINUTES_MAX * 60:
        print(f"tablao tray: error: --away-after: at most {AWAY_MINUTES_MAX * 60:g} seconds", file=sys.stderr)
        return 2
    from app.tray.hours import HoursError, RenderingHours

    hours = None
    if args.hours:
        try:
            hours = RenderingHours.from_json(json.loads(args.hours))
        except (ValueError, HoursError) as exc:
            print(f"tablao tray: error: --hours: {exc}", file=sys.stderr)
            return 2
    offset = timedelta(0)
    if args.pretend_time:
        try:
            offset = datetime.fromisoformat(args.pretend_time).astimezone() - datetime.now().astimezone()
        except ValueError as exc:
            print(f"tablao tray: error: --pretend-time: {exc}", file=sys.stderr)
            return 2
    secret = None
    if args.registration_secret_file is not None:
        from services.protocol.named_files import SECRET_BYTES, UnreadableFile, read_named_text

        try:
            secret = read_named_text(args.registration_secret_file, SECRET_BYTES, "a registration secret file").strip()
        except UnreadableFile as exc:
            print(f"tablao tray: error: --registration-secret-file: {exc}", file=sys.stderr)
            return 2
        if not secret:
            print(f"tablao tray: error: --registration-secret-file: {args.registration_secret_file} is empty",
                  file=sys.stderr)  # fmt: skip
            return 2

    from app.tray.datadir import LOG_NAME, DataDirError, default_data_dir, prepare_data_dir

    data_dir = args.data_dir or default_data_dir()
    try:  # a file given for the folder, a folder that cannot be written: one line here, not a silent tray
        prepare_data_dir(data_dir)
    except DataDirError as exc:
        print(f"tablao tray: error: {'--data-dir' if args.data_dir else 'the data folder'}: {exc}", file=sys.stderr)
        return 2

    from app.display import missing_display

    if missing_display():  # Qt would abort the process (SIGABRT) with a message about reinstalling
        print("tablao tray: no display: the tray agent runs in a desktop session (a worker without one: tablao worker)",
              file=sys.stderr)  # fmt: skip
        return 2

    from app.gui_thread_gc import GuiThreadCollector
    from app.qt import QApplication, QLocalServer, QLocalSocket, QMessageBox, QSystemTrayIcon, QTimer
    from app.tray import autostart, idle
    from app.tray.app import TrayApp
    from app.tray.settings import TraySettings, save_registration_secret

    app = QApplication(["tablao tray"])
    app.setQuitOnLastWindowClosed(False)  # dialogs close; the tray stays
    GuiThreadCollector(parent=app).start()
    signals = SignalQuit(app.quit)  # from here on, not a KeyboardInterrupt traceback
    signals.install()
    name = instance_name()
    probe = QLocalSocket()
    probe.connectToServer(name)
    if probe.waitForConnected(1000):
        print("tablao tray: already running in this session", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    server = QLocalServer()
    server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)  # only this user may connect
    if not server.listen(name):
        QLocalServer.removeServer(name)  # a socket left by a crashed tray
        if not server.listen(name):
            print(f"tablao tray: error: cannot claim the session's instance lock: {server.errorString()}",
                  file=sys.stderr)  # fmt: skip
            return 1

    log_warnings(data_dir / LOG_NAME)
    settings = TraySettings.load()
    if secret and not (args.manager or settings.manager_url):  # kept under no Manager, it would never be used
        print("tablao tray: error: --registration-secret-file: no Manager to keep the secret for; give --manager URL "
              "too", file=sys.stderr)  # fmt: skip
        return 2
    if args.manager or args.name:
        # the roll-out's one run (docs/operations.md): the Manager and the name are remembered from now on
        settings.manager_url = args.manager.rstrip("/") if args.manager else settings.manager_url
        settings.worker_name = args.name or settings.worker_name
        if not args.no_save:
            settings.save()
    run_only: dict[str, object] = {}  # the stored values of what is given for this run only
    if args.away_after is not None:
        run_only.update(away_only=settings.away_only, away_minutes=settings.away_minutes)
        settings.away_only, settings.away_minutes = True, args.away_after / 60.0
    if hours is not None:
        run_only["hours"] = settings.hours
        settings.hours = hours
    if secret and not save_registration_secret(settings.manager_url, secret):
        print("tablao tray: error: no secure keyring to keep the registration secret in", file=sys.stderr)
        return 1
    if not QSystemTrayIcon.isSystemTrayAvailable():
        said = "This desktop has no system tray to show the Tablao icon in."
        print(f"tablao tray: error: {said}", file=sys.stderr)  # started from a terminal or a login script
        if QApplication.platformName() not in ("offscreen", "minimal"):  # a box no one can see would hang here
            QMessageBox.critical(None, "Tablao tray", said)
        return 1
    detected = idle.detect()
    if args.away_after is not None and detected.provider is None:
        print(f"tablao tray: error: --away-after: this session's idle time cannot be read ({detected.why_not})",
              file=sys.stderr)  # fmt: skip
        return 2
    tray = TrayApp(
        settings,
        data_dir=data_dir,
        idle=detected,
        autostart=autostart.for_this_platform(),
        save_settings=not args.no_save,
        run_only=run_only,
        worker_extra=list(args.worker_arg),
        now=lambda: datetime.now().astimezone() + offset,
    )
    tray.on_quit = app.quit
    signals.quit_now = lambda: tray.quit(ask=False)
    if signals.code is not None:  # Ctrl-C while starting: nothing to stop yet
        return signals.code
    QTimer.singleShot(0, tray.start)
    code = app.exec()
    server.close()
    return signals.code if signals.code is not None else int(code)
