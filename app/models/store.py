"""The client store: the farm as the app knows it, fed by REST snapshots and the event stream. No Qt here."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from app.models.collection import Collection
from services.protocol.farm import Event, Manager, Worker
from services.protocol.jobs import Job, JobLogEntry, TaskSummary
from services.protocol.states import FINISHED_JOB_STATUSES, JobStatus, WorkerStatus

HISTORY_LENGTH = 600  # samples kept per series: ten minutes at one a second


@dataclass(slots=True)
class TaskRow:
    """A task as the tasks table shows it. A slotted record rather than a pydantic model: 100,000 of these
    take ~30 MB instead of ~150 MB, and building one from an event costs a fifth as much."""

    id: int
    job_id: int
    index: int
    name: str
    type: str
    status: str
    attempt: int
    failure_count: int
    worker_id: str | None
    worker_name: str | None
    activity: str
    steps_done: int
    steps_total: int
    updated: str
    started: str | None = None  # ISO times, as the tables show them
    finished: str | None = None
    render_seconds: float | None = None

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> TaskRow:
        intern = sys.intern  # a handful of distinct status and type strings shared by every row
        return cls(
            int(d["id"]),
            int(d["job_id"]),
            int(d["index"]),
            str(d["name"]),
            intern(str(d["type"])),
            intern(str(d["status"])),
            int(d["attempt"]),
            int(d["failure_count"]),
            d.get("worker_id"),
            d.get("worker_name"),
            str(d.get("activity", "")),
            int(d.get("steps_done", 0)),
            int(d.get("steps_total", 0)),
            str(d.get("updated", "")),
            d.get("started"),
            d.get("finished"),
            d.get("render_seconds"),
        )

    @classmethod
    def from_summary(cls, t: TaskSummary) -> TaskRow:
        return cls.from_wire(t.model_dump(mode="json"))


class Reload(Enum):
    """What the sync layer must fetch again after an event the store cannot apply by itself."""

    ALL = "all"
    TASKS = "tasks"
    JOB_LOG = "job-log"


@dataclass(slots=True)
class Sample:
    time: float
    cpu: float
    memory: float
    gpu: float | None = None  # None: the worker reports no GPU


@dataclass(slots=True)
class FarmSample:
    time: float
    busy: int
    idle: int
    offline: int


@dataclass
class FarmCounts:
    jobs: dict[str, int] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    managers: int = 0


JobFinishedCallback = Callable[[Job], None]


class ClientStore:
    """One farm's records: jobs, the selected job's tasks and log, workers, managers and their history."""

    def __init__(self) -> None:
        self.jobs: Collection[int, Job] = Collection(lambda j: j.id)
        self.tasks: Collection[int, TaskRow] = Collection(lambda t: t.id)
        self.workers: Collection[str, Worker] = Collection(lambda w: w.id)
        self.managers: Collection[int, Manager] = Collection(lambda m: m.id)
        self.selected_job_id: int | None = None
        self.job_log: list[JobLogEntry] = []
        self.last_event_id: int | None = None
        self.utilisation: dict[str, deque[Sample]] = {}
        self.farm_history: deque[FarmSample] = deque(maxlen=HISTORY_LENGTH)
        self.job_finished_listeners: list[JobFinishedCallback] = []
        self.job_log_listeners: list[Callable[[], None]] = []
        self.preview_listeners: list[Callable[[dict[str, Any]], None]] = []  # told of last-rendered events
        # the selected job has more tasks than the app holds: how many were loaded in order (sync.TASKS_SHOWN)
        self.tasks_cut: int | None = None
        self.tasks_cut_listeners: list[Callable[[], None]] = []
        # task events of the selected job that arrive while its tasks load; applied on top of the snapshot
        self._task_buffer: list[dict[str, Any]] | None = None

    # --- snapshots -------------------------------------------------------------------------------
    def load_jobs(self, jobs: Iterable[Job]) -> None:
        self.jobs.reset(jobs)

    def load_workers(self, workers: Iterable[Worker]) -> None:
        ws = list(workers)
        self.workers.reset(ws)
        for w in ws:
            self._record_utilisation(w)

    def load_managers(self, managers: Iterable[Manager]) -> None:
        self.managers.reset(managers)

    def select_job(self, job_id: int | None) -> None:
        self.selected_job_id = job_id
        self._task_buffer = None
        self.tasks.reset([])
        self.set_job_log([])
        self.set_tasks_cut(job_id, None)

    def set_tasks_cut(self, job_id: int | None, cut: int | None) -> None:
        """`cut`: the selected job's tasks held in order when it has more (None: all of them are)."""
        if job_id != self.selected_job_id or cut == self.tasks_cut:
            return
        self.tasks_cut = cut
        for cb in self.tasks_cut_listeners:
            cb()

    def begin_tasks_load(self) -> None:
        """From now until `load_tasks`, task events are kept and applied after the snapshot."""
        self._task_buffer = []

    def load_tasks(self, job_id: int, tasks: Iterable[TaskRow]) -> None:
        """The selected job's tasks whole, then the task events kept since `begin_tasks_load`."""
        self.load_task_page(job_id, tasks, first=True)
        self.end_tasks_load(job_id)

    def load_task_page(self, job_id: int, tasks: Iterable[TaskRow], *, first: bool) -> None:
        """A page of the selected job's tasks, shown as it comes (the first replaces what was shown): a job of a
        million tasks showed nothing for 71 s while all of them loaded. Task events keep waiting for
        `end_tasks_load`, so a page read before an event cannot undo it."""
        if job_id != self.selected_job_id:  # an answer for a job no longer selected is stale
            return
        if first:
            self.tasks.reset(tasks)
            return
        for task in tasks:
            self.tasks.upsert(task)

    def end_tasks_load(self, job_id: int) -> None:
        if job_id != self.selected_job_id:
            return
        buffered, self._task_buffer = self._task_buffer or [], None
        for data in buffered:
            self.tasks.upsert(TaskRow.from_wire(data))

    def set_job_log(self, entries: list[JobLogEntry]) -> None:
        self.job_log = entries
        for cb in self.job_log_listeners:
            cb()

    # --- the event stream ------------------------------------------------------------------------
    def apply_event(self, event: Event) -> Reload | None:
        self.last_event_id = event.id
        return self.apply(event.type, event.data)

    def apply(self, type_: str, data: dict[str, Any]) -> Reload | None:
        if type_ in ("job-created", "job-updated"):
            if "settings" not in data:  # job-updated leaves out the settings: they never change after submission
                known = self.jobs.get(int(data["id"]))
                data = {**data, "settings": known.settings if known is not None else {}}
            job = Job.model_validate(data)
            old = self.jobs.upsert(job)
            self._maybe_notify(old, job)
            if job.id == self.selected_job_id:
                return Reload.JOB_LOG
        elif type_ == "job-deleted":
            job_id = int(data["id"])
            self.jobs.remove(job_id)
            if job_id == self.selected_job_id:
                self.select_job(None)
        elif type_ == "job-tasks-changed":
            if int(data["job_id"]) == self.selected_job_id:
                return Reload.TASKS
        elif type_ == "task-updated":
            if int(data["job_id"]) == self.selected_job_id:
                if self._task_buffer is not None:
                    self._task_buffer.append(data)
                else:
                    self.tasks.upsert(TaskRow.from_wire(data))
        elif type_ == "worker-updated":
            worker = Worker.model_validate(data)
            self.workers.upsert(worker)
            self._record_utilisation(worker)
        elif type_ == "worker-deleted":  # a wrangler forgot it
            self.workers.remove(str(data["id"]))
            self.utilisation.pop(str(data["id"]), None)
        elif type_ == "manager-updated":
            self.managers.upsert(Manager.model_validate(data))
        elif type_ == "last-rendered":
            for cb in self.preview_listeners:
                cb(data)
        elif type_ == "manager-deleted":  # an admin removed it: its workers went with it
            manager_id = int(data["id"])
            self.managers.remove(manager_id)
            for worker in [w for w in self.workers.values() if w.manager_id == manager_id]:
                self.workers.remove(worker.id)
        elif type_ == "reset":
            return Reload.ALL
        return None

    def _maybe_notify(self, old: Job | None, job: Job) -> None:
        if old is None or old.status == job.status:
            return
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED) and old.status not in FINISHED_JOB_STATUSES:
            for cb in self.job_finished_listeners:
                cb(job)

    def _record_utilisation(self, worker: Worker) -> None:
        u = worker.utilisation
        if u is None:
            return
        series = self.utilisation.setdefault(worker.id, deque(maxlen=HISTORY_LENGTH))
        t = u.time.timestamp()
        if series and series[-1].time >= t:
            return  # the same sample again (a worker-updated for a status change)
        series.append(Sample(t, u.cpu_percent, u.memory_percent, u.gpu_percent))

    # --- derived figures -------------------------------------------------------------------------
    def counts(self) -> FarmCounts:
        c = FarmCounts(managers=len(self.managers))
        for j in self.jobs.values():
            c.jobs[j.status.value] = c.jobs.get(j.status.value, 0) + 1
        for w in self.workers.values():
            c.workers[w.status.value] = c.workers.get(w.status.value, 0) + 1
        return c

    def sample_farm(self, now: float | None = None) -> FarmSample:
        """Take one busy/idle/offline sample for the farm graph (asleep counts as idle: it can be woken)."""
        busy = idle = offline = 0
        for w in self.workers.values():
            if w.status in (WorkerStatus.OFFLINE, WorkerStatus.ERROR):
                offline += 1
            elif w.current_task_id is not None:
                busy += 1
            else:
                idle += 1
        s = FarmSample(time.time() if now is None else now, busy, idle, offline)
        self.farm_history.append(s)
        return s
