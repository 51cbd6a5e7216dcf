"""A task's full log read the way the app reads it, on a real local farm (Server, Manager, worker processes):
found through the Server, read from the Manager that ran it with an artist's own token, the end first and
earlier parts on demand, followed live; and the Server's copy when that Manager cannot be reached from here,
also of a log longer than the Server's limit on other request bodies."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.protocol.server_client import ServerClient
from services.protocol.task_log_source import Place, TaskLogReader
from tests.support.farm import FarmClient, local_farm
from tests.support.manager import API, ManagerProcess, add_manager, worker_factory
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)
LINES = 3000


def artist_token(farm: FarmClient) -> str:
    assert farm.server.post("/users", json={"name": "ana", "role": "artist"}).status_code == 201
    return str(farm.server.post("/tokens", json={"user": "ana"}).json()["token"])


def run_job(farm: FarmClient, script: str) -> int:
    job = farm.submit({"name": "chatty", "type": "exec", "settings": {"command": ["sh", "-c", script]}})
    return int(farm.job(job["id"])["tasks"][0]["id"])


def test_the_log_of_a_task_is_read_from_the_manager_that_ran_it(tmp_path: Path) -> None:
    with local_farm(tmp_path / "farm", workers=1) as farm:
        token = artist_token(farm)
        task_id = run_job(farm, f'for i in $(seq 1 {LINES}); do echo "line $i"; done')
        job_id = farm.server.get(f"/tasks/{task_id}").json()["job_id"]
        farm.wait_job(job_id, {"completed"}, timeout=120)

        async def read() -> tuple[TaskLogReader, list[str]]:
            reader = TaskLogReader(ServerClient(farm.farm.server_url, token), token, task_id)
            end = await reader.open(chars=2000)
            parts = [end.text]
            part = end
            while part.earlier:
                part = await reader.earlier(part.first, chars=20_000)
                parts.insert(0, part.text)
            await reader.aclose()
            await reader.client.aclose()
            return reader, parts

        reader, parts = farm.loop.run(read())
        assert reader.source is not None and reader.source.manager_url == farm.farm.manager_url
        assert reader.place == Place.MANAGER and "manager" in reader.note
        assert 100 < len(parts[-1]) <= 2000 + 200  # the end alone first: a huge log is not read whole
        assert f"line {LINES}\n" in parts[-1]  # the end (the runner's closing line follows the program's output)
        lines = [x for x in "".join(parts).splitlines() if x.startswith("line ")]
        assert lines == [f"line {i}" for i in range(1, LINES + 1)]  # the parts join into the whole, in order

        # a running task: its new lines are followed live
        task_id = run_job(farm, 'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 0.5; done')
        farm.wait_for(lambda: farm.server.get(f"/tasks/{task_id}").json()["status"] == "active", 60)

        async def follow() -> str:
            reader = TaskLogReader(ServerClient(farm.farm.server_url, token), token, task_id)
            seen = (await reader.open()).text
            start = await reader._from_manager(farm.farm.manager_url, tail=1)  # the cursor of the end
            async for chunk in reader.follow(start.last):
                seen += chunk
                if "tick 6" in seen:
                    break
            await reader.aclose()
            await reader.client.aclose()
            return seen

        seen = farm.loop.run(follow(), timeout=60)
        assert [f"tick {i}" in seen for i in range(1, 7)] == [True] * 6


def test_a_manager_out_of_reach_is_read_through_the_servers_copy(tmp_path: Path) -> None:
    # the Manager tells the Server an address this machine cannot reach (as from another site would be)
    with local_farm(tmp_path / "farm", workers=1, manager_args=("--public-url", "http://127.0.0.1:9")) as farm:
        token = artist_token(farm)
        task_id = run_job(farm, 'for i in $(seq 1 500); do echo "row $i"; done')
        job_id = farm.server.get(f"/tasks/{task_id}").json()["job_id"]
        farm.wait_job(job_id, {"completed"}, timeout=120)
        farm.wait_for(lambda: farm.server.get(f"/tasks/{task_id}/log-source").json()["manager_url"], 30)

        async def read() -> tuple[TaskLogReader, str, str]:
            reader = TaskLogReader(ServerClient(farm.farm.server_url, token), token, task_id, copy_wait=30)
            end = await reader.open(chars=1000)
            earlier = await reader.earlier(end.first, chars=100_000)
            await reader.aclose()
            await reader.client.aclose()
            return reader, end.text, earlier.text

        reader, end, earlier = farm.loop.run(read())
        assert reader.place == Place.SERVER_COPY, reader.note
        assert "cannot be reached" in reader.note
        assert "row 500\n" in end and len(end) <= 1000
        assert earlier.startswith(("row 1\n", "")) and "row 1\n" in earlier
        rows = [x for x in (earlier + end).splitlines() if x.startswith("row ")]
        assert rows == [f"row {i}" for i in range(1, 501)]


def test_a_log_longer_than_the_servers_body_limit_reaches_its_copy_whole(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    # The Server's 8 MiB limit on request bodies refused the Manager's upload of a longer log with a 413; the
    # Manager took that as final, and the app never had more than the task's last lines.
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager").start()
    admin = httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=60)
    rows = [f"row {i:06d} {'x' * 1000}" for i in range(12_000)]  # 12 MB
    try:
        with worker_factory() as make:
            worker = make(mgr, "chatty")
            worker.sign_on()
            admin.post("/jobs", json={"name": "chatty", "type": "exec", "settings": {"command": ["true"]}})
            task = worker.next_task()
            assert task is not None
            handout = task["handout"]
            assert worker.send(task["id"], [worker.update(handout=handout, status="active")]).status_code == 200
            for start in range(0, len(rows), 3000):  # 3 MB per call: under the Manager's own body limit
                ups = [
                    worker.update(handout=handout, log_lines=rows[i : i + 1000])
                    for i in range(start, start + 3000, 1000)
                ]
                r = worker.send(task["id"], ups)
                assert r.status_code == 200, r.text
            assert worker.send(task["id"], [worker.update(handout=handout, status="completed")]).status_code == 200
            wait_for(lambda: admin.get(f"/tasks/{task['id']}").json()["status"] == "completed", what="completed")

            assert admin.post(f"/tasks/{task['id']}/log/request").status_code == 202
            size = wait_for(
                lambda: admin.get(f"/tasks/{task['id']}/log-source").json()["server_copy_bytes"],
                timeout=60, what="the Server's copy of the log",
            )  # fmt: skip
            assert size > 8 * 1024 * 1024
            copy = admin.get(f"/tasks/{task['id']}/log")
            assert copy.status_code == 200 and int(copy.headers["X-Log-Last"]) == size
            assert [line for line in copy.text.splitlines() if line.startswith("row ")] == rows
    finally:
        admin.close()
        mgr.stop()


def test_tablao_log_prints_a_tasks_full_log_escaping_what_a_terminal_would_obey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command-line client reads the log as the app does: the end by default (saying that earlier lines are
    left out), all of it with --all; a task's escape sequences are shown, not obeyed by the reader's terminal."""
    from services import client_cli

    with local_farm(tmp_path / "farm", workers=1) as farm:
        token = artist_token(farm)
        count = 80_000  # about 470 kB: more than the 256 kB end the command prints by default
        task_id = run_job(farm, f'printf "\\033]0;owned\\007title\\n"; seq 1 {count}')
        job_id = farm.server.get(f"/tasks/{task_id}").json()["job_id"]
        farm.wait_job(job_id, {"completed"}, timeout=120)
        monkeypatch.setenv("TABLAO_TOKEN", token)
        server = ["--server", farm.farm.server_url]

        assert client_cli.main("log", [str(task_id), *server]) == 0
        end = capsys.readouterr()
        assert f"\n{count}\n" in end.out and "\n1\n" not in end.out
        assert "Full log from manager" in end.err and "--all prints them" in end.err

        assert client_cli.main("log", [str(task_id), *server, "--all"]) == 0
        whole = capsys.readouterr()
        numbers = [line for line in whole.out.splitlines() if line.isdigit()]
        assert numbers == [str(i) for i in range(1, count + 1)]
        assert "\\x1b]0;owned\\x07title" in whole.out and "\x1b" not in whole.out and "\x07" not in whole.out
        assert "not shown" not in whole.err

        assert client_cli.main("log", ["999999", *server]) == 1
        assert capsys.readouterr().err.startswith("tablao log: ")


def test_tablao_log_follow_prints_each_line_once_until_the_task_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services import client_cli

    with local_farm(tmp_path / "farm", workers=1) as farm:
        monkeypatch.setenv("TABLAO_TOKEN", artist_token(farm))
        task_id = run_job(farm, "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.4; done")
        wait_for(lambda: farm.server.get(f"/tasks/{task_id}").json()["status"] == "active", what="the task running")
        assert client_cli.main("log", [str(task_id), "--server", farm.farm.server_url, "-f"]) == 0
        ticks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tick ")]
        assert ticks == [f"tick {i}" for i in range(1, 9)]
        assert farm.server.get(f"/tasks/{task_id}").json()["status"] == "completed"
