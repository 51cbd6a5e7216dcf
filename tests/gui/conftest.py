"""GUI test set-up: Qt offscreen before any QApplication exists, and an in-memory keyring."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # must precede any QApplication (see ENVIRONMENT.md)

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.gui)
            # The offscreen platform plugin warns that it cannot propagate size hints whenever a top-level
            # widget is shown; that is the headless plugin's limitation, not a fault of the app.
            item.add_marker(pytest.mark.qt_log_ignore("does not support propagateSizeHints"))


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps secrets in this process only."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """QSettings in a scratch directory, so tests never read or write the user's settings."""
    from app.qt import QSettings

    path = tmp_path_factory.mktemp("settings")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(path))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    yield


@pytest.fixture(autouse=True)
def gui_thread_gc(qapp):
    """Cyclic garbage collected in the GUI thread only, as the desktop app and the tray do (app/gui_thread_gc.py).

    Without it a Qt object left in a cycle by one test was at times collected by a thread of another (a local
    farm's, an executor's), and the GUI thread then crashed firing a timer of that deleted object."""
    from app.gui_thread_gc import GuiThreadCollector

    collector = GuiThreadCollector()
    collector.start()
    yield collector
    collector.stop()  # what the test left is collected here, in the GUI thread


@pytest.fixture
def qloop(qapp):
    """A qasync event loop over the test's QApplication: coroutines and Qt timers run together."""
    import asyncio
    import contextlib
    import weakref

    import httpx
    import qasync

    qapp.setQuitOnLastWindowClosed(False)  # as the app does: closing a window must not stop the loop
    # What tests before this one left for the cycle collector (an in-process client command whose asyncio.run
    # closed its loop with a pooled connection still open) is collected now, its ResourceWarning ignored: it
    # belongs to no GUI test, and collected later it was counted against whichever GUI test ran then (once the
    # first of a full run, at its teardown).
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    # A window a test does not shut down keeps its HTTP clients, and their pooled sockets then close at some later
    # garbage collection, a ResourceWarning in whichever test runs then. Clients made here are closed on this loop.
    opened: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
    original = httpx.AsyncClient.__init__

    def tracking(self: httpx.AsyncClient, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.add(self)

    httpx.AsyncClient.__init__ = tracking  # type: ignore[method-assign]
    try:
        yield loop
    finally:
        httpx.AsyncClient.__init__ = original  # type: ignore[method-assign]
        # What a test left running (a window it did not shut down keeps syncing) ends here, as asyncio.run ends
        # it: cancelled and awaited on this loop. Left pending, it was destroyed at some later garbage
        # collection, inside another test's loop, together with the Qt objects it still referred to.
        # Rounds, as a task ending (or a Qt timer firing meanwhile) may start another: one left pending when the
        # loop closes never closes the socket it was opening.
        for _round in range(5):
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.wait(pending, timeout=10))
        for client in list(opened):
            if not client.is_closed:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(client.aclose())
        # A socket closes at the loop turn after its transport's close(), and qasync runs a turn's callbacks as
        # Qt timers, which a closed loop drops: a turn of 50 ms runs the chains of zero-delay ones still due.
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.close()
        asyncio.set_event_loop(None)


async def until(predicate, within: float = 10.0, what: str = "") -> None:
    """Wait, letting Qt and asyncio run, until `predicate()` is true."""
    import asyncio
    import time

    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)
