"""Task start and end times, render times, and the job's time figures

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JOB_COLUMNS = (
    "task_types",
    "started",
    "finished",
    "tasks_timed",
    "task_seconds_total",
    "task_seconds_max",
    "tasks_running",
    "running_since_total",
)


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("render_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        # jobs of earlier versions: no task types known (any worker counts), no times
        batch_op.add_column(sa.Column("task_types", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("started", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("tasks_timed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("task_seconds_total", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("task_seconds_max", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("tasks_running", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("running_since_total", sa.Float(), nullable=False, server_default="0"))
    # the defaults were for the rows already there; the Server always writes these columns
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in _JOB_COLUMNS:
            if name not in ("started", "finished"):
                batch_op.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in reversed(_JOB_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("render_seconds")
        batch_op.drop_column("finished")
        batch_op.drop_column("started")
