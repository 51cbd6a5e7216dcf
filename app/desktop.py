"""The desktop app's entry point: start-up choice, connection (tokens in the keyring), the window, clean exit."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.display import missing_display
from app.embedded import EmbeddedFarm
from app.gui_thread_gc import GuiThreadCollector
from app.link_events import LinkOpener
from app.login import REFUSED, check_remembered, forget_when_refused
from app.models.store import ClientStore
from app.models.sync import FarmSync
from app.qt import QApplication, QDialog, QMessageBox, QTimer, as_html
from app.secrets import NO_KEYRING, load_token, save_token, secure_keyring
from app.settings import APPLICATION, ORGANISATION, AppSettings
from app.ui.main_window import MainWindow
from app.ui.start_dialog import StartChoice, StartDialog
from services.localfarm.layout import default_data_dir
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.token_text import token_problem


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tablao", description="The Tablao desktop app.")
    p.add_argument("--embedded", action="store_true", help="run a farm on this computer (no start-up question)")
    p.add_argument("--data-dir", type=Path, default=None, help="the local farm's folder (embedded mode)")
    p.add_argument("--port", type=int, default=None, help="the local Server's port; the Manager uses port+1")
    p.add_argument("--workers", type=int, default=None, help="local workers to start (embedded mode)")
    p.add_argument("--server", default=None, help="connect to this Server URL (no start-up question)")
    p.add_argument("--manager-url", default=None, help="the Manager full task logs are read from")
    p.add_argument("--demo", action="store_true", help="render the sample scene on the local farm (embedded mode)")
    p.add_argument(
        "--output-root", action="append", default=[], metavar="DIR",
        help="jobs may also write under this folder (embedded mode; repeatable)",
    )  # fmt: skip
    p.add_argument("--open-job", type=int, default=None, metavar="ID", help="select this job once it is loaded")
    return p.parse_args(argv)


async def start_embedded(
    data_dir: Path,
    port: int,
    workers: int,
    manager_url: str = "",
    settings: AppSettings | None = None,
    output_roots: tuple[str, ...] = (),
) -> tuple[MainWindow, EmbeddedFarm] | None:
    """Adopt the local farm running on data_dir or start one, and open the window once its Server answers.

    The Manager and workers come up behind the window; the "Local farm" tab shows them. With settings, the
    "leave running" choice is read from and saved to them. `output_roots`: the started farm's --output-root."""
    farm = EmbeddedFarm(data_dir, port, workers, output_roots=output_roots)
    farm.leave_running = bool(settings and settings.leave_running)
    messages: list[str] = []

    def collect(text: str) -> None:
        messages.append(text)

    farm.message.connect(collect)
    started = await farm.start()
    farm.message.disconnect(collect)
    if not started:
        if not CLOSE.requested:
            QMessageBox.critical(None, "Tablao", as_html("\n\n".join(messages) or "The local farm did not start."))
        return None
    token = farm.admin_token()
    sync = FarmSync(ClientStore(), ServerClient(farm.server_url, token))
    window = MainWindow(sync, token, farm=farm, manager_url=manager_url)
    for text in messages:  # "Adopted the local farm ..."
        window.message_bar.show_message(text, error=False)
    if settings is not None and window.services is not None:
        window.services.leave.toggled.connect(lambda on: _save_leave_running(settings, on))
    window.show()
    sync.start()
    return window, farm


def _save_leave_running(settings: AppSettings, on: bool) -> None:
    settings.leave_running = on
    settings.save()


async def connect(choice: StartChoice) -> str:
    """A checked token for the chosen Server: from the login, the pasted token or the keyring."""
    token = choice.token
    if choice.password:
        async with ServerClient(choice.server_url) as anon:
            token = (await anon.login(choice.username, choice.password)).token
    if not token:
        token = load_token(choice.server_url) or ""
    if not token:
        raise ApiError(401, "Give a password or an API token.")
    if (problem := token_problem(token)) is not None:
        # said here: httpx's UnicodeEncodeError for a pasted non-ASCII token was no error the dialog shows
        raise ApiError(422, f"That API token cannot be sent: {problem}.")
    async with ServerClient(choice.server_url, token) as client:
        await client.farm_status()  # proves the token before anything is kept
    return token


async def run(args: argparse.Namespace, links: LinkOpener | None = None) -> int:
    settings = AppSettings.load()
    manager_url = args.manager_url or settings.manager_url
    if args.embedded:
        started = await start_embedded(
            args.data_dir or Path(settings.data_dir or default_data_dir()),
            args.port or settings.port,
            settings.workers if args.workers is None else args.workers,
            manager_url,
            settings,
            tuple(args.output_root),
        )
        if started is None:
            return 1
        if args.open_job is not None:
            started[0].reveal_job_later(args.open_job)
        if args.demo:
            from app.demo import submit_demo

            window, farm = started
            window.background.append(window.sync.spawn(submit_demo(window, farm)))
        return await until_closed(started[0], links)

    choice: StartChoice | None = None
    token = ""
    url = args.server or settings.server_url
    remembered = load_token(url) if (args.server or settings.mode == "connect") else None
    refused = ""
    if remembered and await check_remembered(url, remembered) is False:  # forgotten now: ask again
        refused, remembered = REFUSED.format(url=url), None
    if remembered:
        choice = StartChoice("connect", Path(), 0, 0, url, settings.username, "", "")
        token = remembered
    while choice is None:
        if CLOSE.requested:
            return 0
        dialog = StartDialog(settings, default_data_dir())
        if args.server or refused:
            dialog.connect_.setChecked(True)
            dialog.server_url.setText(url)
        dialog.error.setText(refused)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return 0
        c = dialog.choice()
        if c.mode == "embedded":
            choice = c
            break
        try:
            token = await connect(c)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            QMessageBox.warning(None, "Tablao", as_html(f"Could not connect to {c.server_url}:\n{exc}"))
            continue
        choice = c
        if not save_token(c.server_url, token):
            QMessageBox.information(None, "Tablao", dialog.keyring_warning.text())

    settings.mode = choice.mode
    if choice.mode == "embedded":
        settings.data_dir, settings.port, settings.workers = str(choice.data_dir), choice.port, choice.workers
        settings.save()
        started = await start_embedded(choice.data_dir, choice.port, choice.workers, manager_url, settings)
        if started is None:
            return 1
        if args.open_job is not None:
            started[0].reveal_job_later(args.open_job)
        return await until_closed(started[0], links)
    settings.server_url, settings.username = choice.server_url, choice.username
    settings.save()
    sync = FarmSync(ClientStore(), ServerClient(choice.server_url, token))
    window = MainWindow(sync, token, manager_url=manager_url)
    forget_when_refused(sync, choice.server_url, token)
    if not secure_keyring():
        window.message_bar.show_message(NO_KEYRING, error=False)
    window.show()
    sync.start()
    if args.open_job is not None:
        window.reveal_job_later(args.open_job)
    return await until_closed(window, links)


async def until_closed(window: MainWindow, links: LinkOpener | None = None) -> int:
    if links is not None:  # tablao:// links macOS hands to the running app open their job here
        links.set_reveal(window.reveal_job_later)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    if CLOSE.requested:  # asked to stop while the window was still coming up
        window.close()
    await closed.wait()
    await window.shutdown()
    return 0


@dataclass
class CloseRequest:
    """Ctrl-C or SIGTERM arrived. Windows close at once; a start still under way (the farm coming up, a
    connection being checked) closes its window, and so stops cleanly, as soon as it has one."""

    requested: bool = False


CLOSE = CloseRequest()


def close_on_signals(app: QApplication) -> QTimer:
    """Ctrl-C or SIGTERM closes the windows, which runs the same clean shutdown as closing them by hand.

    Python runs signal handlers only between bytecodes, and the Qt loop may sit in C for long; the returned timer
    (keep a reference) hands control to Python a few times a second so the handler runs promptly.
    """
    CLOSE.requested = False

    def request_close(signum: int, _frame: object) -> None:
        # not app.quit(): a start under way would then resume with no loop running and fail half-way, leaving
        # what it started behind
        CLOSE.requested = True
        for widget in app.topLevelWidgets():
            if isinstance(widget, MainWindow):
                widget.close()
            elif isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()  # the start-up question, or a message the start is showing

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_close)
    timer = QTimer()
    timer.timeout.connect(lambda: None)
    timer.start(200)
    return timer


def main(argv: list[str]) -> int:
    import qasync

    args = parse_args(argv)
    if missing_display():  # Qt would abort the process (SIGABRT) with a message about reinstalling
        print(
            "tablao: no display: the desktop app needs one (DISPLAY or WAYLAND_DISPLAY); "
            "for a farm without a window: tablao all-in-one --headless",
            file=sys.stderr,
        )
        return 2
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setQuitOnLastWindowClosed(False)  # quitting waits for the clean shutdown in `until_closed`
    GuiThreadCollector(parent=app).start()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    _keep = close_on_signals(app)
    links = LinkOpener()
    app.installEventFilter(links)
    with loop:
        return int(loop.run_until_complete(run(args, links)))
