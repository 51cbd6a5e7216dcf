"""Two admins demoting or disabling each other at the same instant (PostgreSQL: each counted two enabled admins
before the other's change committed, and the farm was left with none). The enabled admins are locked while they
are counted, so the second change waits for the first and is then refused as the last admin's. Two revokes of
one token at once, the same way: the second waits and finds it gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.admin import UserUpdate, WebhookCreate
from services.protocol.states import Role
from services.server.db.tables import UserRow
from services.server.store import admin, auth, farm, webhooks
from services.server.store.errors import Conflict, NotFound
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


def test_two_revokes_of_one_token_at_once_are_one_204_and_one_404(writers: sessionmaker[Session]) -> None:
    """From a hostile-input audit: both answered 204 (each read the row before the other deleted it)."""
    with writers() as s:
        row, _secret = auth.create_token(s, s.get_one(UserRow, _user_id(s, "ana")), "laptop")
        s.commit()
        token_id = row.id
    got = race(writers, lambda s, _who: auth.revoke_token(s, token_id), "ana", "bo")
    assert isinstance(got, NotFound) and got.field == "id", got


@pytest.mark.parametrize("what", ["manager", "webhook"])
def test_two_removes_of_one_manager_or_webhook_at_once_are_one_removal_and_one_404(
    writers: sessionmaker[Session], what: str
) -> None:
    """The second failed inside its delete (no row left to delete: a 500) or answered 204 as well."""
    with writers() as s:
        if what == "manager":
            made: int = farm.create_manager(s, "room-a")[0].id
        else:
            made = webhooks.create(s, WebhookCreate(name="chat", url="https://chat.example/hook"), "ana")[0].id
        s.commit()

    def remove(s: Session, _who: str) -> None:
        if what == "manager":
            admin.remove_manager(s, made, "ana")
        else:
            webhooks.remove(s, made)

    got = race(writers, remove, "ana", "bo")
    assert isinstance(got, NotFound) and got.field == "id", got
