"""SQLAlchemy tables of the Server. Indexes follow the scheduler's and the lists' queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
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

    __table_args__ = (
        Index("ix_jobs_updated_id", "updated", "id"),
        Index("ix_jobs_created_id", "created", "id"),
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_submitter_id", "submitter", "id"),
        # the scheduler's order among runnable jobs
        Index("ix_jobs_sched", "status", "priority", "created", "id"),
    )


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


class ManagerExclusionRow(Base):
    """A Manager none of whose workers may run a job's tasks of one type (all of them blocklisted for it).

    Its claims skip those tasks; a requeue of the job forgets the exclusion, as it resets the blocklists.
    """

    __tablename__ = "manager_exclusions"
    manager_id: Mapped[int] = mapped_column(ForeignKey("managers.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True)
    task_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[datetime]
