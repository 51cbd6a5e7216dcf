"""The client store's worker series: the Server's history merged under the live samples, forgotten workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.models.store import ClientStore
from app.models.worker_history import merge_history
from app.ui.worker_actions import parse_tags
from services.protocol.workers import UtilisationHistory, UtilisationPoint


def _worker(at: datetime, cpu: float) -> dict[str, object]:
    return {
        "id": "w1", "name": "w", "manager_id": 1, "platform": "linux", "task_types": ["exec"], "tags": [],
        "software": {}, "status": "awake", "status_requested": None, "current_task_id": None, "last_seen": None,
        "utilisation": {"time": at.isoformat(), "cpu_percent": cpu, "memory_percent": 10.0, "memory_used_mb": 1.0},
    }  # fmt: skip


def test_history_goes_under_the_live_samples_once_each() -> None:
    store = ClientStore()
    now = datetime.now(UTC).replace(microsecond=0)
    store.apply("worker-updated", _worker(now - timedelta(seconds=30), 70.0))
    store.apply("worker-updated", _worker(now, 80.0))
    history = UtilisationHistory(
        worker_id="w1",
        sample_seconds=30,
        samples=[
            UtilisationPoint(time=now - timedelta(hours=2), cpu_percent=10.0, memory_percent=5.0, gpu_percent=50.0),
            UtilisationPoint(time=now - timedelta(seconds=30), cpu_percent=70.0, memory_percent=10.0),  # the same
        ],
    )
    assert merge_history(store, history) == 3
    series = list(store.utilisation["w1"])
    assert [s.cpu for s in series] == [10.0, 70.0, 80.0]
    assert series[0].gpu == 50.0 and series[1].gpu is None
    store.apply("worker-updated", _worker(now + timedelta(seconds=5), 90.0))  # live samples keep coming
    assert [s.cpu for s in store.utilisation["w1"]][-1] == 90.0
    store.apply("worker-deleted", {"id": "w1"})
    assert "w1" not in store.workers and "w1" not in store.utilisation


def test_tags_as_typed() -> None:
    assert parse_tags(" gpu, cpu  fast,,gpu ") == ["gpu", "cpu", "fast"]
    assert parse_tags("") == []
