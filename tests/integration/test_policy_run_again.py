"""The submit policy holds for running a job's tasks again: a user demoted since submitting a command job (or a
farm that turned the job type off since) may not requeue or resume it, whole or a task at a time; a role the
policy allows still may. Before, the policy was only looked at when a job was submitted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_manager_basics import exec_job
from tests.support.manager import API
from tests.support.services import ServerProcess


def test_a_demoted_user_may_not_run_again_what_they_may_no_longer_submit(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
            r = admin.post("/users", json={"name": "wes", "role": "wrangler", "password": "wes-password"})
            assert r.status_code == 201, r.text
            user_id = r.json()["id"]
            token = admin.post("/tokens", json={"user": "wes"}).json()["token"]
            wes = httpx.Client(base_url=server.url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30)

            def act(job_id: int, action: str) -> httpx.Response:
                return wes.post(f"/jobs/{job_id}/status", json={"action": action})

            canceled = wes.post("/jobs", json=exec_job("to requeue", frames="1-2")).json()
            paused = wes.post("/jobs", json=exec_job("to resume", frames="1-2", start_paused=True)).json()
            assert act(canceled["id"], "cancel").status_code == 200
            waiting = wes.post("/jobs", json=exec_job("waits", frames="1", depends_on=[canceled["id"]])).json()
            task_id = wes.get(f"/jobs/{canceled['id']}/tasks").json()["items"][0]["id"]
            assert admin.patch(f"/users/{user_id}", json={"role": "artist"}).status_code == 200

            def refused(r: httpx.Response) -> None:
                assert r.status_code == 403, r.text
                body: dict[str, Any] = r.json()
                assert body["errors"][0]["field"] == "type" and "you are artist" in body["detail"], body

            refused(act(canceled["id"], "requeue"))
            refused(act(canceled["id"], "requeue-failed"))
            refused(act(paused["id"], "resume"))
            refused(wes.post(f"/tasks/{task_id}/status", json={"action": "requeue"}))
            refused(wes.post(f"/jobs/{waiting['id']}/release", json={}))  # from its canceled dependency
            r = wes.post("/jobs/bulk", json={"ids": [canceled["id"]], "action": "requeue"})
            assert r.status_code == 200 and not r.json()["results"][0]["ok"], r.text
            # nothing changed, and what the artist may still do is done
            assert admin.get(f"/jobs/{canceled['id']}").json()["status"] == "canceled"
            assert admin.get(f"/jobs/{paused['id']}").json()["status"] == "paused"
            assert act(paused["id"], "cancel").status_code == 200
            # a wrangler may run it again
            r = admin.post(f"/jobs/{canceled['id']}/status", json={"action": "requeue"})
            assert r.status_code == 200 and r.json()["status"] in ("queued", "requeueing"), r.text
            assert admin.post(f"/jobs/{canceled['id']}/status", json={"action": "cancel"}).status_code == 200
            # deleting the canceled job `waiting` waits for would let it run: the delete is the artist's to make,
            # the run is not, so `waiting` is paused, and resuming it is refused as any run again is
            r = wes.post("/jobs/bulk", json={"ids": [canceled["id"]], "delete": True})
            assert r.status_code == 200 and r.json()["results"][0]["ok"], r.text
            held = admin.get(f"/jobs/{waiting['id']}").json()
            assert held["status"] == "paused" and held["depends_on"] == [canceled["id"]], held
            said = f"job {canceled['id']}, which this job waited for, was deleted by wes"
            assert any(said in e["message"] for e in held["log"]), held["log"]
            refused(act(waiting["id"], "resume"))
            wes.close()
    finally:
        server.stop()
