"""The Server's job and task API over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.services import ServerProcess

API = "/api/v1"


def render_job(name: str = "shot", frames: str = "1-8", chunk: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "blender-render",
        "settings": {
            "blendfile": "/projects/shot.blend",
            "frames": frames,
            "chunk_size": chunk,
            "output_path": "/renders/shot/frame_####",
            "preview_video": True,
            **extra,
        },
    }


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


def submit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_submit_render_job_compiles_tasks_and_dependencies(client: httpx.Client) -> None:
    job = submit(client, render_job())
    assert job["status"] == "queued"
    assert job["tasks_total"] == 5
    assert job["submitter"] == "admin"
    detail = client.get(f"/jobs/{job['id']}").json()
    names = [t["name"] for t in detail["tasks"]]
    assert len(names) == 5 and names[-1] == "preview-video"
    assert [t["type"] for t in detail["tasks"]] == ["blender"] * 4 + ["ffmpeg"]
    render_ids = [t["id"] for t in detail["tasks"][:4]]
    preview = client.get(f"/tasks/{detail['tasks'][-1]['id']}").json()
    assert sorted(preview["depends_on"]) == sorted(render_ids)
    first = client.get(f"/tasks/{render_ids[0]}").json()
    assert first["commands"][0]["name"] == "blender-render"
    assert first["commands"][0]["parameters"]["frames"] == "1..2"
    assert first["depends_on"] == []
    assert "submitted by admin: 5 tasks" in detail["log"][0]["message"]


def test_list_filter_sort_and_cursor_paging(client: httpx.Client) -> None:
    ids = [submit(client, render_job(name=f"paged {i:02d}", frames="1-2"))["id"] for i in range(7)]
    mine = {"search": "paged"}
    client.post(f"/jobs/{ids[3]}/priority", json={"priority": 90}).raise_for_status()
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **mine, **({"cursor": cursor} if cursor else {})}
        page = client.get("/jobs", params=params).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)  # newest first, every job once
    by_prio = client.get("/jobs", params={"sort": "-priority", "limit": 1, **mine}).json()["items"]
    assert by_prio[0]["id"] == ids[3]
    found = client.get("/jobs", params={"search": "paged 05"}).json()["items"]
    assert [j["id"] for j in found] == [ids[5]]
    assert client.get("/jobs", params={"submitter": "nobody"}).json()["items"] == []
    assert len(client.get("/jobs", params={"type": "blender-render", "limit": 100, **mine}).json()["items"]) == 7
    assert client.get("/jobs", params={"type": "exec", **mine}).json()["items"] == []
    asc = client.get("/jobs", params={"sort": "name", "limit": 2, **mine}).json()
    assert [j["name"] for j in asc["items"]] == ["paged 00", "paged 01"]
    nxt = client.get("/jobs", params={"sort": "name", "limit": 2, "cursor": asc["next_cursor"], **mine}).json()
    assert [j["name"] for j in nxt["items"]] == ["paged 02", "paged 03"]


def test_pause_resume_cancel_requeue(client: httpx.Client) -> None:
    job = submit(client, render_job())
    jid = job["id"]

    def status(action: str) -> dict[str, Any]:
        r = client.post(f"/jobs/{jid}/status", json={"action": action})
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert status("pause")["status"] == "paused"
    tasks = client.get(f"/jobs/{jid}/tasks").json()["items"]
    assert {t["status"] for t in tasks} == {"paused"}
    r = client.post(f"/jobs/{jid}/status", json={"action": "pause"})
    assert r.status_code == 409 and "cannot pause a job that is paused" in r.json()["detail"]
    assert status("resume")["status"] == "queued"
    assert {t["status"] for t in client.get(f"/jobs/{jid}/tasks").json()["items"]} == {"queued"}
    canceled = status("cancel")
    assert canceled["status"] == "canceled" and canceled["tasks_canceled"] == 5
    requeued = status("requeue")
    assert requeued["status"] == "queued" and requeued["tasks_canceled"] == 0
    log = [e["message"] for e in client.get(f"/jobs/{jid}/log").json()]
    assert any("queued → paused" in m for m in log)
    assert any("canceled → requeueing" in m for m in log)


def test_requeue_failed_on_paused_job_keeps_it_paused(client: httpx.Client) -> None:
    """requeue-failed on a paused job makes its canceled (and failed) tasks paused with the rest, the job stays
    paused, and a resume runs them all: never a queued job whose tasks are all paused (which nothing can run)."""
    single = submit(client, render_job(name="rqf single"))
    bulk = submit(client, render_job(name="rqf bulk"))

    def setup(jid: int) -> None:
        first = client.get(f"/jobs/{jid}/tasks").json()["items"][0]
        client.post(f"/tasks/{first['id']}/status", json={"action": "cancel"}).raise_for_status()
        client.post(f"/jobs/{jid}/status", json={"action": "pause"}).raise_for_status()

    def tasks_of(jid: int) -> list[str]:
        return [t["status"] for t in client.get(f"/jobs/{jid}/tasks").json()["items"]]

    for jid in (single["id"], bulk["id"]):
        setup(jid)
        assert "canceled" in tasks_of(jid) and "paused" in tasks_of(jid)
    r = client.post(f"/jobs/{single['id']}/status", json={"action": "requeue-failed"})
    assert r.status_code == 200, r.text
    r = client.post("/jobs/bulk", json={"ids": [bulk["id"]], "action": "requeue-failed"})
    assert r.status_code == 200 and r.json()["results"][0]["ok"] is True, r.text
    for jid in (single["id"], bulk["id"]):
        job = client.get(f"/jobs/{jid}").json()
        assert job["status"] == "paused" and job["tasks_canceled"] == 0
        assert set(tasks_of(jid)) == {"paused"}
        r = client.post(f"/jobs/{jid}/status", json={"action": "resume"})
        assert r.status_code == 200 and r.json()["status"] == "queued", r.text
        assert set(tasks_of(jid)) == {"queued"}


def test_task_requeue_and_cancel(client: httpx.Client) -> None:
    job = submit(client, render_job())
    tasks = client.get(f"/jobs/{job['id']}/tasks").json()["items"]
    first, preview = tasks[0], tasks[-1]
    r = client.post(f"/tasks/{first['id']}/status", json={"action": "requeue"})
    assert r.status_code == 409 and "cannot requeue a task that is queued" in r.json()["detail"]
    r = client.post(f"/tasks/{first['id']}/status", json={"action": "cancel"})
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    # the preview waits on the canceled render, so it can never run: it is canceled too
    assert client.get(f"/tasks/{preview['id']}").json()["status"] == "canceled"
    r = client.post(f"/tasks/{first['id']}/status", json={"action": "requeue"})
    assert r.status_code == 200 and r.json()["status"] == "queued"


def test_bulk_actions_report_each_job(client: httpx.Client) -> None:
    a = submit(client, render_job(name="a"))["id"]
    b = submit(client, render_job(name="b"))["id"]
    client.post(f"/jobs/{b}/status", json={"action": "pause"}).raise_for_status()
    r = client.post("/jobs/bulk", json={"ids": [a, b, 999999], "action": "pause"})
    assert r.status_code == 200
    results = {x["id"]: x for x in r.json()["results"]}
    assert results[a]["ok"] is True
    assert results[b]["ok"] is False and "paused" in results[b]["error"]
    assert results[999999]["ok"] is False and "no job with id 999999" in results[999999]["error"]
    r = client.post("/jobs/bulk", json={"ids": [a, b], "priority": 80})
    assert all(x["ok"] for x in r.json()["results"])
    assert client.get(f"/jobs/{a}").json()["priority"] == 80
    client.post("/jobs/bulk", json={"ids": [a, b], "action": "cancel"}).raise_for_status()
    r = client.post("/jobs/bulk", json={"ids": [a, b], "delete": True})
    assert all(x["ok"] for x in r.json()["results"]), r.text
    assert client.get(f"/jobs/{a}").status_code == 404


def test_delete_only_finished_jobs(client: httpx.Client) -> None:
    jid = submit(client, render_job())["id"]
    r = client.delete(f"/jobs/{jid}")
    assert r.status_code == 409 and "only completed, canceled or failed" in r.json()["detail"]
    client.post(f"/jobs/{jid}/status", json={"action": "cancel"}).raise_for_status()
    assert client.delete(f"/jobs/{jid}").status_code == 204
    assert client.get(f"/jobs/{jid}/tasks").status_code == 404


def test_job_types_and_farm_status(client: httpx.Client) -> None:
    types = {t["name"]: t for t in client.get("/job-types").json()}
    assert set(types) == {"blender-render", "blender-bake", "blender-still", "ffmpeg-encode", "exec", "openjd"}
    schema = client.get("/job-types/blender-render").json()["settings_schema"]
    assert "blendfile" in schema["required"]
    assert client.get("/job-types/nope").status_code == 404
    before = client.get("/farm/status").json()
    submit(client, render_job())
    after = client.get("/farm/status").json()
    assert after["jobs"].get("queued", 0) == before["jobs"].get("queued", 0) + 1
    assert after["tasks"]["waiting"] == before["tasks"]["waiting"] + 5


def test_openapi_is_published(server: ServerProcess) -> None:
    doc = httpx.get(server.url + API + "/openapi.json").json()
    assert "/api/v1/jobs" in doc["paths"]


def test_a_chain_of_a_thousand_openjd_steps_is_a_job(client: httpx.Client) -> None:
    """Ordering the steps recursed once per step: 1,000 dependent steps listed last step first were a 500."""

    def step(i: int) -> dict[str, Any]:
        after = {"dependencies": [{"dependsOn": f"s{i - 1}"}]} if i else {}
        return {"name": f"s{i}", "script": {"actions": {"onRun": {"command": "echo"}}}, **after}

    template = {"specificationVersion": "jobtemplate-2023-09", "name": "chain",
                "steps": [step(i) for i in reversed(range(1000))]}  # fmt: skip
    job = submit(client, {"name": "chain", "type": "openjd", "settings": {"template": template}})
    assert job["tasks_total"] == 1000
    tasks = client.get(f"/jobs/{job['id']}/tasks", params={"limit": 1000}).json()["items"]
    assert [t["name"] for t in tasks[:3]] == ["s0", "s1", "s2"] and tasks[-1]["name"] == "s999"
    last = client.get(f"/tasks/{tasks[-1]['id']}").json()
    assert last["depends_on"] == [tasks[-2]["id"]]
