"""Two requests adding the same name at the same instant (PostgreSQL, where the store's read before the insert does
not serialise them): the second gets the read's 409 naming the field, not a 500, and for users and Managers the
case of the name does not matter. SQLite's write sessions take the write lock first, so the read alone decides there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.admin import WebhookCreate
from services.protocol.states import Role
from services.server.db.tables import ManagerRow, UserRow, WebhookRow
from services.server.store import auth, farm, webhooks
from services.server.store.errors import Conflict
from tests.support.pg_race import postgres_writers, race

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with postgres_writers(tmp_path) as made:
        yield made


def _count(writers: sessionmaker[Session], table: type[UserRow | ManagerRow | WebhookRow]) -> int:
    with writers() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_a_user_named_in_other_case_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    got = race(writers, lambda s, name: auth.add_user(s, name, Role.ARTIST), "ana", "Ana")
    assert isinstance(got, Conflict) and got.field == "name" and "other case" in got.message
    assert _count(writers, UserRow) == 1


def test_a_manager_of_the_same_name_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    got = race(writers, farm.create_manager, "render-1", "render-1")
    assert isinstance(got, Conflict) and got.field == "name" and "render-1" in got.message
    assert _count(writers, ManagerRow) == 1


def test_a_manager_named_in_other_case_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    got = race(writers, farm.create_manager, "Render-A", "render-a")
    assert isinstance(got, Conflict) and got.field == "name" and "other case" in got.message
    assert _count(writers, ManagerRow) == 1


def test_a_webhook_of_the_same_name_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    def add(s: Session, name: str) -> object:
        return webhooks.create(s, WebhookCreate(name=name, url="https://example.com/hook"), "admin")

    got = race(writers, add, "chat", "chat")
    assert isinstance(got, Conflict) and got.field == "name"
    assert _count(writers, WebhookRow) == 1
