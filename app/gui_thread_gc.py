"""Python's cycle collector, run in the GUI thread only, for the processes that show Qt windows.

The collector runs in whichever thread happens to allocate when a threshold is passed: a worker thread of the
event loop's executor (a preview decoding), an HTTP client's thread. A Qt object in a collected cycle is then
destroyed in that thread; Qt cannot unregister its timers from there, and the GUI thread later fires a timer of
a deleted object and crashes. So the automatic collection is switched off and the same thresholds are checked
on a timer in the GUI thread, which collects what the automatic collection would have collected.
"""

from __future__ import annotations

import gc

from app.qt import QObject, QTimer

INTERVAL_MS = 100  # often enough that garbage does not pile up between looks; a look is one gc.get_count()


class GuiThreadCollector(QObject):
    """While it runs, cyclic garbage is collected only here, in the thread that made it (the GUI thread)."""

    def __init__(self, interval_ms: int = INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.collections = 0
        self._was_enabled = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        if not self._timer.isActive():
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()

    def stop(self) -> None:
        """Collect what is left here, then hand collection back to Python if it was Python's before."""
        if self._timer.isActive():
            self._timer.stop()
            gc.collect()
            if self._was_enabled:
                gc.enable()

    def check(self) -> None:
        """Collect the oldest generation whose threshold is passed, as the automatic collection would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                gc.collect(generation)
                self.collections += 1
                return
