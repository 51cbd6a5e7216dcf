"""jobs: the submission's Idempotency-Key and body digest, one job per key and submitter; the keys of jobs
canceled while they were being stored, kept after their removal

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable columns: SQLite and PostgreSQL add them without rewriting the table
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submit_key", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("submit_digest", sa.String(length=64), nullable=True))
    op.create_index("ux_jobs_submit_key", "jobs", ["submitter", "submit_key"], unique=True)
    op.create_table(
        "canceled_submit_keys",
        sa.Column("submitter", sa.String(length=64), nullable=False),
        sa.Column("submit_key", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("canceled", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("submitter", "submit_key"),
    )


def downgrade() -> None:
    op.drop_table("canceled_submit_keys")
    op.drop_index("ux_jobs_submit_key", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("submit_digest")
        batch_op.drop_column("submit_key")
