"""Cyclic garbage made in the GUI thread is collected there, however much another thread allocates meanwhile."""

from __future__ import annotations

import gc
import threading
import weakref

from app.gui_thread_gc import GuiThreadCollector
from app.qt import QObject, QTimer


class Holder(QObject):
    """A Qt object with a running timer, kept only by a reference cycle: what crashed when collected elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.start(60_000)
        self.me = self


def test_a_cycle_is_collected_in_the_gui_thread_not_in_the_thread_that_allocates(qtbot, gui_thread_gc) -> None:
    gui_thread_gc.stop()  # the suite's own collector; this test starts one from Python's default
    assert gc.isenabled()
    collector = GuiThreadCollector(interval_ms=20)
    collector.start()
    try:
        assert not gc.isenabled()
        collected_in: list[int] = []
        holder = Holder()
        weakref.finalize(holder, lambda: collected_in.append(threading.get_ident()))
        del holder

        kept: list[list[object]] = []

        def allocate() -> None:  # far past the threshold: Python's own collection would run here, in this thread
            kept.extend([] for _ in range(50 * gc.get_threshold()[0]))

        worker = threading.Thread(target=allocate)
        worker.start()
        worker.join()
        assert collected_in == []
        qtbot.waitUntil(lambda: collected_in != [], timeout=5000)
        assert collected_in == [threading.get_ident()]
        assert collector.collections >= 1
    finally:
        collector.stop()
    assert gc.isenabled()  # handed back as it was found
