"""Benchmark: the tasks table with 100,000 rows taking 5,000 task status events a second for 10 seconds.

Prints the p99 gap between ticks of a 5 ms timer (the event loop's responsiveness), the process RSS and the
main window's start-up time. Run with `make bench` (or `pytest -m bench -s tests/bench/bench_gui_tasks_model.py`).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
import pytest

from app.models.farm_models import TasksModel
from app.models.store import ClientStore, TaskRow
from app.models.sync import FarmSync
from app.qt import QEventLoop, Qt, QTimer
from app.ui.main_window import MainWindow
from services.protocol.farm import Event
from services.protocol.server_client import ServerClient

ROWS = 100_000
RATE = 5_000  # events per second
SECONDS = 10.0
BATCH_MS = 10  # the feeder delivers RATE / 100 events every 10 ms, as an SSE reader would in bursts
STATUSES = ["queued", "assigned", "active", "completed", "soft-failed"]


def task_dict(i: int, status: str = "queued", done: int = 0) -> dict[str, object]:
    return {
        "id": i,
        "job_id": 1,
        "index": i,
        "name": f"frames {i}",
        "type": "blender",
        "status": status,
        "attempt": 1,
        "failure_count": 0,
        "manager_id": 1,
        "worker_id": "w1",
        "worker_name": "render-07",
        "activity": "Rendering",
        "steps_done": done,
        "steps_total": 10,
        "updated": "2026-11-28T15:00:00+00:00",
    }


@pytest.mark.bench
@pytest.mark.timeout(180)
def test_tasks_model_under_event_flood(qapp) -> None:
    proc = psutil.Process()
    rss_start = proc.memory_info().rss

    store = ClientStore()
    sync = FarmSync(store, ServerClient("http://127.0.0.1:9", "unused"))  # never started: no network here
    t0 = time.perf_counter()
    window = MainWindow(sync, "unused")
    window.show()
    qapp.processEvents()
    startup = time.perf_counter() - t0

    store.select_job(1)
    t0 = time.perf_counter()
    store.load_tasks(1, [TaskRow.from_wire(task_dict(i)) for i in range(ROWS)])
    load = time.perf_counter() - t0
    # the same models and view the window uses, sorted by the task number as in the app
    tasks: TasksModel = window.jobs.tasks_model
    tasks.flush()
    assert tasks.rowCount() == ROWS
    view = window.jobs.tasks_view
    window.jobs.detail_tabs.setCurrentWidget(view)
    view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    qapp.processEvents()

    rng = random.Random(7)
    event_id = 0
    sent = 0
    per_batch = RATE * BATCH_MS // 1000
    gaps: list[float] = []
    rss_peak = proc.memory_info().rss
    flushes = 0
    last_tick = time.perf_counter()

    def count_flush() -> None:
        nonlocal flushes
        flushes += 1

    tasks.flushed.connect(count_flush)

    def feed() -> None:
        nonlocal event_id, sent
        for _ in range(per_batch):
            event_id += 1
            i = rng.randrange(ROWS)
            raw = json.dumps(
                {
                    "id": event_id,
                    "type": "task-updated",
                    "time": "2026-11-28T15:00:00+00:00",
                    "data": task_dict(i, rng.choice(STATUSES), rng.randrange(11)),
                }
            )
            # what the SSE reader does with each frame: parse, validate, apply to the store
            store.apply_event(Event.model_validate_json(raw))
            sent += 1

    def tick() -> None:
        nonlocal last_tick, rss_peak
        now = time.perf_counter()
        gaps.append(now - last_tick)
        last_tick = now
        if len(gaps) % 200 == 0:
            rss_peak = max(rss_peak, proc.memory_info().rss)

    feeder = QTimer()
    feeder.setInterval(BATCH_MS)
    feeder.timeout.connect(feed)
    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(tick)
    loop = QEventLoop()
    started = time.perf_counter()
    feeder.start()
    ticker.start()
    last_tick = time.perf_counter()
    QTimer.singleShot(int(SECONDS * 1000), loop.quit)
    loop.exec()
    elapsed = time.perf_counter() - started
    feeder.stop()
    ticker.stop()
    rss_peak = max(rss_peak, proc.memory_info().rss)

    gaps_ms = sorted(g * 1000 for g in gaps[1:])
    p99 = gaps_ms[int(len(gaps_ms) * 0.99) - 1]
    print(
        f"\n[bench] tasks model: {ROWS} rows loaded in {load:.2f} s; {sent} events in {elapsed:.1f} s "
        f"({sent / elapsed:,.0f}/s), {flushes} flushes"
        f"\n[bench] timer gaps (5 ms timer): median {statistics.median(gaps_ms):.1f} ms, "
        f"p99 {p99:.1f} ms, max {gaps_ms[-1]:.1f} ms"
        f"\n[bench] RSS: {rss_peak / 1e6:.0f} MB peak ({rss_start / 1e6:.0f} MB before the window)"
        f"\n[bench] main window start-up (construct + show + first events): {startup * 1000:.0f} ms"
    )
    assert sent >= RATE * SECONDS * 0.9, f"the feeder fell behind: {sent} events"
    assert p99 < 50, f"p99 gap {p99:.1f} ms"
    assert rss_peak < 300e6, f"RSS {rss_peak / 1e6:.0f} MB"
    window.close()
