"""A Manager serves a task's full log a part at a time: `limit` bounds every answer, the default too.

Found by a fuzz audit: `?after=0&limit=100` (or no parameter) answered a 331 MB log in one string, built on the
event loop; three reads at once took the Manager from 189 MB to 1.5 GB. Here a log past the default part (16 Mi
characters) is written by a scripted worker and read back in parts that join into the whole of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_manager_basics import exec_job, submit
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

READ_MAX = 16 * 1024 * 1024  # the Manager's default and largest part, in characters (services/manager/api)
LINE = 800  # characters per line (with its number): 5,000 lines a batch (the most) make 4 MB, under 8 MiB
BATCH_LINES = 5000
BATCHES = 5  # 20 MB of log: past READ_MAX


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager").start()
    yield server, mgr
    mgr.stop()
    server.stop()


@pytest.fixture(scope="module")
def big_log(farm: tuple[ServerProcess, ManagerProcess]) -> tuple[int, str]:
    """A task whose log is BATCHES worker updates of BATCH_LINES lines each; returns (task id, the whole log)."""
    server, mgr = farm
    submit(server, exec_job("big-log", frames="1"))
    worker = ScriptedWorker(mgr.url, "w").register(mgr.registration_secret)
    try:
        worker.sign_on()
        task = worker.next_task(wait=30)
        assert task is not None
        handout = task["handout"]
        assert worker.send(task["id"], [worker.update(handout=handout, status="active")]).status_code == 200
        lines: list[str] = []
        for b in range(BATCHES):
            batch = [f"{b:02d}-{i:05d} ".ljust(LINE, "x") for i in range(BATCH_LINES)]
            r = worker.send(task["id"], [worker.update(handout=handout, log_lines=batch)])
            assert r.status_code == 200, r.text
            lines += batch
        return int(task["id"]), "".join(f"{line}\n" for line in lines)
    finally:
        worker.close()


def read(mgr: ManagerProcess, server: ServerProcess, task_id: int, **params: int) -> httpx.Response:
    r = httpx.get(f"{mgr.url}{API}/tasks/{task_id}/log", params=params, headers=server.headers(), timeout=60)
    assert r.status_code == 200, r.text
    return r


def cursors(r: httpx.Response) -> tuple[int, int, bool]:
    return int(r.headers["X-Log-First"]), int(r.headers["X-Log-Last"]), r.headers["X-Log-Earlier"] == "1"


def test_a_read_after_a_position_gives_at_most_limit_with_the_cursor_to_go_on(
    farm: tuple[ServerProcess, ManagerProcess], big_log: tuple[int, str]
) -> None:
    server, mgr = farm
    task_id, whole = big_log
    r = read(mgr, server, task_id, after=0, limit=100)
    assert 0 < len(r.text) <= 100 and whole.startswith(r.text)
    first, last, earlier = cursors(r)
    assert not earlier and last > first
    # the next parts go on exactly where this one ended: a line longer than `limit` is cut and continued
    seen = r.text
    for _ in range(10):
        r = read(mgr, server, task_id, after=last, limit=100)
        assert 0 < len(r.text) <= 100 and cursors(r)[0] == last and cursors(r)[2]
        seen += r.text
        last = cursors(r)[1]
    assert whole.startswith(seen)
    # a part that holds whole lines ends at one
    line = LINE + 1  # with its newline
    r = read(mgr, server, task_id, after=0, limit=3 * line)
    assert r.text == whole[: 3 * line] and r.text.endswith("\n")
    r = read(mgr, server, task_id, after=0, limit=3 * line - 1)
    assert r.text == whole[: 2 * line]


def test_paging_after_each_parts_end_reaches_the_whole_log(
    farm: tuple[ServerProcess, ManagerProcess], big_log: tuple[int, str]
) -> None:
    server, mgr = farm
    task_id, whole = big_log
    parts: list[str] = []
    starts: list[int] = []
    last = 0
    for _ in range(len(whole) // (3 * 1024 * 1024) + 3):
        r = read(mgr, server, task_id, after=last, limit=3 * 1024 * 1024)
        assert len(r.text) <= 3 * 1024 * 1024
        if not r.text:  # the end: the cursor stays where it was
            assert cursors(r)[1] == last
            break
        parts.append(r.text)
        starts.append(last)
        last = cursors(r)[1]
    assert len(parts) > 1 and "".join(parts) == whole
    # a follow from a part's end (here in the middle of a worker's batch) streams the rest, nothing repeated
    rest = parts[-1]
    got = ""
    params = {"follow": 1, "after": starts[-1]}
    url = f"{mgr.url}{API}/tasks/{task_id}/log"
    with httpx.stream("GET", url, params=params, headers=server.headers(), timeout=60) as stream:
        for text in stream.iter_text():
            got += text
            if len(got) >= len(rest):
                break
    assert got == rest


def test_a_read_with_no_parameter_is_bounded_and_the_earlier_parts_still_page_backwards(
    farm: tuple[ServerProcess, ManagerProcess], big_log: tuple[int, str]
) -> None:
    server, mgr = farm
    task_id, whole = big_log
    assert len(whole) > READ_MAX
    r = read(mgr, server, task_id)
    assert 0 < len(r.text) <= READ_MAX and whole.startswith(r.text)
    first, last, earlier = cursors(r)
    assert not earlier
    rest = read(mgr, server, task_id, after=last)
    assert r.text + rest.text == whole
    # the way the app and `tablao log --all` read it: the end, then earlier parts
    end = read(mgr, server, task_id, tail=1024 * 1024)
    parts = [end.text]
    first, _last, earlier = cursors(end)
    while earlier:
        part = read(mgr, server, task_id, before=first, limit=4 * 1024 * 1024)
        assert 0 < len(part.text) <= 4 * 1024 * 1024
        parts.insert(0, part.text)
        first, _last, earlier = cursors(part)
    assert "".join(parts) == whole


def test_two_ways_of_choosing_a_part_at_once_are_refused(
    farm: tuple[ServerProcess, ManagerProcess], big_log: tuple[int, str]
) -> None:
    server, mgr = farm
    task_id, _whole = big_log
    for params in ({"tail": 10, "after": 0}, {"before": 10, "after": 0}, {"tail": 10, "before": 10}):
        r = httpx.get(f"{mgr.url}{API}/tasks/{task_id}/log", params=params, headers=server.headers(), timeout=10)
        assert r.status_code == 422, (params, r.text)
    r = httpx.get(f"{mgr.url}{API}/tasks/{task_id}/log", params={"limit": 0}, headers=server.headers(), timeout=10)
    assert r.status_code == 422, r.text


def test_a_run_past_the_managers_log_limit_keeps_its_start_and_end(tmp_path_factory: pytest.TempPathFactory) -> None:
    """TABLAO_MAX_TASK_LOG_MB bounds one run of a task's log: a worker printing without end filled the disk."""
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager",
        env={"TABLAO_MAX_TASK_LOG_MB": "1"},
    ).start()  # fmt: skip
    try:
        submit(server, exec_job("chatty", frames="1"))
        worker = ScriptedWorker(mgr.url, "w").register(mgr.registration_secret)
        worker.sign_on()
        task = worker.next_task(wait=30)
        assert task is not None
        handout = task["handout"]
        for b in range(12):  # 12 batches of 400 kB: 4.8 MB
            batch = [f"{b:02d}-{i:05d} ".ljust(400, "x") for i in range(1000)]
            assert worker.send(task["id"], [worker.update(handout=handout, log_lines=batch)]).status_code == 200
        worker.close()
        text = read(mgr, server, int(task["id"]), after=0).text
        lines = text.splitlines()
        assert len(text) <= 2**20 + 1000
        assert lines[0].startswith("00-00000") and lines[-1].startswith("11-00999")
        assert sum(line.startswith("[... ") and "left out here" in line for line in lines) == 1
    finally:
        mgr.stop()
        server.stop()
