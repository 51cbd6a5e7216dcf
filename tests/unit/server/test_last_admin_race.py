"""Two admins demoting or disabling each other at the same instant (PostgreSQL: each counted two enabled admins
before the other's change committed, and the farm was left with none). The enabled admins are locked while they
are counted, so the second change waits for the first and is then refused as the last admin's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.admin import UserUpdate
from services.protocol.states import Role
from services.server.db.tables import UserRow
from services.server.store import admin, auth
from services.server.store.errors import Conflict
from tests.support.pg_race import postgres_writers, race

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with postgres_writers(tmp_path) as made:
        with made() as s:
            auth.add_user(s, "ana", Role.ADMIN)
            auth.add_user(s, "bo", Role.ADMIN)
            s.commit()
        yield made


def _user_id(s: Session, name: str) -> int:
    return int(s.scalar(select(UserRow.id).where(UserRow.name == name)) or 0)


@pytest.mark.parametrize("change", [UserUpdate(role=Role.ARTIST), UserUpdate(disabled=True)], ids=["demote", "disable"])
def test_two_admins_stopping_each_other_at_once_leave_one(writers: sessionmaker[Session], change: UserUpdate) -> None:
    def stop_the_other(s: Session, actor: str) -> object:
        other = "bo" if actor == "ana" else "ana"
        return admin.change_user(s, _user_id(s, other), change, actor)

    got = race(writers, stop_the_other, "ana", "bo")
    assert isinstance(got, Conflict) and "last enabled admin" in got.message, got
    with writers() as s:
        enabled = s.scalars(select(UserRow.name).where(UserRow.role == Role.ADMIN, UserRow.disabled.is_(False)))
        assert list(enabled) == ["ana"]  # the first change went through, the second was refused
