"""log_uploads_asked: the task logs a Manager was asked to upload, so an upload nobody asked for is refused

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_uploads_asked",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("manager_id", sa.Integer(), nullable=False),
        sa.Column("asked", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_log_uploads_asked_asked", "log_uploads_asked", ["asked"])


def downgrade() -> None:
    op.drop_index("ix_log_uploads_asked_asked", table_name="log_uploads_asked")
    op.drop_table("log_uploads_asked")
