"""workers: utilisation history, wrangler request ids, edited tags, forgotten workers, tasks per minute

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_request_id", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("tags_requested", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("utilisation_sampled", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "worker_samples",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory", sa.Float(), nullable=False),
        sa.Column("gpu", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_worker_samples_time", "worker_samples", ["time"])
    op.create_index("ix_worker_samples_worker_time", "worker_samples", ["worker_id", "time"])
    op.create_table(
        "forgotten_workers",
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["manager_id"], ["managers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    op.create_index("ix_forgotten_workers_manager_id", "forgotten_workers", ["manager_id"])
    op.create_table(
        "farm_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=False),
        sa.Column("tasks_completed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["manager_id"], ["managers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("minute", "manager_id"),
    )


def downgrade() -> None:
    op.drop_table("farm_minutes")
    op.drop_index("ix_forgotten_workers_manager_id", table_name="forgotten_workers")
    op.drop_table("forgotten_workers")
    op.drop_index("ix_worker_samples_worker_time", table_name="worker_samples")
    op.drop_index("ix_worker_samples_time", table_name="worker_samples")
    op.drop_table("worker_samples")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("utilisation_sampled")
        batch_op.drop_column("tags_requested")
        batch_op.drop_column("status_request_id")
