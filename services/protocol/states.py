"""The status vocabularies of jobs, tasks, workers and managers, and user roles."""

from enum import StrEnum


class JobStatus(StrEnum):
    UNDER_CONSTRUCTION = "under-construction"
    QUEUED = "queued"
    ACTIVE = "active"
    PAUSE_REQUESTED = "pause-requested"
    PAUSED = "paused"
    CANCEL_REQUESTED = "cancel-requested"
    CANCELED = "canceled"
    REQUEUEING = "requeueing"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"  # leased to a Manager
    ACTIVE = "active"  # running on a Worker
    COMPLETED = "completed"
    SOFT_FAILED = "soft-failed"
    FAILED = "failed"
    CANCELED = "canceled"
    PAUSED = "paused"


class WorkerStatus(StrEnum):
    STARTING = "starting"
    AWAKE = "awake"
    ASLEEP = "asleep"
    OFFLINE = "offline"
    ERROR = "error"


class WorkerStatusRequest(StrEnum):
    """A change a wrangler asks of a worker; it rides on the worker's next heartbeat answer."""

    AWAKE = "awake"
    ASLEEP = "asleep"
    SHUTDOWN = "shutdown"
    RESTART = "restart"


class Unavailability(StrEnum):
    """Why an awake worker claims no work (set on the workstation by the tray, or by a sleep schedule)."""

    PAUSED_BY_USER = "paused-by-user"
    USER_ACTIVE = "user-active"
    OUTSIDE_HOURS = "outside-hours"
    ASLEEP = "asleep"


class ManagerStatus(StrEnum):
    NEVER_SEEN = "never-seen"
    ONLINE = "online"
    OFFLINE = "offline"


class Role(StrEnum):
    ADMIN = "admin"
    WRANGLER = "wrangler"
    ARTIST = "artist"


FINISHED_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.CANCELED, JobStatus.FAILED})
FINISHED_TASK_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED})
RUNNABLE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.ACTIVE})
