"""The two plots of the workers tab, redrawn from the store's history series (never from the network)."""

from __future__ import annotations

import time

import pyqtgraph as pg

from app.models.store import ClientStore
from app.qt import QWidget

pg.setConfigOptions(antialias=True, background="w", foreground="#333")


def _plot(title: str, parent: QWidget | None) -> pg.PlotWidget:
    plot = pg.PlotWidget(parent=parent, title=title)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setLabel("bottom", "seconds ago")
    plot.addLegend(offset=(5, 5))
    plot.setMouseEnabled(x=False, y=False)
    plot.setMinimumHeight(160)
    return plot


class UtilisationPlot:
    """CPU and memory (%) of one worker over the last minutes."""

    def __init__(self, store: ClientStore, parent: QWidget | None = None) -> None:
        self.store = store
        self.worker_id: str | None = None
        self.widget = _plot("Worker utilisation (%)", parent)
        self.widget.setYRange(0, 100)
        # samples come every few seconds at best: dots make a lone sample visible, the line joins them
        self.cpu = self.widget.plot(
            [], [], pen=pg.mkPen("#2e8bd6", width=2), symbol="o", symbolSize=5, symbolBrush="#2e8bd6", name="CPU"
        )
        self.memory = self.widget.plot(
            [], [], pen=pg.mkPen("#d9822b", width=2), symbol="o", symbolSize=5, symbolBrush="#d9822b", name="memory"
        )

    def show_worker(self, worker_id: str | None) -> None:
        self.worker_id = worker_id
        w = self.store.workers.get(worker_id) if worker_id else None
        self.widget.setTitle(f"{w.name}: CPU and memory (%)" if w else "Worker utilisation (%): select a worker")
        self.redraw()

    def redraw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        series = self.store.utilisation.get(self.worker_id or "", ())
        xs = [s.time - now for s in series]
        self.cpu.setData(xs, [s.cpu for s in series])
        self.memory.setData(xs, [s.memory for s in series])
        self.widget.setXRange(min([-60.0, *xs]), 0, padding=0.02)


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
