"""The local farm's plain parts: restart back-off, the process record, log tails, the data-directory rule."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.localfarm import records
from services.localfarm.handle import FarmHandle, LogTail
from services.localfarm.layout import FarmLayout, default_data_dir
from services.localfarm.records import FarmLock, FarmRecord, ProcessRecord
from services.localfarm.supervisor import Backoff
from services.protocol.secret_files import write_secret


def test_backoff_doubles_to_its_cap_gives_up_and_forgives_a_long_run() -> None:
    b = Backoff(first=0.5, cap=3.0, healthy_after=60, give_up_after=5)
    assert [b.next_delay(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.next_delay(1.0) is None  # the sixth quick exit in a row: left crashed
    assert b.next_delay(120.0) == 0.5  # it ran long enough: starts over
    forever = Backoff(first=1, cap=60, give_up_after=None)
    assert all(forever.next_delay(0) is not None for _ in range(100))


def test_a_record_names_a_process_by_pid_and_start_time(tmp_path: Path) -> None:
    me = ProcessRecord.of("me", os.getpid())
    assert me.process() is not None
    assert ProcessRecord("me", os.getpid(), me.started - 10).process() is None  # the pid, reused by another
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert ProcessRecord("gone", done.pid, 0.0).process() is None
    rec = FarmRecord(supervisor=me, server_url="http://127.0.0.1:1", services={"server": me})
    records.save(tmp_path, rec)
    assert records.load(tmp_path) == rec
    (tmp_path / records.RECORD_FILE).write_text("{not json")
    assert records.load(tmp_path) is None  # a damaged record is as good as none, never a crash


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "null",
        '"farm"',
        "7",
        "\xff\xfe",
        "[" * 100_000,
        '{"supervisor": []}',
        '{"supervisor": {"pid": "abc", "name": "supervisor", "started": 0}}',
        '{"supervisor": {"pid": -1, "name": "supervisor", "started": 0}}',
        '{"supervisor": {"pid": 0, "name": "supervisor", "started": 0}}',
        '{"supervisor": {"pid": true, "name": "supervisor", "started": 0}}',
        '{"supervisor": {"pid": 1.5, "name": "supervisor", "started": 0}}',
        '{"supervisor": {"pid": 1, "name": "supervisor", "started": "noon"}}',
        '{"supervisor": {"pid": 1, "name": "supervisor", "started": NaN}}',
        '{"supervisor": {"pid": 1, "name": 7, "started": 0}}',
        '{"supervisor": {"pid": 1, "started": 0}}',
        '{"supervisor": {"pid": 1, "name": "s", "started": 0, "colour": "red"}}',
        '{"supervisor": {"pid": 1, "name": "s", "started": 0, "exit_code": "1"}}',
        '{"server_url": 5}',
        '{"services": []}',
        '{"services": {"server": null}}',
        '{"services": {"server": {"pid": -1, "name": "server", "started": 0}}}',
        '{"services": {"server": {"pid": 1, "name": "server", "started": 0, "state": ["running"]}}}',
    ],
)
def test_a_record_of_the_wrong_shape_is_none_and_the_farm_still_claims_its_directory(tmp_path: Path, text: str) -> None:
    from services.localfarm.farm import LocalFarm
    from tests.support.farm import free_port_pair

    farm_dir = tmp_path / "farm"
    farm_dir.mkdir()
    (farm_dir / records.RECORD_FILE).write_bytes(text.encode("latin-1"))  # \xff\xfe: not UTF-8
    assert records.load(farm_dir) is None
    farm = LocalFarm(tmp_path, free_port_pair(), 0, say=lambda _line: None)
    farm.claim()  # the damaged record does not stop a start
    farm.lock.release()
    assert records.load(farm_dir) == farm.record  # replaced by this run's


def test_a_pid_psutil_refuses_names_no_process(tmp_path: Path) -> None:
    assert ProcessRecord("x", -1, 0.0).process() is None
    assert records.start_time(-1) is None
    sup, server = ProcessRecord("supervisor", 1, 0.0), ProcessRecord("server", 2, 1.5, "crashed", "http://h", 3)
    good = FarmRecord(supervisor=sup, server_url="http://h", services={"server": server})
    assert FarmRecord.from_json(good.to_json()) == good
    damaged = FarmRecord(services={"server": ProcessRecord("server", -1, 0.0)})
    assert records.leftovers(damaged, tmp_path) == []


def test_the_lock_is_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = FarmLock(tmp_path), FarmLock(tmp_path)
    assert first.acquire()
    assert second.held_elsewhere()
    first.release()
    assert not second.held_elsewhere()
    assert second.acquire()
    second.release()


def test_a_probe_writes_nothing_and_does_not_turn_a_starting_supervisor_away(tmp_path: Path) -> None:
    first = FarmLock(tmp_path)
    assert first.acquire()
    mine = first.path.read_text()
    assert FarmLock(tmp_path).held_elsewhere()
    assert first.path.read_text() == mine, "the probe wrote its own pid over the holder's"
    first.release()
    # probes in a tight loop (`running_farm`, as the app and `tablao farm status` call it while a farm starts):
    # a starting supervisor waits a probe out instead of taking it for a running farm
    stop = threading.Event()

    def probe() -> None:
        prober = FarmLock(tmp_path)
        while not stop.is_set():
            prober.held_elsewhere()

    probes = [threading.Thread(target=probe) for _ in range(2)]
    for t in probes:
        t.start()
    try:
        for _ in range(30):
            starter = FarmLock(tmp_path)
            assert starter.acquire(), "a probe's moment with the lock turned a starting supervisor away"
            starter.release()
    finally:
        stop.set()
        for t in probes:
            t.join()


def test_a_log_tail_returns_whole_new_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    tail = LogTail(log)
    assert tail.read_new() == []
    log.write_text("one\ntw")
    assert tail.read_new() == ["one"]
    with log.open("a") as f:
        f.write("o\nthree\n")
    assert tail.read_new() == ["two", "three"]
    log.write_text("new\n")  # replaced by a shorter file
    assert tail.read_new() == ["new"]


def test_one_data_directory_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    lay = FarmLayout.default()
    assert lay.admin_token_file == tmp_path / "server" / "admin.token"
    from services.manager.config import ManagerConfig
    from services.server.config import ServerConfig

    assert ServerConfig().data_dir == lay.server_dir
    assert ManagerConfig("http://s", "t").data_dir == lay.manager_dir
    write_secret(lay.manager_token_file, "secret")
    assert lay.manager_token_file.read_text() == "secret\n"
    assert oct(lay.manager_token_file.stat().st_mode & 0o777) == "0o600"


async def test_a_child_that_crashes_is_restarted_after_its_back_off_and_one_that_ends_is_not(tmp_path: Path) -> None:
    import asyncio

    from services.localfarm.supervisor import ChildSpec, ChildState, Supervisor

    seen: list[tuple[str, ChildState]] = []
    sup = Supervisor(on_change=lambda c: seen.append((c.name, c.state)))
    crasher = sup.add(
        ChildSpec("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "c.log"),
        Backoff(first=0.2, give_up_after=2),
    )
    ender = sup.add(ChildSpec("ender", [sys.executable, "-c", "print('bye')"], tmp_path / "e.log"))
    crasher.start()
    ender.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(sup.run(stop, interval=0.02))
    for _ in range(500):
        if crasher.state is ChildState.CRASHED and ender.state is ChildState.STOPPED:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await runner
    assert crasher.state is ChildState.CRASHED and crasher.exit_code == 3
    assert [s for n, s in seen if n == "crasher"].count(ChildState.RESTARTING) == 2  # then it gave up
    assert ender.state is ChildState.STOPPED and ender.exit_code == 0
    assert ("ender", ChildState.RESTARTING) not in seen
    assert "bye" in ender.tail()
    await sup.stop_all()


def test_the_supervisor_takes_whole_requests_and_leaves_one_being_written(tmp_path: Path) -> None:
    from services.localfarm.farm import REQUESTS_DIR, request, take_requests

    request(tmp_path, "manager", "restart")
    folder = tmp_path / REQUESTS_DIR
    in_flight = folder / f"farm.stop.{os.getpid()}{records.TEMP_SUFFIX}"
    in_flight.write_text("1")  # the app, between writing its request and renaming it into place
    assert take_requests(tmp_path) == [("manager", "restart")]
    assert in_flight.exists()  # so the app's rename still works
    in_flight.replace(folder / "farm.stop")
    assert take_requests(tmp_path) == [("farm", "stop")]
    assert take_requests(tmp_path) == [] and sorted(folder.iterdir()) == []
    abandoned = folder / f"manager.stop.1{records.TEMP_SUFFIX}"
    abandoned.write_text("1")  # its writer killed before the rename
    os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
    assert take_requests(tmp_path) == [] and not abandoned.exists()


def test_the_app_starts_its_farm_with_the_output_roots_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tablao all-in-one --output-root DIR` without --headless: the desktop app's farm gets DIR too."""
    started: list[list[str]] = []

    class Started:
        def __init__(self, argv: list[str], **_kwargs: object) -> None:
            started.append(argv)

    monkeypatch.setattr(subprocess, "Popen", Started)
    FarmHandle(tmp_path / "farm", 9000, 1, ("/renders", "/b c"))._start_supervisor(owner_pid=None)
    [argv] = started
    at = argv.index("all-in-one")
    farm_dir = str(tmp_path / "farm")
    assert argv[at:] == ["all-in-one", "--headless", "--for-app", "--data-dir", farm_dir, "--port", "9000",
                         "--workers", "1", "--output-root", "/renders", "--output-root", "/b c"]  # fmt: skip
