"""The two plots of the workers tab, redrawn from the store's series (never from the network: the panel loads a
worker's history from the Server into the store when the worker is first shown)."""

from __future__ import annotations

import time

import pyqtgraph as pg

from app.models.store import ClientStore, Sample
from app.qt import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

WINDOWS = [("Last 15 minutes", 900.0), ("Last hour", 3600.0), ("Last 6 hours", 6 * 3600.0), ("Last day", 86400.0)]


def _plot(title: str, parent: QWidget | None) -> pg.PlotWidget:
    plot = pg.PlotWidget(parent=parent, title=title)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", "seconds ago")
    plot.addLegend(offset=(5, 5))
    plot.setMouseEnabled(x=False, y=False)
    plot.setMinimumHeight(160)
    return plot


class UtilisationPlot:
    """CPU, memory and GPU (%) of one worker over a chosen window, the past included (the Server keeps a day)."""

    def __init__(self, store: ClientStore, parent: QWidget | None = None) -> None:
        self.store = store
        self.worker_id: str | None = None
        self.widget = QWidget(parent)
        self.window_box = QComboBox(self.widget)
        self.window_box.setObjectName("utilisation-window")
        for label, seconds in WINDOWS:
            self.window_box.addItem(label, seconds)
        self.window_box.setCurrentIndex(1)
        self.window_box.currentIndexChanged.connect(lambda _i: self.redraw())
        self.gpu_note = QLabel("", self.widget)
        self.gpu_note.setObjectName("gpu-note")
        self.plot = pg.PlotWidget(parent=self.widget, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(5, 5))
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMinimumHeight(160)
        self.plot.setYRange(0, 100)
        # samples come every few seconds at best: dots make a lone sample visible, the line joins them
        self.cpu = self._curve("#2e8bd6", "CPU")
        self.memory = self._curve("#d9822b", "memory")
        self.gpu = self._curve("#2f9e44", "GPU")
        top = QHBoxLayout()
        top.addWidget(self.gpu_note, 1)
        top.addWidget(self.window_box)
        col = QVBoxLayout(self.widget)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(top)
        col.addWidget(self.plot, 1)

    def _curve(self, colour: str, name: str) -> pg.PlotDataItem:
        return self.plot.plot(
            [], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4, symbolBrush=colour, name=name
        )

    @property
    def window_seconds(self) -> float:
        return float(self.window_box.currentData())

    def show_worker(self, worker_id: str | None) -> None:
        self.worker_id = worker_id
        w = self.store.workers.get(worker_id) if worker_id else None
        self.plot.setTitle(f"{w.name}: CPU, memory and GPU (%)" if w else "Worker utilisation (%): select a worker")
        self.redraw()

    def shown(self, now: float | None = None) -> list[Sample]:
        """The selected worker's samples inside the chosen window."""
        now = time.time() if now is None else now
        start = now - self.window_seconds
        return [s for s in self.store.utilisation.get(self.worker_id or "", ()) if s.time >= start]

    def redraw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        series = self.shown(now)
        xs = [s.time for s in series]
        self.cpu.setData(xs, [s.cpu for s in series])
        self.memory.setData(xs, [s.memory for s in series])
        gpu = [s for s in series if s.gpu is not None]
        self.gpu.setData([s.time for s in gpu], [s.gpu for s in gpu])
        if self.worker_id is None:
            self.gpu_note.setText("")
        else:
            self.gpu_note.setText("" if gpu else "GPU: none reported (needs an NVIDIA GPU with nvidia-smi)")
        self.plot.setXRange(now - self.window_seconds, now, padding=0.01)


class FarmPlot:
    """How many workers are busy, idle and offline, over time."""

    def __init__(self, store: ClientStore, parent: QWidget | None = None) -> None:
        self.store = store
        self.widget = _plot("Farm: busy, idle and offline workers", parent)
        self.busy = self.widget.plot([], [], pen=pg.mkPen("#2f9e44", width=2), name="busy")
        self.idle = self.widget.plot([], [], pen=pg.mkPen("#5b7fa6", width=2), name="idle")
        self.offline = self.widget.plot([], [], pen=pg.mkPen("#8a8a8a", width=2), name="offline")

    def redraw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        h = self.store.farm_history
        xs = [s.time - now for s in h]
        self.busy.setData(xs, [s.busy for s in h])
        self.idle.setData(xs, [s.idle for s in h])
        self.offline.setData(xs, [s.offline for s in h])
