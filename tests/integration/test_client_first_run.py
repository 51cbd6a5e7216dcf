"""What `tablao submit|jobs|job|workers|task` say on a first run: the wrong service's address, a reader that goes
away (`| head`), a job's counts, the workers, a task requeued or canceled, and the local farm started on another
port, against real services."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.allinone import AllInOne
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command


def client(*args: str, data_dir: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = child_env()
    for name in ("TABLAO_SERVER", "TABLAO_TOKEN"):
        env.pop(name, None)
    if data_dir is not None:
        env["TABLAO_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        tablao_command(*args) if args[0] != "--argv" else list(args[1:]),
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def farm(fresh_server: ServerProcess, tmp_path: Path) -> Iterator[tuple[ServerProcess, ManagerProcess, Path]]:
    token = tmp_path / "admin.token"
    token.write_text(fresh_server.admin_token)
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager").start()
    yield fresh_server, mgr, token
    mgr.stop()


def submit(server: ServerProcess, frames: str = "1-3") -> int:
    body = {"name": "first-run", "type": "exec", "settings": {"command": ["true"], "frames": frames}}
    r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_a_managers_address_is_named_as_not_a_server(farm) -> None:
    server, mgr, token = farm
    r = client("jobs", "--server", mgr.url, "--token-file", str(token))
    assert r.returncode == 1
    assert r.stderr == (
        f"tablao jobs: {mgr.url} is not a Tablao Server (it is a Tablao Manager): give the Server's address with "
        "--server (a Server listens on port 8470 unless told otherwise)\n"
    )
    # a Server's own 404 keeps its words
    r = client("job", "999", "--server", server.url, "--token-file", str(token))
    assert (r.returncode, r.stderr) == (1, "tablao job: no job with id 999 (HTTP 404)\n")
    # its API's address (a newcomer's audit: "is not a Tablao Server (it answered 404 Not Found)")
    r = client("jobs", "--server", f"{server.url}/api/v1/", "--token-file", str(token))
    assert (r.returncode, r.stderr) == (
        1, f"tablao jobs: {server.url}/api/v1 is not a Tablao Server's address but its API's: give --server "
           f"{server.url}\n"
    )  # fmt: skip
    # no token for a Server given by address: that Server's, not the local farm's (a newcomer was told to start it)
    r = subprocess.run(
        tablao_command("jobs", "--server", server.url), cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**child_env(TABLAO_DATA_DIR=str(token.parent / "no-farm")), "TABLAO_TOKEN": ""},
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr.rstrip().endswith(
        f"give {server.url}'s token with --token-file or TABLAO_TOKEN"
    ), r.stderr


@pytest.mark.parametrize("argv", [("jobs",), ("job", "JOB", "--action", "pause")])
def test_a_reader_that_goes_away_ends_the_command_quietly(farm, argv: tuple[str, ...]) -> None:
    server, _, token = farm
    job = submit(server)
    args = [a.replace("JOB", str(job)) for a in argv]
    proc = subprocess.Popen(
        tablao_command(*args, "--server", server.url, "--token-file", str(token)),
        cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `| head` does once it has its lines: every write now meets a broken pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(60) == 141 and err == ""


def test_a_jobs_tasks_in_progress_are_not_called_running(farm) -> None:
    server, _, token = farm
    job = submit(server, "1-2")
    r = client("job", str(job), "--server", server.url, "--token-file", str(token))
    assert r.returncode == 0, r.stderr
    counts = next(line for line in r.stdout.splitlines() if line.startswith("  tasks: "))
    assert " in progress (" in counts and " running, " not in counts, counts


def test_the_local_farm_on_another_port_is_found_and_its_banner_command_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    farm = AllInOne(data, workers=0).start()
    try:
        farm.wait_running()
        # the farm's token, by default, goes to the farm's Server, wherever it listens
        r = client("jobs", data_dir=data)
        assert (r.returncode, r.stdout, r.stderr) == (0, "no jobs\n", "")
        # the banner's command is one a person can type as it is, from anywhere
        line = next(ln for ln in farm.log().splitlines() if ln.startswith("Submit with: "))
        argv = shlex.split(line.removeprefix("Submit with: "))
        assert argv[1:3] == ["submit", "JOB.json"], line
        r = client("--argv", *argv[:1], "jobs", *argv[3:], cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (0, "no jobs\n", ""), line
        # and its user command too, on the running farm's database
        line = next(ln for ln in farm.log().splitlines() if ln.startswith("Add a user with: "))
        argv = [a.replace("NAME", "ana") for a in shlex.split(line.removeprefix("Add a user with: "))]
        r = client("--argv", *argv, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        r = client("--argv", argv[0], "users", "list", *argv[-2:], cwd=tmp_path)
        assert r.returncode == 0 and "ana" in r.stdout and "artist" in r.stdout, r.stdout + r.stderr
    finally:
        farm.close()


def test_workers_and_a_tasks_requeue_and_cancel_from_the_command_line(farm) -> None:
    """A wrangler on a headless server needed curl for the workers and for one task's requeue or cancel."""
    server, mgr, token = farm
    worker = ScriptedWorker(mgr.url, "render-07").register(mgr.registration_secret)
    try:
        assert worker.sign_on(tags=("gpu",)).status_code == 200
        for _ in range(100):  # the Manager reports its workers with its next batch
            listed = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=10).json()
            if listed and listed[0]["tags"] == ["gpu"]:
                break
            time.sleep(0.1)
        conn = ("--server", server.url, "--token-file", str(token))
        r = client("workers", *conn)
        assert r.returncode == 0, r.stderr
        row = next(line for line in r.stdout.splitlines() if line.startswith("render-07"))
        assert "linux" in row and "gpu" in row, r.stdout
        assert r.stdout.splitlines()[-1] == "1 worker"
        # one worker by its name or the start of its id, and a wrangler's requests of it
        worker_id = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=10).json()[0]["id"]
        assert worker_id[:8] in row
        r = client("workers", worker_id[:6], *conn)
        assert r.returncode == 0 and r.stdout.startswith(f"Worker render-07  ({worker_id}, Manager "), r.stdout
        r = client("workers", "render-07", "--action", "sleep", *conn)
        assert r.returncode == 0 and "(asked: asleep)" in r.stdout, r.stdout + r.stderr
        r = client("workers", "render-7", *conn)
        assert r.returncode == 1 and "no worker is named render-7" in r.stderr, r.stderr
        r = client("workers", "render-07", "--action", "forget", *conn)
        assert r.returncode == 1 and "offline" in r.stderr and "409" in r.stderr, r.stderr  # it is online
        r = client("workers", "--now", *conn)
        assert r.returncode == 2 and "need a worker" in r.stderr, r.stderr

        job = submit(server, "1-2")
        detail = httpx.get(f"{server.url}{API}/jobs/{job}", headers=server.headers(), timeout=10).json()
        task = detail["tasks"][0]["id"]
        r = client("task", str(task), "--action", "cancel", "--reason", "wrong camera", *conn)
        assert r.returncode == 0, r.stderr
        assert f"Task {task}: " in r.stdout and "status canceled" in r.stdout, r.stdout
        r = client("task", str(task), "--action", "requeue", *conn)
        # queued again, and the Manager may have claimed it for its worker already
        assert r.returncode == 0 and ("status queued" in r.stdout or "status assigned" in r.stdout), r.stdout
        r = client("task", str(task), "--action", "pause", *conn)
        assert r.returncode == 2 and "invalid choice" in r.stderr
    finally:
        worker.close()
