"""managers: one name whatever its case, by a unique index on lower(name) (as 0013 for users)

`Render-A` and `render-a` could both be registered: two Managers that look the same in every list. The store now
refuses the second by a read before the insert; the index keeps out the one two admins adding both at the same
instant on PostgreSQL would let through. A farm that has such a pair from before keeps it (which to rename or remove is
its admin's choice): the index is left out there, with a warning naming them, and the read still applies.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 07:30:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tablao.server.migrations")


def upgrade() -> None:
    pairs = op.get_bind().execute(
        sa.text("SELECT lower(name), count(*) FROM managers GROUP BY lower(name) HAVING count(*) > 1")
    )
    clashing = sorted(str(name) for name, _ in pairs)
    if clashing:
        log.warning(
            "Managers whose names differ only in case (%s): left as they are; the index that keeps new ones out is "
            "not made, the Server's check before each new Manager still is",
            ", ".join(clashing),
        )
        return
    op.create_index("ux_managers_name_lower", "managers", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_managers_name_lower", table_name="managers", if_exists=True)
