"""managers: the names of each Manager's path variables, so a job's path naming one no worker knows is refused

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable: added without rewriting the table; NULL until the Manager's next lease renewal says them
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variables", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("managers", schema=None) as batch_op:
        batch_op.drop_column("variables")
