"""The Manager's worker registry on a real SQLite file: registration, authentication, reports, silence."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from services.manager.config import ManagerConfig
from services.manager.errors import Unauthorized
from services.manager.store.db import connect
from services.manager.workers import WorkerRegistry
from services.protocol.states import WorkerStatus


def registry(tmp_path: Path) -> WorkerRegistry:
    config = ManagerConfig(server_url="http://127.0.0.1:1", token="t", data_dir=tmp_path, worker_timeout=5.0)
    return WorkerRegistry(connect(tmp_path / "m.sqlite"), config)


def test_register_needs_the_registration_secret(tmp_path: Path) -> None:
    workers = registry(tmp_path)
    with pytest.raises(Unauthorized) as exc:
        workers.register("wrong", "right", "w", "linux")
    assert exc.value.field == "registration_secret"
    assert len(workers) == 0


def test_a_registered_worker_authenticates_with_its_secret_only(tmp_path: Path) -> None:
    workers = registry(tmp_path)
    worker_id, secret = workers.register("s", "s", "w", "linux")
    assert workers.authenticate(worker_id, secret) is workers[worker_id]
    for wid, sec in ((worker_id, secret + "x"), ("no-such-worker", secret)):
        with pytest.raises(Unauthorized):
            workers.authenticate(wid, sec)
    # the record survives a restart of the Manager
    again = registry(tmp_path)
    assert again.authenticate(worker_id, secret).name == "w"


def test_reports_carry_what_changed_since_the_last_ones(tmp_path: Path) -> None:
    workers = registry(tmp_path)
    wid, _ = workers.register("s", "s", "w", "linux")
    assert workers.reports() == []  # registered, not yet changed
    workers.changed(workers[wid])
    assert [r.id for r in workers.reports()] == [wid]
    assert workers.reports() == []
    assert [r.id for r in workers.reports(everything=True)] == [wid]
    # after a start the Server hears of every worker again
    assert [r.id for r in registry(tmp_path).reports()] == [wid]


def test_silent_workers_are_the_ones_past_the_timeout_and_not_offline(tmp_path: Path) -> None:
    workers = registry(tmp_path)
    a, _ = workers.register("s", "s", "a", "linux")
    b, _ = workers.register("s", "s", "b", "linux")
    workers[b].status = WorkerStatus.OFFLINE
    now = time.monotonic()
    assert workers.silent(now) == []
    assert [w.id for w in workers.silent(now + 10)] == [a]


def test_a_new_process_after_a_restart_is_not_said_to_follow_one_heard_from_since_boot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The earlier process's last call is not known to a restarted Manager: a monotonic 0 gave the machine's
    uptime as its age ("heard from 2882 s ago" a minute after it was)."""
    workers = registry(tmp_path)
    wid, _ = workers.register("s", "s", "w", "linux")
    workers.take_instance(workers[wid], "first", "127.0.0.1", was_signed_on=False)
    again = registry(tmp_path)  # the Manager restarted
    with caplog.at_level(logging.WARNING, logger="services.manager.workers"):
        again.take_instance(again[wid], "second", "127.0.0.1", was_signed_on=True)
        workers.take_instance(workers[wid], "third", "127.0.0.1", was_signed_on=True)  # heard by this one: an age
    restarted, running = [r.getMessage() for r in caplog.records]
    assert "in a new process" in restarted and "not heard from since this Manager started" in restarted, restarted
    assert "while 127.0.0.1 was signed on, heard from 0 s ago" in running, running


def test_a_name_kept_from_before_the_rule_is_reported_not_refused(tmp_path: Path) -> None:
    """Found by a review: a Manager whose store held `Render Node 1` (the worker API took any name before the
    rule) failed to build its report at every start, and its link loop, and the Manager, ended."""
    from services.manager.workers import _report
    from services.protocol.link import TaskUpdate

    conn = connect(tmp_path / "m.sqlite")
    registry = WorkerRegistry(conn, ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path))
    wid, _ = registry.register("s", "s", "w1", "linux")
    registry[wid].name = "Render Node 1"
    assert _report(registry[wid]).name == "Render-Node-1"
    assert TaskUpdate(task_id=1, attempt=1, worker_name="Render Node 1").worker_name == "Render-Node-1"


def test_a_lone_surrogate_a_worker_stored_before_the_guard_is_read_as_u_fffd(tmp_path: Path) -> None:
    """A worker's `software` holding an encoded lone surrogate was stored (json escapes it) and read back as text no
    encoder writes: the Manager's link died on it at every start. Its store is read with U+FFFD instead."""
    workers = registry(tmp_path)
    worker_id, _ = workers.register("s", "s", "w", "linux")
    workers.conn.execute(
        "UPDATE workers SET software = ?, task_types = ? WHERE id = ?",
        ('{"blender": "4.2\\ud800", "\\udfff": "x"}', '["exec\\ud83d"]', worker_id),
    )
    again = registry(tmp_path)[worker_id]
    assert again.software == {"blender": "4.2\ufffd", "\ufffd": "x"}
    assert again.task_types == frozenset({"exec\ufffd"})
    "".join([*again.software, *again.software.values(), *again.task_types]).encode()  # text again
