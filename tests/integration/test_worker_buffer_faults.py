"""The real worker (`python -m services.worker.cli`) when its update buffer is lost, damaged, or on a full disk."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_worker_agent import AgentProcess, submit, tasks_of
from tests.support.manager import ManagerProcess, add_manager
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

EXIT_BUFFER_UNUSABLE = 78


@pytest.fixture
def farm(quick_lease_server: ServerProcess, tmp_path: Path) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    mgr = ManagerProcess(quick_lease_server.url, add_manager(quick_lease_server, "m1"), tmp_path / "manager").start()
    yield quick_lease_server, mgr
    mgr.stop()


def completed(server, job: int) -> bool:
    return all(t["status"] == "completed" for t in tasks_of(server, job))


def test_a_lost_or_damaged_buffer_stops_the_worker_with_one_line_until_fresh_buffer(farm, tmp_path: Path) -> None:
    server, mgr = farm
    data = tmp_path / "w"
    agent = AgentProcess(mgr, data, "w")
    try:
        job = submit(server, ["true"], "1")
        wait_for(lambda: completed(server, job), what=f"the first task; log:\n{agent.log_text()}")
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(15) == 0
    finally:
        agent.stop()
    buffer = data / "updates.sqlite"
    assert (data / "buffer.created").exists()
    for harm, says in (
        (lambda: os.truncate(buffer, 0), "is empty"),
        (lambda: buffer.write_bytes(os.urandom(100)), "is damaged (file is not a database)"),
        (buffer.unlink, "is missing"),
    ):
        harm()
        refused = AgentProcess(mgr, data, "w")
        try:
            assert refused.proc.wait(30) == EXIT_BUFFER_UNUSABLE, refused.log_text()
        finally:
            refused.stop()
        text = refused.log_text()
        lines = [line for line in text.splitlines() if "cannot start" in line]
        assert len(lines) == 1 and str(buffer) in lines[0] and says in lines[0] and "--fresh-buffer" in lines[0], text
        assert "Traceback" not in text
        data.with_name("w.log").write_text("")
        buffer.write_bytes(b"garbage " * 100)  # the next round harms something that existed
    fresh = AgentProcess(mgr, data, "w", extra=("--fresh-buffer",))
    try:
        job = submit(server, ["true"], "1-2")
        wait_for(lambda: completed(server, job), what=f"tasks after --fresh-buffer; log:\n{fresh.log_text()}")
        assert [p.name for p in data.glob("updates.sqlite.damaged-*")], "the damaged buffer was not kept aside"
        assert "the old update buffer was kept as" in fresh.log_text()
        fresh.proc.send_signal(signal.SIGTERM)
        assert fresh.proc.wait(15) == 0
    finally:
        fresh.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs as the worker's data folder (needs root, or the test is skipped); its log is written beside."""
    mount = tmp_path / "w"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(mount: Path) -> Path:
    filler = mount / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_disk_keeps_results_in_memory_takes_no_new_task_and_stores_them_when_freed(
    farm, tmp_path: Path, small_disk: Path
) -> None:
    server, mgr = farm
    out = tmp_path / "out"
    out.mkdir()
    agent = AgentProcess(mgr, small_disk, "w", extra=("--output-root", str(out)))
    try:
        wait_for(lambda: "signed on" in agent.log_text(), what=f"the sign-on; log:\n{agent.log_text()}")
        filler = fill_up(small_disk)
        job = submit(server, ["sh", "-c", f"echo {{frame}} >> {out}/ran.txt"], "1-3")
        wait_for(lambda: "is full" in agent.log_text(), what=f"the full disk's line; log:\n{agent.log_text()}")
        wait_for(lambda: (out / "ran.txt").exists(), what="the first task to run")
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.proc.wait(3)
        assert agent.proc.poll() is None, agent.log_text()
        assert (out / "ran.txt").read_text().split() == ["1"], "took a new task while it could not store results"
        assert not completed(server, job)
        filler.unlink()
        wait_for(lambda: completed(server, job), timeout=60, what=f"the tasks; log:\n{agent.log_text()}")
        assert sorted((out / "ran.txt").read_text().split()) == ["1", "2", "3"], "a task ran twice"
        text = agent.log_text()
        assert text.count("is full") == 1 and "has room again" in text and "Traceback" not in text, text
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(15) == 0
    finally:
        agent.stop()


def test_a_worker_stopped_while_its_disk_is_full_sends_what_it_could_not_save(
    farm, tmp_path: Path, small_disk: Path
) -> None:
    """The results kept in memory go straight to the Manager at the stop, rather than being lost (the task run
    again)."""
    server, mgr = farm
    agent = AgentProcess(mgr, small_disk, "w")
    try:
        wait_for(lambda: "signed on" in agent.log_text(), what=f"the sign-on; log:\n{agent.log_text()}")
        fill_up(small_disk)
        job = submit(server, ["true"], "1")
        wait_for(lambda: "task 1 completed" in agent.log_text(), what=f"the task; log:\n{agent.log_text()}")
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(30) == 0, agent.log_text()
        text = agent.log_text()
        assert "are lost" not in text and "Traceback" not in text, text
        wait_for(lambda: completed(server, job), what="the task's completion at the Server")
    finally:
        agent.stop()
