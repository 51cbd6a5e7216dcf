"""Benchmark: select all 100,000 rows of the tasks table, then requeue them.

Prints how long the window is busy for the select-all (the selection change and the actions' enabling), for
reading the selected ids, and for the requeue action up to the point where its requests go out (they run in
the background: the Server here is never started). Run with `pytest -m bench -s
tests/bench/bench_gui_bulk_select.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Coroutine
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from app.models.store import ClientStore, TaskRow
from app.models.sync import FarmSync
from app.ui.main_window import MainWindow
from services.protocol.server_client import ServerClient
from tests.bench.bench_gui_tasks_model import ROWS, task_dict


@pytest.mark.bench
@pytest.mark.timeout(180)
def test_select_all_tasks_and_requeue(qapp) -> None:
    store = ClientStore()
    sync = FarmSync(store, ServerClient("http://127.0.0.1:9", "unused"))  # never started: no network here
    window = MainWindow(sync, "unused", confirm=lambda title, text: True)
    window.show()
    store.select_job(1)
    store.load_tasks(1, [TaskRow.from_wire(task_dict(i)) for i in range(ROWS)])
    window.jobs.tasks_model.flush()
    view = window.jobs.tasks_view
    window.jobs.detail_tabs.setCurrentWidget(view)
    qapp.processEvents()

    t0 = time.perf_counter()
    view.selectAll()
    qapp.processEvents()
    select_all = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = window.jobs.selected_task_ids()
    read_ids = time.perf_counter() - t0
    assert len(ids) == ROWS

    sent: list[object] = []

    def spawn(coro: Coroutine[Any, Any, None]) -> None:  # the requests themselves are not measured
        sent.append(coro)
        coro.close()

    sync.spawn = spawn  # type: ignore[assignment,method-assign]
    t0 = time.perf_counter()
    window.jobs.task_actions.requeue.trigger()
    qapp.processEvents()
    trigger = time.perf_counter() - t0
    assert len(sent) == 1

    print(
        f"\nselect all {ROWS:,} tasks: {select_all * 1000:.0f} ms; read the selected ids: {read_ids * 1000:.0f} ms;"
        f" requeue until its requests start: {trigger * 1000:.0f} ms"
    )
    window.close()
