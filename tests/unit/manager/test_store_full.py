"""A Manager whose store takes no write (a full disk): its link to the Server carries on, its requests answer 503,
and a restart says the disk is full rather than that the store is damaged."""

# ruff: noqa: ASYNC110  (polling what a stand-in Server saw; no event to wait on)
from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.manager import app as manager_app
from services.manager.config import ManagerConfig
from services.manager.core import ManagerCore
from services.manager.server_link import ServerLink
from services.manager.store import check, outbox
from services.manager.store.db import set_meta, transaction
from services.protocol.link import ClaimedTask, ClaimResponse, TaskUpdate, UpdateAck, UpdateBatch
from services.protocol.states import TaskStatus
from tests.unit.manager.test_core import claimed, make_core, worker
from tests.unit.manager.test_server_link import linked

FULL = "database or disk is full"
Usage = namedtuple("Usage", "total used free")


def full(*_args: object, **_kw: object) -> Any:
    raise sqlite3.OperationalError(FULL)


async def test_a_claim_the_store_cannot_keep_is_logged_once_and_the_claims_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    claims = 0

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal claims
        if request.url.path.endswith("/manager/updates"):
            seq = UpdateBatch.model_validate_json(request.content).seq
            return httpx.Response(200, content=UpdateAck(last_seq=seq, lease_seconds=60).model_dump_json())
        claims += 1
        return httpx.Response(200, content=ClaimResponse(tasks=[claimed(claims)], lease_seconds=60).model_dump_json())

    monkeypatch.setattr(ServerLink, "_backoff", lambda self, failures: 0.05)
    real = ManagerCore.add_claimed
    failing = {"left": 5}

    def add_claimed(self: ManagerCore, tasks: list[ClaimedTask]) -> None:
        if failing["left"]:
            failing["left"] -= 1
            full()
        real(self, tasks)

    monkeypatch.setattr(ManagerCore, "add_claimed", add_claimed)
    caplog.set_level(logging.ERROR, logger="services.manager.server_link")
    async with linked(tmp_path, server, workers=lambda core: worker(core, "w1")) as (core, _config):
        async with asyncio.timeout(10):
            while not core.tasks:
                await asyncio.sleep(0.05)
    full_lines = [r for r in caplog.records if "is full" in r.getMessage()]
    # not one per failed claim (the update batches that went through in between count as a recovery)
    assert 1 <= len(full_lines) < 5, [r.getMessage() for r in caplog.records]
    assert "not all stored" in full_lines[0].getMessage()


def _renewals(batches: list[UpdateBatch]) -> Callable[[httpx.Request], httpx.Response]:
    """A Server that keeps the batches it gets and has taken up to seq 6; leases of 2 s."""

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/manager/updates"):
            batches.append(UpdateBatch.model_validate_json(request.content))
            return httpx.Response(200, content=UpdateAck(last_seq=6, lease_seconds=2).model_dump_json())
        return httpx.Response(200, content=ClaimResponse(tasks=[], lease_seconds=2).model_dump_json())

    return server


def _holding_task_7(
    then: Callable[[sqlite3.Connection], None] = lambda _conn: None,
) -> Callable[[ManagerCore], None]:
    """A Manager holding task 7, synced with the Server up to seq 6, nothing waiting (until `then` adds some)."""

    def held(core: ManagerCore) -> None:
        core.workers.register("s", "s", "w1", "linux")
        core.add_claimed([claimed(7)])
        with transaction(core.conn):
            set_meta(core.conn, "synced", "1")
            set_meta(core.conn, "next_seq", "7")
            core.conn.execute("DELETE FROM outbox")
            core.conn.execute("DELETE FROM batches")
            then(core.conn)

    return held


async def test_leases_are_renewed_while_the_store_takes_no_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No new batch can be numbered (a write): a repeat of the last one the Server took renews the leases, so the
    tasks the workers run here are not handed out again elsewhere; once the store writes again, batches go on."""
    batches: list[UpdateBatch] = []
    server, held = _renewals(batches), _holding_task_7()

    monkeypatch.setattr(ServerLink, "_backoff", lambda self, failures: 0.05)
    real_new_seq, real_next = outbox.new_seq, outbox.next_batch
    monkeypatch.setattr(outbox, "new_seq", full)
    monkeypatch.setattr(outbox, "next_batch", full)
    async with linked(tmp_path, server, workers=held, keepalive=0.5, push_interval=0.01) as (_core, _config):
        async with asyncio.timeout(10):
            while len(batches) < 2:
                await asyncio.sleep(0.05)
        assert {b.seq for b in batches} == {6} and all(b.held_task_ids == [7] for b in batches)
        assert not any(b.task_updates for b in batches)
        monkeypatch.setattr(outbox, "new_seq", real_new_seq)
        monkeypatch.setattr(outbox, "next_batch", real_next)
        async with asyncio.timeout(10):
            while not any(b.seq == 7 for b in batches):
                await asyncio.sleep(0.05)


async def test_a_finished_tasks_lease_is_renewed_while_its_report_waits_in_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that finished just before the store filled had its report waiting in the outbox, no longer held in
    memory: the renewals named only the held ones, its lease ran out at the Server, and the finished work ran again
    (found by a fault-injection re-run). The tasks whose reports wait are renewed too."""
    batches: list[UpdateBatch] = []

    def waiting_reports(conn: sqlite3.Connection) -> None:
        # task 8 finished here (no longer held), task 9's report is frozen in a batch not yet taken
        outbox.enqueue(conn, [TaskUpdate(task_id=8, attempt=1, status=TaskStatus.COMPLETED)])
        body = outbox._encode([TaskUpdate(task_id=9, attempt=1, status=TaskStatus.COMPLETED)])
        conn.execute("INSERT INTO batches (seq, body) VALUES (7, ?)", (body,))

    server, held = _renewals(batches), _holding_task_7(waiting_reports)

    monkeypatch.setattr(ServerLink, "_backoff", lambda self, failures: 0.05)
    monkeypatch.setattr(outbox, "new_seq", full)
    monkeypatch.setattr(outbox, "next_batch", full)
    async with linked(tmp_path, server, workers=held, keepalive=0.5, push_interval=0.01) as (core, _config):
        async with asyncio.timeout(10):
            while not batches:
                await asyncio.sleep(0.05)
        assert list(core.tasks) == [7]
    assert batches[0].seq == 6 and batches[0].held_task_ids == [7, 8, 9]


async def test_a_link_that_stops_stops_the_manager_and_shutdown_still_closes_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: ServerLink) -> None:
        raise RuntimeError("a bug in the sweep")

    monkeypatch.setattr(ServerLink, "_sweep", broken)
    app = manager_app.create_app(
        ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, registration_secret="s")
    )
    stopped = asyncio.Event()
    app.state.stop_serving = stopped.set
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(stopped.wait(), 5)
        conn = app.state.core.conn
    assert app.state.failed
    assert any(
        "a bug in the sweep" in r.getMessage() or r.exc_info for r in caplog.records if r.levelname == "CRITICAL"
    )
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")  # closed


async def test_a_request_on_a_full_store_answers_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = manager_app.create_app(
        ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, registration_secret="s")
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            r = await client.post(
                "/api/v1/worker/register", json={"registration_secret": "s", "name": "w1", "platform": "linux"}
            )
            assert r.status_code == 200, r.text
            auth = (r.json()["worker_id"], r.json()["secret"])
            monkeypatch.setattr(app.state.core, "sign_on", full)
            body = {"name": "w1", "platform": "linux", "task_types": ["exec"]}
            caplog.set_level(logging.ERROR, logger="services.manager.server_link")
            for _ in range(20):  # every worker's every request, on a full disk
                r = await client.post("/api/v1/worker/sign-on", json=body, auth=auth)
    assert r.status_code == 503, r.text
    assert "is full" in r.json()["detail"]
    assert float(r.headers["Retry-After"]) > 0
    # one line, not one per refused request (they grew the log with the number of workers)
    assert len([rec for rec in caplog.records if "requests are answered 503" in rec.getMessage()]) == 1


def test_a_store_on_a_full_disk_is_not_called_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = sqlite3.connect(check.store_path(tmp_path))
    conn.execute("CREATE TABLE meta (key TEXT)")
    conn.close()
    (tmp_path / check.MARKER_NAME).write_text("x")

    def io_error(*_args: object, **_kw: object) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite3, "connect", io_error)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: Usage(16 << 20, 16 << 20, 0))
    for fresh in (False, True):
        with pytest.raises(check.StoreUnusable) as caught:
            check.check_store(tmp_path, fresh=fresh)
        assert "is full" in str(caught.value) and "--fresh-store" not in str(caught.value)
        assert check.store_path(tmp_path).exists()  # not set aside: it is fine once space is freed
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: Usage(16 << 30, 1 << 30, 15 << 30))
    with pytest.raises(check.StoreUnusable, match="disk I/O error") as caught:
        check.check_store(tmp_path, fresh=False)
    assert "damaged" not in str(caught.value) and "--fresh-store" not in str(caught.value)


def test_a_damaged_store_is_still_called_damaged(tmp_path: Path) -> None:
    check.store_path(tmp_path).write_bytes(b"not a database at all" * 100)
    (tmp_path / check.MARKER_NAME).write_text("x")
    with pytest.raises(check.StoreUnusable, match=r"is damaged.*--fresh-store"):
        check.check_store(tmp_path, fresh=False)


class CommitFails:
    """The store's connection, whose next COMMIT fails as a full disk makes it fail (after every statement)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.failures = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError(FULL)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_claim_whose_commit_fails_is_not_held(tmp_path: Path) -> None:
    """Held in memory and run, but not in the store: a restarted Manager would not know it, its workers' reports
    would be refused, and the Server would hand it out again when its lease ran out."""
    core = make_core(tmp_path)
    conn = CommitFails(core.conn)
    core.conn = conn  # type: ignore[assignment]
    conn.failures = 1
    with pytest.raises(sqlite3.OperationalError):
        core.add_claimed([claimed(5)])
    assert not conn.in_transaction  # rolled back: the next write does not join what the failed COMMIT left open
    assert 5 not in core.tasks and not core.ready
    core.add_claimed([claimed(5)])
    assert 5 in core.tasks


async def test_orders_in_an_answer_are_applied_though_the_store_fails_after_the_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Server forgets one-shot orders (a wrangler's cancel) as it answers: a store write failing after the
    push lost them, and the canceled task ran to its end."""
    answered = 0

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        if request.url.path.endswith("/manager/updates"):
            seq = UpdateBatch.model_validate_json(request.content).seq
            answered += 1
            cancel = [7] if answered == 1 else []
            ack = UpdateAck(last_seq=seq, lease_seconds=60, cancel_task_ids=cancel)
            return httpx.Response(200, content=ack.model_dump_json())
        return httpx.Response(200, content=ClaimResponse(tasks=[], lease_seconds=60).model_dump_json())

    def held(core: ManagerCore) -> None:
        core.workers.register("s", "s", "w1", "linux")
        core.add_claimed([claimed(7)])

    real = outbox.acknowledge
    failing = {"left": 1}

    def acknowledge(conn: sqlite3.Connection, seq: int) -> None:
        if failing["left"]:
            failing["left"] -= 1
            full()
        real(conn, seq)

    monkeypatch.setattr(ServerLink, "_backoff", lambda self, failures: 0.05)
    monkeypatch.setattr(outbox, "acknowledge", acknowledge)
    async with linked(tmp_path, server, workers=held, push_interval=0.01) as (core, _config):
        async with asyncio.timeout(10):
            while 7 in core.tasks or answered < 2:
                await asyncio.sleep(0.05)
    assert failing["left"] == 0


async def test_no_tasks_are_claimed_while_the_store_cannot_keep_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim the store could not keep left its tasks leased here until the lease ran out, and the claims went
    on: the whole queue ended up held by a Manager that could run none of it (a fault-injection audit saw 161).
    After one failed claim, the next waits until a small write goes through."""
    from services.manager import store_health

    claims: list[int] = []
    disk = {"full": True}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/manager/updates"):
            seq = UpdateBatch.model_validate_json(request.content).seq
            return httpx.Response(200, content=UpdateAck(last_seq=seq, lease_seconds=60).model_dump_json())
        claims.append(len(claims) + 1)
        return httpx.Response(
            200, content=ClaimResponse(tasks=[claimed(len(claims))], lease_seconds=60).model_dump_json()
        )

    monkeypatch.setattr(ServerLink, "_backoff", lambda self, failures: 0.05)
    real_add = ManagerCore.add_claimed

    def add_claimed(self: ManagerCore, tasks: list[ClaimedTask]) -> None:
        if disk["full"]:
            full()
        real_add(self, tasks)

    def probe_set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        if disk["full"]:
            full()
        set_meta(conn, key, value)

    monkeypatch.setattr(ManagerCore, "add_claimed", add_claimed)
    monkeypatch.setattr(store_health, "set_meta", probe_set_meta)
    async with linked(tmp_path, server, workers=lambda core: worker(core, "w1")) as (core, _config):
        async with asyncio.timeout(10):
            while not claims:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # some twenty back-offs
        # not one a back-off (a keep-alive batch that goes through says the store writes, and one more is tried)
        assert len(claims) <= 3, claims
        disk["full"] = False
        async with asyncio.timeout(10):
            while not core.tasks:
                await asyncio.sleep(0.05)


def test_a_store_that_takes_no_write_gives_back_the_space_its_write_ahead_log_holds(tmp_path: Path) -> None:
    """No commit goes through on a full disk, so SQLite never copies its write-ahead log into the store, which
    kept 4 MB of the disk for a store of 100 KB (a fault-injection audit's Manager stayed full after space was
    freed: the log took it back). The link cuts the log when the store fails."""
    core = make_core(tmp_path)
    core.add_claimed([claimed(i, index=i) for i in range(1, 400)])
    wal = tmp_path / "m.sqlite-wal"
    assert wal.stat().st_size > 100_000
    link = ServerLink(core, httpx_client_stub())
    link.store.failed(sqlite3.OperationalError(FULL), "updates wait")
    assert wal.stat().st_size == 0
    assert len(core.tasks) == 399  # nothing lost: the log's pages are in the store now


def httpx_client_stub() -> Any:
    from services.protocol.manager_client import ManagerClient

    return ManagerClient("http://127.0.0.1:1", "t")


def test_a_start_on_a_full_disk_does_not_fail_noting_its_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """From a fault-injection audit: every start rewrote linked-to.json, so a Manager started on a full disk died
    there with a traceback (docs/manager.md says it waits for room) and left an empty temporary file each time."""
    check.check_owner(tmp_path, "http://s:8470", "t", fresh=False)  # the first start, with room
    before = (tmp_path / check.LINK_NAME).read_text()

    def no_room(*_args: object, **_kw: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_room)
    check.check_owner(tmp_path, "http://s:8470", "t", fresh=False)  # the same: nothing to write
    with caplog.at_level(logging.WARNING):
        check.check_owner(tmp_path, "http://moved:8470", "t", fresh=False)  # a move: noted at a later start
    assert "No space left on device" in caplog.text
    assert (tmp_path / check.LINK_NAME).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [check.LINK_NAME]


def test_a_write_ahead_log_that_cannot_be_cut_is_said_in_the_stores_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """From a fault-injection audit: on a disk full to the last block the cut failed (the copy needs room in the
    store's file) and nothing said so; the 4 MB the docs promised back stayed taken."""
    from services.manager.store_health import StoreHealth

    class NoRoom:
        in_transaction = False

        def execute(self, sql: str) -> Any:
            raise sqlite3.OperationalError(FULL)

    (tmp_path / (check.STORE_NAME + "-wal")).write_bytes(b"x" * 4096)
    health = StoreHealth(lambda: NoRoom(), tmp_path)  # type: ignore[arg-type, return-value]
    with caplog.at_level(logging.ERROR):
        health.failed(sqlite3.OperationalError(FULL), "updates wait")
    assert f"its write-ahead log (4 KB) could not be copied into the store to give the space back: {FULL}" in (
        caplog.text
    )
