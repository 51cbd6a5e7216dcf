"""Two requests adding the same name at the same instant (PostgreSQL, where the store's read before the insert does
not serialise them): the second gets the read's 409 naming the field, not a 500, and for users the case of the name
does not matter. SQLite's write sessions take the write lock first, so the read alone decides there."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.admin import WebhookCreate
from services.protocol.states import Role
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import ManagerRow, UserRow, WebhookRow
from services.server.store import auth, farm, webhooks
from services.server.store.errors import Conflict
from tests.support.databases import database_url

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_url("postgres", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield sessionmaker(engine)
        engine.dispose()


def _race(writers: sessionmaker[Session], add: Callable[[Session, str], object], first: str, second: str) -> object:
    """`first` is added and not yet committed when `second`'s request reads (and finds nothing); what did the
    second get once the first committed?"""
    outcome: list[object] = []

    def later() -> None:
        with writers() as s:
            try:
                add(s, second)
                s.commit()
                outcome.append("added")
            except Exception as exc:  # the outcome is what the test looks at
                outcome.append(exc)

    with writers() as s:
        add(s, first)
        thread = threading.Thread(target=later)
        thread.start()
        thread.join(0.5)  # its insert now waits on this transaction's uncommitted name
        assert thread.is_alive()
        s.commit()
    thread.join(10)
    return outcome[0]


def _count(writers: sessionmaker[Session], table: type[UserRow | ManagerRow | WebhookRow]) -> int:
    with writers() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_a_user_named_in_other_case_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    got = _race(writers, lambda s, name: auth.add_user(s, name, Role.ARTIST), "ana", "Ana")
    assert isinstance(got, Conflict) and got.field == "name" and "other case" in got.message
    assert _count(writers, UserRow) == 1


def test_a_manager_of_the_same_name_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    got = _race(writers, farm.create_manager, "render-1", "render-1")
    assert isinstance(got, Conflict) and got.field == "name" and "render-1" in got.message
    assert _count(writers, ManagerRow) == 1


def test_a_webhook_of_the_same_name_at_the_same_instant_is_a_conflict(writers: sessionmaker[Session]) -> None:
    def add(s: Session, name: str) -> object:
        return webhooks.create(s, WebhookCreate(name=name, url="https://example.com/hook"), "admin")

    got = _race(writers, add, "chat", "chat")
    assert isinstance(got, Conflict) and got.field == "name"
    assert _count(writers, WebhookRow) == 1
