"""Per-worker sleep schedules, kept and evaluated by the Manager (as Flamenco does), in its local time.

When a schedule says sleep, the Manager asks an awake worker to sleep after its current task; when the
window ends it wakes the workers it put to sleep (never one a wrangler sent to sleep by hand).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from services.manager.model import WorkerState
from services.protocol.farm import SleepSchedule
from services.protocol.states import WorkerStatus, WorkerStatusRequest


class SleepSchedules:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.schedules: dict[str, SleepSchedule] = {}
        self.asleep_by_schedule: set[str] = set()
        for worker_id, body in conn.execute("SELECT worker_id, body FROM sleep_schedules"):
            raw = json.loads(body)
            schedule = raw["schedule"]
            if str(schedule.get("end", "")).startswith("24:"):  # "24:59" was taken before: it meant midnight too
                schedule["end"] = "24:00"
            self.schedules[worker_id] = SleepSchedule.model_validate(schedule)
            if raw.get("asleep_by_schedule"):
                self.asleep_by_schedule.add(worker_id)

    def get(self, worker_id: str) -> SleepSchedule:
        return self.schedules.get(worker_id) or SleepSchedule()

    def set(self, worker_id: str, schedule: SleepSchedule) -> None:
        """Store it (the caller holds the transaction); it is applied at the worker's next heartbeat."""
        self.schedules[worker_id] = schedule
        self._save(worker_id)

    def _save(self, worker_id: str) -> None:
        body = {
            "schedule": self.get(worker_id).model_dump(mode="json"),
            "asleep_by_schedule": worker_id in self.asleep_by_schedule,
        }
        self.conn.execute(
            "INSERT INTO sleep_schedules (worker_id, body) VALUES (?, ?)"
            " ON CONFLICT(worker_id) DO UPDATE SET body = excluded.body",
            (worker_id, json.dumps(body)),
        )

    def apply(self, w: WorkerState, local: datetime) -> bool:
        """Ask for sleep or wake-up as the schedule says now; True when the worker's request changed."""
        schedule = self.schedules.get(w.id)
        want_sleep = schedule is not None and schedule.asleep_at(local)
        ours = w.id in self.asleep_by_schedule
        if want_sleep and not ours:
            if w.status_requested is not None or w.status != WorkerStatus.AWAKE:
                return False  # a wrangler's request or an offline worker: leave it alone
            w.status_requested, w.lazy = WorkerStatusRequest.ASLEEP, True
            self.asleep_by_schedule.add(w.id)
        elif not want_sleep and ours:
            self.asleep_by_schedule.discard(w.id)
            if w.status_requested == WorkerStatusRequest.ASLEEP:
                w.status_requested = None  # it never got there
            elif w.status == WorkerStatus.ASLEEP and w.status_requested is None:
                w.status_requested, w.lazy = WorkerStatusRequest.AWAKE, True
        else:
            return False
        self._save(w.id)
        return True
