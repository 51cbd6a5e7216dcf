"""On the all-in-one farm, an artist cannot run arbitrary commands, reach a service's secret or write outside
the output roots, and even a wrangler's `exec` task finds every secret out of reach (docs/security.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.worker import landlock
from tests.support.farm import FarmClient, local_farm, need_programs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _render(output: str) -> dict[str, Any]:
    settings = {"blendfile": "/nonexistent/scene.blend", "frames": "1", "output_path": output, "preview_video": False}
    return {"name": "r", "type": "blender-render", "settings": settings, "max_task_failures": 1}


def _artist(farm: FarmClient) -> httpx.Client:
    assert farm.server.post("/users", json={"name": "ana", "role": "artist"}).status_code == 201
    r = farm.server.post("/tokens", json={"user": "ana"})
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    return httpx.Client(base_url=farm.farm.server_url + "/api/v1", headers=headers, timeout=30)


def _first_task_log(farm: FarmClient, job_id: int, needle: str) -> str:
    def found() -> str | None:
        tasks = farm.job(job_id)["tasks"]
        if not tasks:
            return None
        r = farm.manager.get(f"/tasks/{tasks[0]['id']}/log")  # 404 until the worker's first lines arrive
        return r.text if r.status_code == 200 and needle in r.text else None

    def describe() -> str:
        tasks = farm.job(job_id)["tasks"]
        log = farm.manager.get(f"/tasks/{tasks[0]['id']}/log").text if tasks else ""
        return f"no {needle!r} in the task log of job {job_id}:\n{log}"

    return str(farm.wait_for(found, 120, describe))


def test_artist_job_reaches_no_secret_and_writes_only_under_the_output_roots(tmp_path: Path) -> None:
    need_programs("blender")
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock: a shared-user farm cannot keep secrets from tasks here")
    data = tmp_path / "farm"
    with local_farm(data, workers=1) as farm:
        render_root = farm.farm.render_root
        worker_file = data / "worker-1" / "worker.json"
        farm.wait_for(worker_file.exists, 60, lambda: "the worker never registered")
        secrets = {
            "admin token": farm.farm.admin_token_file.read_text().strip(),
            "Manager token": farm.farm.layout.manager_token_file.read_text().strip(),
            "registration secret": (data / "manager" / "worker-registration.secret").read_text().strip(),
            "worker secret": json.loads(worker_file.read_text())["secret"],
        }
        artist = _artist(farm)

        # an artist may not run arbitrary commands: 403 naming the job type
        r = artist.post("/jobs", json={"name": "x", "type": "exec", "settings": {"command": ["id"]}})
        assert r.status_code == 403, r.text
        assert "'exec'" in r.json()["detail"]

        # outputs outside the roots, as written or through `..`, are refused at submission
        for bad in ("/var/tmp/evil/frame_####", "{render_root}/../../server/frame_####", "relative/frame_####"):
            r = artist.post("/jobs", json=_render(bad))
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["errors"][0]["field"] == "settings.output_path"

        # a link planted inside the render root is caught by the worker before Blender starts
        render_root.mkdir(parents=True, exist_ok=True)
        (render_root / "sneaky").symlink_to(data / "server")
        r = artist.post("/jobs", json=_render("{render_root}/sneaky/frame_####"))
        assert r.status_code == 201, r.text
        log = _first_task_log(farm, r.json()["id"], "parameter 'output'")
        assert f"inside the protected {data}" in log

        # even an admin's `exec` task reaches no secret and writes nowhere but the roots and its scratch folder
        outside = Path("/var/tmp") / f"tablao-planted-{uuid.uuid4().hex}"
        files = [farm.farm.admin_token_file, farm.farm.layout.manager_token_file, worker_file,
                 data / "manager" / "worker-registration.secret"]  # fmt: skip
        script = "; ".join(
            [
                *(f"cat {f}" for f in files),
                f"ls {data / 'server'}",
                f"cat {data / 'server'}/*",
                "cat /proc/[0-9]*/environ | tr '\\0' '\\n'",
                f"echo x > {data / 'server' / 'planted'}",
                f"echo x > {outside}",
                f"echo in-root > {render_root / 'ok.txt'}",
                "echo scratch > $TMPDIR/s && cat $TMPDIR/s",
                "echo ENV-START",
                "env",
                "echo done",
            ]
        )
        body = {
            "name": "probe",
            "type": "exec",
            "settings": {"command": ["sh", "-c", script], "env": {"LD_PRELOAD": "/nonexistent/x.so"}},
        }
        job = farm.submit(body)
        log = _first_task_log(farm, job["id"], "\ndone")
        for what, value in secrets.items():
            assert value not in log, f"the {what} leaked into the task log"
        assert "Permission denied" in log
        task_env = log.split("ENV-START", 1)[1]
        assert "LD_PRELOAD=" not in task_env and "TABLAO_" not in task_env
        assert "not passed on" in log and "scratch" in log
        assert not (data / "server" / "planted").exists()
        assert not outside.exists()
        # the same task could write where it should: the check is not a broken worker
        assert (render_root / "ok.txt").read_text() == "in-root\n"
        artist.close()
        _assert_private(data)


def _assert_private(data: Path) -> None:
    """Every service's folder 0700; databases (with their WAL), secrets and logs 0600."""
    checked = 0
    for service in ("server", "manager", "worker-1"):
        assert (data / service).stat().st_mode & 0o777 == 0o700, service
    for path in data.rglob("*"):
        if path.is_symlink() or "render" in path.parts:
            continue  # the render root holds outputs, which keep the farm's usual modes
        if path.suffix in {".sqlite", ".token", ".secret", ".json", ".log"} or path.name.endswith(
            (".sqlite-wal", ".sqlite-shm")
        ):
            assert path.stat().st_mode & 0o777 == 0o600, f"{path} is {oct(path.stat().st_mode & 0o777)}"
            checked += 1
    assert checked >= 8
