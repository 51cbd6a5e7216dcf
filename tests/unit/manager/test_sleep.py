"""Sleep schedules: windows in the Manager's local time (crossing midnight), and what the Manager asks."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.manager.model import WorkerState
from services.manager.sleep import SleepSchedules
from services.manager.store.db import connect
from services.protocol.farm import SleepSchedule
from services.protocol.states import WorkerStatus, WorkerStatusRequest

NIGHTS = SleepSchedule(active=True, days=[0, 1, 2, 3, 4], start="22:00", end="06:00")  # weeknights


@pytest.mark.parametrize(
    ("when", "asleep"),
    [
        (datetime(2026, 12, 7, 21, 59), False),  # Monday
        (datetime(2026, 12, 7, 22, 0), True),
        (datetime(2026, 12, 8, 5, 59), True),  # Tuesday morning: Monday's night
        (datetime(2026, 12, 8, 6, 0), False),
        (datetime(2026, 12, 12, 3, 0), True),  # Saturday morning: Friday's night
        (datetime(2026, 12, 13, 3, 0), False),  # Sunday morning: Saturday is not listed
    ],
)
def test_windows_cross_midnight(when: datetime, asleep: bool) -> None:
    assert NIGHTS.asleep_at(when) is asleep


def test_days_hours_and_the_active_flag() -> None:
    office = SleepSchedule(active=True, days=[5, 0, 0], start="09:00", end="18:00")
    assert office.days == [0, 5]
    assert office.asleep_at(datetime(2026, 12, 7, 12, 0))
    assert not office.asleep_at(datetime(2026, 12, 8, 12, 0))
    assert not office.model_copy(update={"active": False}).asleep_at(datetime(2026, 12, 7, 12, 0))
    for bad in ({"days": [7]}, {"start": "25:00"}, {"end": "9:00"}, {"days": list(range(8))}):
        with pytest.raises(ValidationError):
            SleepSchedule.model_validate(bad)


def _worker() -> WorkerState:
    return WorkerState(id="w1", secret_hash="x", name="w1", platform="linux", status=WorkerStatus.AWAKE)


def _conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "manager.sqlite")


def test_the_manager_puts_to_sleep_and_wakes_only_what_it_put_to_sleep(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    sleep = SleepSchedules(conn)
    w = _worker()
    night, day = datetime(2026, 12, 7, 23, 0), datetime(2026, 12, 8, 9, 0)
    assert not sleep.apply(w, night)  # no schedule
    sleep.set("w1", NIGHTS)
    assert sleep.apply(w, night)
    assert (w.status_requested, w.lazy) == (WorkerStatusRequest.ASLEEP, True)
    assert not sleep.apply(w, night)  # asked once
    w.status, w.status_requested = WorkerStatus.ASLEEP, None  # it got there
    # it survives a Manager restart
    again = SleepSchedules(conn)
    assert again.get("w1") == NIGHTS and "w1" in again.asleep_by_schedule
    assert again.apply(w, day)
    assert w.status_requested == WorkerStatusRequest.AWAKE
    # a worker a wrangler sent to sleep by hand is not woken by the schedule
    w2 = _worker()
    w2.id = "w2"
    w2.status = WorkerStatus.ASLEEP
    again.set("w2", NIGHTS)
    assert not again.apply(w2, day)
    assert w2.status_requested is None


def test_an_end_past_midnight_stored_before_is_read_as_midnight(tmp_path: Path) -> None:
    """ "24:59" was taken once; the wire takes only "24:00" now, and a Manager must still start from such a store."""
    with pytest.raises(ValidationError):
        SleepSchedule(end="24:59")
    conn = connect(tmp_path / "manager.sqlite")
    old = {"schedule": {"active": True, "days": [0], "start": "22:00", "end": "24:59"}, "asleep_by_schedule": False}
    conn.execute("INSERT INTO sleep_schedules (worker_id, body) VALUES ('w', ?)", (json.dumps(old),))
    schedule = SleepSchedules(conn).get("w")
    assert schedule.end == "24:00" and schedule.asleep_at(datetime(2026, 12, 7, 23, 59))
