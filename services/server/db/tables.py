"""SQLAlchemy tables of the Server. Indexes follow the scheduler's and the lists' queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


# `ana` and `Ana` would be two people who look the same in every list: one name whatever its case (ASCII only)
Index("ux_users_name_lower", func.lower(UserRow.name), unique=True)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of a 256-bit token
    created: Mapped[datetime]
    last_used: Mapped[datetime | None]
    expires: Mapped[datetime | None]  # None: until revoked


class ManagerRow(Base):
    __tablename__ = "managers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime]
    last_seen: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # last update batch applied
    client_url: Mapped[str | None] = mapped_column(String(500))  # where users read full task logs from it
    # the names of its path variables as it last said them (None: not said): a job's path may name only these
    variables: Mapped[list[Any] | None] = mapped_column(JSON)


# as for users: `Render-A` and `render-a` would look like one Manager in every list (ASCII names)
Index("ux_managers_name_lower", func.lower(ManagerRow.name), unique=True)


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(Integer, default=50)
    submitter: Mapped[str] = mapped_column(String(64))
    tags: Mapped[list[Any]]
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))
    depends_on: Mapped[list[Any]]
    max_task_failures: Mapped[int] = mapped_column(Integer, default=3)
    on_task_failure: Mapped[str] = mapped_column(String(16), default="fail-job")
    status: Mapped[str] = mapped_column(String(24))
    activity: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime]
    updated: Mapped[datetime]
    # denormalised counts, kept by store.tasks when a task changes status, so lists never count tasks
    tasks_total: Mapped[int] = mapped_column(Integer, default=0)
    tasks_completed: Mapped[int] = mapped_column(Integer, default=0)
    tasks_failed: Mapped[int] = mapped_column(Integer, default=0)
    tasks_canceled: Mapped[int] = mapped_column(Integer, default=0)
    tasks_active: Mapped[int] = mapped_column(Integer, default=0)  # held by a Manager: assigned, active, soft-failed
    # time figures, kept by store.task_times like the counts above, so lists never aggregate tasks
    task_types: Mapped[list[Any]] = mapped_column(JSON, default=list)  # of its tasks: which workers can run it
    started: Mapped[datetime | None]  # its first task's start
    finished: Mapped[datetime | None]  # the latest end of one of its tasks
    tasks_timed: Mapped[int] = mapped_column(Integer, default=0)  # completed tasks with a render time
    task_seconds_total: Mapped[float] = mapped_column(Float, default=0.0)  # their render times added up
    task_seconds_max: Mapped[float] = mapped_column(Float, default=0.0)
    tasks_running: Mapped[int] = mapped_column(Integer, default=0)  # active tasks with a start time
    running_since_total: Mapped[float] = mapped_column(Float, default=0.0)  # their starts, Unix seconds, added up
    # the submission's Idempotency-Key and a digest of its body (store/submit_keys.py): a repeat gets this job
    submit_key: Mapped[str | None] = mapped_column(String(128))
    submit_digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_jobs_updated_id", "updated", "id"),
        Index("ix_jobs_created_id", "created", "id"),
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_submitter_id", "submitter", "id"),
        # the scheduler's order among runnable jobs
        Index("ix_jobs_sched", "status", "priority", "created", "id"),
        # one job per key and submitter, also when two Servers take the same repeat at once (NULLs never clash)
        Index("ux_jobs_submit_key", "submitter", "submit_key", unique=True),
    )


class CanceledSubmitKeyRow(Base):
    """The key of a job a wrangler canceled while its tasks were being stored, kept after the job is removed, so
    a client still repeating that submission is told so instead of building it again (store/submit_keys.py)."""

    __tablename__ = "canceled_submit_keys"
    submitter: Mapped[str] = mapped_column(String(64), primary_key=True)
    submit_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId)
    canceled: Mapped[datetime]


class TaskRow(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # order within the job
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    commands: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    # number of dependencies not yet completed: a task is runnable only at 0
    deps_pending: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, default=1)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # fencing token, +1 per hand-out
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    worker_name: Mapped[str | None] = mapped_column(String(64))
    activity: Mapped[str] = mapped_column(Text, default="")
    log_tail: Mapped[list[Any]]
    lease_expires: Mapped[datetime | None]
    started: Mapped[datetime | None]  # this attempt's start on its worker
    finished: Mapped[datetime | None]  # and its end (completed, failed, canceled)
    render_seconds: Mapped[float | None] = mapped_column(Float)  # finished - started, by the worker's clock
    created: Mapped[datetime]
    updated: Mapped[datetime]

    __table_args__ = (
        Index("ix_tasks_job_index", "job_id", "index"),
        Index("ix_tasks_job_status", "job_id", "status"),
        # runnable tasks only: the scheduler's cost does not grow with finished tasks
        Index(
            "ix_tasks_runnable",
            "job_id",
            "index",
            sqlite_where=text("status = 'queued' AND deps_pending = 0"),
            postgresql_where=text("status = 'queued' AND deps_pending = 0"),
        ),
        Index(
            "ix_tasks_leased",
            "lease_expires",
            sqlite_where=text("lease_expires IS NOT NULL"),
            postgresql_where=text("lease_expires IS NOT NULL"),
        ),
        Index("ix_tasks_manager_status", "manager_id", "status"),
    )


class TaskDependencyRow(Base):
    __tablename__ = "task_dependencies"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_task_deps_reverse", "depends_on_id"),)


class JobLogRow(Base):
    __tablename__ = "job_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime]
    user: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class WorkerRow(Base):
    """A worker as its Manager last reported it."""

    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32))
    task_types: Mapped[list[Any]]
    tags: Mapped[list[Any]]
    software: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    status_requested: Mapped[str | None] = mapped_column(String(16))
    status_request_lazy: Mapped[bool] = mapped_column(Boolean, default=True)
    current_task_id: Mapped[int | None] = mapped_column(BigInteger)
    next_task_id: Mapped[int | None] = mapped_column(BigInteger)  # prefetched: runs right after the current one
    last_seen: Mapped[datetime | None]
    utilisation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    unavailable: Mapped[str | None] = mapped_column(String(32))
    # for OpenJD host requirements: {"attributes": {...}, "amounts": {...}} (protocol/host_requirements.py)
    capabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # numbers the wrangler's requests: the Manager echoes the one it finished (store/worker_admin.py)
    status_request_id: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # edited tags its Manager has not confirmed yet
    tags_requested: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    utilisation_sampled: Mapped[datetime | None]  # the time of its newest row in worker_samples
    # the Server's time of its Manager's last report of it as not offline (store/silent.py)
    reported: Mapped[datetime | None]


class WorkerSampleRow(Base):
    """A worker's utilisation history, at most one sample per `sample_seconds`, kept for a day."""

    __tablename__ = "worker_samples"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    worker_id: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(index=True)
    cpu: Mapped[float] = mapped_column(Float)
    memory: Mapped[float] = mapped_column(Float)
    gpu: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_worker_samples_worker_time", "worker_id", "time"),)


class ForgottenWorkerRow(Base):
    """A worker a wrangler forgot: its Manager is told to forget it too, and its reports are ignored meanwhile."""

    __tablename__ = "forgotten_workers"
    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime]


class FarmMinuteRow(Base):
    """Tasks completed per minute and Manager (one row per Manager, so Managers never wait for each other)."""

    __tablename__ = "farm_minutes"
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), primary_key=True)
    tasks_completed: Mapped[int] = mapped_column(Integer, default=0)


class EventRow(Base):
    """The event stream, kept for a retention window so clients can resume with Last-Event-ID."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]


class PendingInstructionRow(Base):
    """Something the Server wants of a Manager, delivered in the answer to its next update batch."""

    __tablename__ = "manager_instructions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # cancel-task | upload-log | reset-blocklist | reprioritize
    task_id: Mapped[int] = mapped_column(BigInteger)  # the job's id for reset-blocklist and reprioritize
    created: Mapped[datetime]


class LogUploadAskedRow(Base):
    """A Manager was asked to upload a task's full log: its upload is taken for a while after (store/log_copies.py);
    one nobody asked for is refused, so a Manager cannot fill the Server's disk with logs."""

    __tablename__ = "log_uploads_asked"
    task_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    manager_id: Mapped[int] = mapped_column(Integer)
    asked: Mapped[datetime] = mapped_column(index=True)


class ManagerExclusionRow(Base):
    """A Manager none of whose workers may run a job's tasks of one type (all of them blocklisted for it).

    Its claims skip those tasks; a requeue of the job forgets the exclusion, as it resets the blocklists.
    """

    __tablename__ = "manager_exclusions"
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True)
    task_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[datetime]


class LastRenderedRow(Base):
    """The latest preview of a job (scope "job", owner = the job id) or of a worker (scope "worker", owner = the
    worker id), as a Manager passed it on: a small JPEG and where the full frame is."""

    __tablename__ = "last_rendered"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int] = mapped_column(BigInteger)
    worker_id: Mapped[str] = mapped_column(String(64))
    worker_name: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime]
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frame_path: Mapped[str] = mapped_column(Text)
    frame_width: Mapped[int | None] = mapped_column(Integer)
    frame_height: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger, default=1)  # +1 per new image: clients fetch on a change
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BlocklistRow(Base):
    """How often a worker failed a job's tasks of one type, as its Manager (which decides) reports it.

    `clear_requested`: a wrangler cleared it; the Manager is told with its next update answer, then it goes.
    """

    __tablename__ = "blocklist"
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), index=True)
    worker_name: Mapped[str] = mapped_column(String(64), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[int] = mapped_column(Integer, default=1)
    clear_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    updated: Mapped[datetime]


class WebhookRow(Base):
    """A URL the Server calls on job events (services/server/webhooks.py). Its calls wait in `webhook_outbox`,
    written in the transaction of the change they announce, so a Server that stops before calling loses none."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]]
    secret: Mapped[str] = mapped_column(String(100))  # signs each call's body (HMAC-SHA256)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    last_delivered: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class WebhookOutboxRow(Base):
    """One call still to make. `claimed_until` keeps other deliverers (other Server processes) off it while
    one calls; a deliverer that died mid-call leaves a claim that simply runs out."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the idempotency key the receiver sees
    event: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    created: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_webhook_outbox_due", "next_attempt", "id"),)


class IdFloorRow(Base):
    """The highest id a table ever gave, where it may have been deleted since (SQLite gives the highest id in
    the table plus one, so a deleted job's ids would come back): new ids are above it (store/id_floors.py)."""

    __tablename__ = "id_floors"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
