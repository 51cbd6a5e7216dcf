"""The Manager's in-memory records of the tasks it holds and the workers it serves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.protocol.farm import Utilisation
from services.protocol.host_requirements import HostCapabilities, Requirements, of_commands
from services.protocol.link import ClaimedTask
from services.protocol.states import Unavailability, WorkerStatus, WorkerStatusRequest
from services.protocol.worker_api import WorkerTaskUpdate


@dataclass
class RunLog:
    """What one run (hand-out) of a task has written to its full log here, since this Manager started (what
    log_cap.py needs to bound it)."""

    chars: int = 0  # characters appended
    marks: list[tuple[int, int]] = field(default_factory=list)  # (chunk id, chars up to and with it), in order
    cut_id: int | None = None  # the chunk that says what was left out, once something was
    cut_to: int = 0  # chars written up to the end of what was left out (0: nothing was)


@dataclass(eq=False)
class HeldTask:
    claim: ClaimedTask
    worker_id: str | None = None  # None: waiting in the ready queue
    handout: int = 0  # the number the worker sees (AssignedTask.handout): unique per hand-out at this Manager
    started: bool = False  # the worker reported it active
    failure_count: int = 0
    failed_on: set[str] = field(default_factory=set)  # workers that failed it: retry elsewhere first
    # its OpenJD step's host requirements, read once here so matching a worker stays cheap (host_match.py)
    requirements: Requirements | None = field(init=False)
    unmeetable: str | None = None  # why no worker of this Manager meets them, once said
    log: RunLog = field(default_factory=RunLog)  # what this run has written to its full log (log_cap.py)

    def __post_init__(self) -> None:
        self.requirements = of_commands(self.claim.commands)

    @property
    def id(self) -> int:
        return self.claim.id

    @property
    def sort_key(self) -> tuple[int, datetime, int, int, int]:
        c = self.claim
        return (-c.job_priority, c.job_created, c.job_id, c.index, c.id)

    def worker_time(self, u: WorkerTaskUpdate) -> datetime:
        return reported_time(u, self.claim.job_created)


def reported_time(u: WorkerTaskUpdate, job_created: datetime) -> datetime:
    """When the worker says a status change happened (its clock, UTC from the wire model), never later than now by
    ours nor earlier than the task's job was created: a worker's wrong clock must not give a run of years (or none)
    to the task, its job's times and the farm's estimates."""
    now = datetime.now(UTC)
    if u.time is None:
        return now
    earliest = job_created if job_created.tzinfo else job_created.replace(tzinfo=UTC)
    return max(min(u.time, now), min(earliest, now))


@dataclass(eq=False)
class WorkerState:
    id: str
    secret_hash: str
    name: str
    platform: str
    status: WorkerStatus
    task_types: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    software: dict[str, str] = field(default_factory=dict)
    last_seq: int = 0
    status_requested: WorkerStatusRequest | None = None
    lazy: bool = True
    current_task_id: int | None = None
    # prefetched: leased to this worker, which starts it the moment the current one ends (no round trip between
    # tasks); only ever set while current_task_id is, and only handed to a worker that is available
    next_task_id: int | None = None
    signed_on: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    last_seen_wall: datetime | None = None
    utilisation: Utilisation | None = None
    unavailable: Unavailability | None = None  # the worker's own reason for claiming nothing
    capabilities: HostCapabilities | None = None  # for OpenJD host requirements, from its sign-on
    request_id: int = 0  # the Server's number of the wrangler's status request held (worker_controls.py)
    tags_override: frozenset[str] | None = None  # tags a wrangler gave it, in place of its own
    # the process that signed on last with this identity (worker_api.INSTANCE_HEADER), from where and when
    # (workers.take_instance; kept in the store), when it was last heard from, and the warnings about others
    instance: str | None = None
    instance_peer: str = ""
    instance_since: datetime | None = None
    instance_heard: float | None = None  # monotonic; None: not since this Manager started
    instance_warned: float = float("-inf")
    instance_unwarned: int = 0

    @property
    def available(self) -> bool:
        """Signed on, awake, with nothing asked of it that forbids new work."""
        return (
            self.signed_on
            and self.status == WorkerStatus.AWAKE
            and self.status_requested
            not in (WorkerStatusRequest.ASLEEP, WorkerStatusRequest.SHUTDOWN, WorkerStatusRequest.RESTART)
        )
