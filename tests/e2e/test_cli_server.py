"""The `tablao` command line against a real Server: start-up, submit, jobs, job, and the admin commands."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port, wait_http
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command


def tablao(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tablao_command(*args), cwd=ROOT, env=env or child_env(), capture_output=True, text=True, timeout=60
    )


def test_server_starts_with_no_configuration(tmp_path: Path) -> None:
    port = free_port()
    # no --data-dir: the default location, redirected by TABLAO_DATA_DIR so the test stays in tmp_path
    env = child_env(TABLAO_DATA_DIR=str(tmp_path))
    start = time.monotonic()
    proc = subprocess.Popen(
        tablao_command("server", "--port", str(port)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=30, proc=proc)
        elapsed = time.monotonic() - start
        print(f"tablao server answered after {elapsed:.2f} s")
        doc = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").json()
        assert doc["info"]["title"] == "Tablao Server"
        assert (tmp_path / "server" / "admin.token").exists()
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "admin token" in out


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    yield srv
    srv.stop()


def client_args(server: ServerProcess) -> list[str]:
    return ["--server", server.url, "--token-file", str(server.data_dir / "admin.token")]


def test_submit_jobs_and_job(cli_server: ServerProcess, tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({
        "name": "cli exec", "type": "exec",
        "settings": {"command": ["echo", "frame {frame}"], "frames": "1-3", "chunk_size": 1},
    }))  # fmt: skip
    r = tablao("submit", str(job_file), *client_args(cli_server))
    assert r.returncode == 0, r.stderr
    assert "submitted job" in r.stdout and "3 tasks" in r.stdout
    job_id = r.stdout.split()[2]
    r = tablao("jobs", *client_args(cli_server))
    assert r.returncode == 0 and "cli exec" in r.stdout and "queued" in r.stdout
    r = tablao("job", job_id, *client_args(cli_server))
    assert r.returncode == 0
    assert f"Job {job_id}: cli exec" in r.stdout and "3 in all" in r.stdout
    r = tablao("job", job_id, "--action", "pause", *client_args(cli_server))
    assert r.returncode == 0 and "status paused" in r.stdout
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"name": "one", "type": "exec", "settings": {"command": ["true"]}}))
    r = tablao("submit", str(one), *client_args(cli_server))
    assert r.returncode == 0 and ": 1 task, queued" in r.stdout, r.stdout


@pytest.mark.parametrize("name", ["exec", "blender-render", "blender-bake", "blender-still", "ffmpeg-encode", "openjd"])
def test_job_types_show_the_settings_and_a_job_that_submits_as_is(
    cli_server: ServerProcess, tmp_path: Path, name: str
) -> None:
    """A newcomer had only `GET /api/v1/job-types/NAME` (curl with a token) to learn a job type's settings."""
    r = tablao("job-types", *client_args(cli_server))
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()[:6]] == sorted(
        ["blender-bake", "blender-render", "blender-still", "exec", "ffmpeg-encode", "openjd"]
    )
    r = tablao("job-types", name, *client_args(cli_server))
    assert r.returncode == 0, r.stderr
    assert "settings:" in r.stdout and "required" in r.stdout
    job_file = tmp_path / "job.json"
    job_file.write_text(r.stdout.rstrip().splitlines()[-1])  # the example job, as printed
    r = tablao("submit", str(job_file), *client_args(cli_server))
    assert r.returncode == 0, r.stderr
    r = tablao("job-types", "nuke", *client_args(cli_server))
    assert r.returncode == 1 and "no job type named 'nuke'" in r.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"name": "x", "type": "exec", "settings": {"command": ["true"], "frames": "5-1"}}',
         "settings.frames: range 5-1 ends before it starts (HTTP 422)"),
        ('{"name": "x", "type": "nuke"}', "unknown job type 'nuke'"),
        ("{not json", "is not valid JSON"),
    ],
)  # fmt: skip
def test_submit_errors_are_one_readable_line(
    cli_server: ServerProcess, tmp_path: Path, content: str, message: str
) -> None:
    job_file = tmp_path / "bad.json"
    job_file.write_text(content)
    r = tablao("submit", str(job_file), *client_args(cli_server))
    assert r.returncode == 1
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_client_errors(cli_server: ServerProcess, tmp_path: Path) -> None:
    r = tablao("job", "999999", *client_args(cli_server))
    assert r.returncode == 1 and "no job with id 999999 (HTTP 404)" in r.stderr
    r = tablao("jobs", "--server", f"http://127.0.0.1:{free_port()}", "--token-file", str(tmp_path / "none"))
    assert r.returncode == 1 and "cannot read the API token" in r.stderr
    token = tmp_path / "t"
    token.write_text("tbl_wrong")
    r = tablao("jobs", "--server", cli_server.url, "--token-file", str(token))
    assert r.returncode == 1 and "not valid" in r.stderr and "HTTP 401" in r.stderr
    assert "`tablao tokens create USER`" in r.stderr  # how to get one that is
    r = tablao("jobs", "--server", f"http://127.0.0.1:{free_port()}", "--token-file", str(token))
    assert r.returncode == 1 and "cannot reach the Server" in r.stderr


def test_admin_commands(tmp_path: Path) -> None:
    """Beside a running Server, on the database it made (0700 folder, 0600 file): the admin commands never make one."""
    data = ["--data-dir", str(tmp_path)]
    srv = ServerProcess(data_dir=tmp_path, database_url=None).start()
    try:
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "tablao-server.sqlite").stat().st_mode) == 0o600
        r = tablao("users", "add", "wes", "--role", "wrangler", *data)
        assert r.returncode == 0 and "user wes (wrangler) added" in r.stdout
        r = tablao("users", "add", "wes", "--role", "wrangler", *data)
        assert r.returncode == 1 and "exists already" in r.stderr
        r = tablao("users", "add", "x", "--role", "boss", *data)
        assert r.returncode == 2 and "invalid choice" in r.stderr
        r = tablao("tokens", "create", "wes", *data)
        assert r.returncode == 0 and r.stdout.startswith("tbl_")
        token = r.stdout.strip()
        r = tablao("tokens", "create", "nobody", *data)
        assert r.returncode == 1 and "no user named 'nobody'" in r.stderr
        r = tablao("managers", "add", "room-a", "--token-file", str(tmp_path / "m.token"), *data)
        assert r.returncode == 0 and (tmp_path / "m.token").read_text().startswith("tbl_")
        r2 = httpx.get(srv.url + "/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert r2.status_code == 200
    finally:
        srv.stop()


def test_a_users_password_is_set_from_the_command_line(tmp_path: Path) -> None:
    """The first admin has no password, and the desktop app on another machine logs in with one: only the API
    (or the app, logged in already) could set it."""
    data = ["--data-dir", str(tmp_path)]
    srv = ServerProcess(data_dir=tmp_path, database_url=None).start()

    def login(name: str, password: str) -> int:
        body = {"username": name, "password": password}
        return httpx.post(srv.url + "/api/v1/auth/login", json=body, timeout=30).status_code

    try:
        r = tablao("users", "password", "admin", "--password", "correct horse", *data)
        assert r.returncode == 0 and "password of user admin set" in r.stdout, r.stderr
        assert login("admin", "correct horse") == 200
        piped = subprocess.run(
            tablao_command("users", "password", "admin", *data), cwd=ROOT, env=child_env(), input="battery staple\n",
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert piped.returncode == 0, piped.stderr
        assert login("admin", "battery staple") == 200 and login("admin", "correct horse") == 401
        r = tablao("users", "password", "admin", "--password", "short", *data)
        assert r.returncode == 2 and "--password is refused" in r.stderr and "short" not in r.stderr
        r = tablao("users", "password", "nobody", "--password", "long enough", *data)
        assert r.returncode == 1 and "no user named 'nobody'" in r.stderr
    finally:
        srv.stop()
