"""A webhook call that cannot be made (a URL httpx refuses) fails alone and for good: the other calls of its
delivery round are made and settled once, and its own failure, not tried again, is the webhook's last error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.protocol.admin import SUBSCRIBABLE, WebhookCreate
from services.server import webhooks
from services.server.app import create_app
from services.server.config import ServerConfig
from services.server.db.tables import WebhookOutboxRow, WebhookRow
from services.server.store import webhooks as store
from services.server.webhook_settings import WebhookSettings
from services.server.webhooks import Deliverer
from tests.support.webhook_receiver import WebhookReceiver

UNUSABLE = ["http://☃.com/x", "http://xn--a.com/", "http://1.2.3.999/"]  # each refused by httpx, not urlsplit


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(ServerConfig(data_dir=tmp_path))  # its lifespan (and own deliverer) never starts here
    yield app
    app.state.engine.dispose()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def add_with_ping(app: FastAPI, name: str, url: str) -> int:
    """A webhook stored as it is, past the API's URL check (as one stored before the check refused it), with a
    test call queued."""
    req = WebhookCreate.model_construct(name=name, url=url, events=list(SUBSCRIBABLE[:2]), enabled=True)
    with app.state.write_sessions() as session:
        row, _secret = store.create(session, req, "admin")
        store.queue_ping(session, row.id, "admin")
        session.commit()
        return int(row.id)


async def test_a_call_httpx_refuses_does_not_keep_the_round_from_settling(
    app: FastAPI, receiver: WebhookReceiver
) -> None:
    bad = [add_with_ping(app, f"bad{i}", url) for i, url in enumerate(UNUSABLE)]
    good = add_with_ping(app, "good", receiver.url)
    deliverer = Deliverer(app.state.read_sessions, app.state.write_sessions, WebhookSettings(timeout=5))
    try:
        assert await deliverer.run_once() == 1 + len(UNUSABLE)
        # the good call is settled: not claimed again, so not sent again
        assert await deliverer.run_once() == 0
    finally:
        await deliverer.aclose()
    assert [p["event"] for p in receiver.payloads()] == ["ping"]
    with app.state.read_sessions() as session:
        outbox = {r.webhook_id: r for r in session.scalars(select(WebhookOutboxRow))}
        hooks = {r.id: r for r in session.scalars(select(WebhookRow))}
        assert good not in outbox and hooks[good].last_delivered is not None and hooks[good].last_error == ""
        for webhook_id in bad:
            # given up at once: no attempt can ever reach such a URL, and it says so where the admin looks
            assert webhook_id not in outbox
            assert "gave up on ping call" in hooks[webhook_id].last_error
            assert "the URL cannot be called (not tried again" in hooks[webhook_id].last_error
        assert "IDNA" in hooks[bad[0]].last_error


async def test_whatever_escapes_a_call_is_that_calls_failure(
    app: FastAPI, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The round's backstop, should call_once itself let something through (a bug of its own)."""
    broken = add_with_ping(app, "broken", receiver.url + "/broken")
    good = add_with_ping(app, "good", receiver.url)
    real = webhooks.call_once

    async def call_once(http: httpx.AsyncClient, call: store.Call) -> webhooks.Failure | None:
        if call.webhook_id == broken:
            raise RuntimeError("a bug")
        return await real(http, call)

    monkeypatch.setattr(webhooks, "call_once", call_once)
    deliverer = Deliverer(app.state.read_sessions, app.state.write_sessions, WebhookSettings(timeout=5))
    try:
        assert await deliverer.run_once() == 2
        assert await deliverer.run_once() == 0
    finally:
        await deliverer.aclose()
    assert len(receiver.calls) == 1 and receiver.calls[0].path == "/hooks/farm"
    with app.state.read_sessions() as session:
        assert session.get(WebhookRow, good).last_error == ""
        assert session.get(WebhookRow, broken).last_error == "RuntimeError: a bug"


async def test_a_database_out_of_reach_is_one_line_a_minute_not_a_traceback_a_round(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database away, each round (every poll, up to ten a second when woken) logged a traceback: 57 in
    38 s across three Servers. The storage's trouble is the one line the sweeps and requests give."""
    import asyncio
    import logging

    from sqlalchemy.exc import OperationalError

    from services.server.db import problems
    from services.server.store.events import EventNotifier

    rounds = 0
    ten = asyncio.Event()

    async def unreachable(self: Deliverer) -> int:
        nonlocal rounds
        rounds += 1
        if rounds == 10:
            ten.set()
        raise OperationalError("SELECT 1", None, Exception("connection refused"))

    monkeypatch.setattr(Deliverer, "run_once", unreachable)
    settings = WebhookSettings(poll_seconds=0.01)
    caplog.set_level(logging.ERROR, logger=webhooks.__name__)
    task = asyncio.create_task(
        webhooks.deliver_forever(
            None,  # type: ignore[arg-type]  # never used: every round fails first
            None,  # type: ignore[arg-type]
            EventNotifier(),
            settings,
            lambda exc: problems.describe(exc, "db"),
        )
    )
    await asyncio.wait_for(ten.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    said = [r for r in caplog.records if r.name == webhooks.__name__]
    line = "webhook delivery waits: cannot reach the database db (connection refused)"
    assert [r.getMessage() for r in said] == [line]
    assert all(r.exc_info is None for r in said)
