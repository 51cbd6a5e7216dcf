"""manager exclusions: Managers none of whose workers may run a job's tasks of one type

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "manager_exclusions",
        sa.Column("manager_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["manager_id"], ["managers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("manager_id", "job_id", "task_type"),
    )
    with op.batch_alter_table("manager_exclusions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_manager_exclusions_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("manager_exclusions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manager_exclusions_job_id"))
    op.drop_table("manager_exclusions")
