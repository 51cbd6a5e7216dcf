"""users: one name whatever its case, by a unique index on lower(name)

The store refused `Ana` beside `ana` by a read before the insert, which two admins adding both at the same
instant on PostgreSQL both pass. A farm that has such a pair from before the rule keeps it (renaming a user would
break their logins): the index is left out there, with a warning naming them, and the read still applies.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 15:10:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tablao.server.migrations")


def upgrade() -> None:
    pairs = op.get_bind().execute(
        sa.text("SELECT lower(name), count(*) FROM users GROUP BY lower(name) HAVING count(*) > 1")
    )
    clashing = sorted(str(name) for name, _ in pairs)
    if clashing:
        log.warning(
            "users whose names differ only in case (%s): left as they are; the index that keeps new ones out is "
            "not made, the Server's check before each new user still is",
            ", ".join(clashing),
        )
        return
    op.create_index("ux_users_name_lower", "users", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("ux_users_name_lower", table_name="users", if_exists=True)
