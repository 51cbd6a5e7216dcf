"""A job's failures over real HTTP, on SQLite and PostgreSQL: the blocklist a Manager reports (shown, cleared
per entry, handed back to the Manager), and jobs waiting on a failed or canceled job (told, released)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_link_server import claim, kind, new_link, push, submit
from tests.support.manager import API
from tests.support.services import ServerProcess


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Server whose policy lets artists submit `exec` jobs: the jobs here are an artist's own."""
    data = tmp_path_factory.mktemp("server")
    (data / "policy.toml").write_text('[submit]\ncommand = ["artist", "wrangler", "admin"]\n')
    srv = ServerProcess(data_dir=data, database_url=db_url).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def people(server: ServerProcess) -> Iterator[dict[str, httpx.Client]]:
    """admin, wrangler, an artist who owns the jobs, and another artist."""
    out = {"admin": httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30)}
    for who, role in (("wrangler", "wrangler"), ("artist", "artist"), ("other", "artist")):
        name = f"{who}-{uuid.uuid4().hex[:6]}"
        assert out["admin"].post("/users", json={"name": name, "role": role}).status_code == 201
        token = out["admin"].post("/tokens", json={"user": name}).json()["token"]
        out[who] = httpx.Client(base_url=server.url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield out
    for client in out.values():
        client.close()


@pytest.fixture
def link(server: ServerProcess) -> Iterator[httpx.Client]:
    with new_link(server) as c:
        yield c


def report(job_id: int, worker: str, ttype: str, failures: int, threshold: int = 2) -> dict[str, Any]:
    return {"job_id": job_id, "worker_id": worker, "task_type": ttype, "worker_name": f"name-{worker}",
            "failures": failures, "threshold": threshold}  # fmt: skip


def workers(ttype: str, *ids: str) -> list[dict[str, Any]]:
    """Worker reports of these ids: a Manager's blocklist entries are taken only for its own workers."""
    return [{"id": w, "name": f"name-{w}", "platform": "linux", "task_types": [ttype], "tags": [], "status": "awake"}
            for w in ids]  # fmt: skip


def messages(client: httpx.Client, job_id: int) -> list[str]:
    return [e["message"] for e in client.get(f"/jobs/{job_id}/log").json()]


def test_a_reported_blocklist_is_shown_and_cleared_per_entry_by_those_who_may(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    job = submit(people["artist"], t, frames="1-2")
    w1, w2 = f"w-{uuid.uuid4().hex[:8]}", f"w-{uuid.uuid4().hex[:8]}"
    r = push(link, [], workers=workers(t, w1, w2), blocklist=[report(job["id"], w1, t, 2), report(job["id"], w2, t, 1)])
    assert r.status_code == 200, r.text
    entries = people["other"].get(f"/jobs/{job['id']}/blocklist").json()  # anyone reads
    got = sorted((e["worker_id"], e["failures"], e["blocked"]) for e in entries)
    assert got == sorted([(w1, 2, True), (w2, 1, False)])
    assert {(e["worker_name"], e["task_type"]) for e in entries} == {(f"name-{w1}", t), (f"name-{w2}", t)}

    body = {"entries": [{"worker_id": w1, "task_type": t}]}
    refused = people["other"].post(f"/jobs/{job['id']}/blocklist/clear", json=body)
    assert refused.status_code == 403, refused.text  # another artist's job
    ok = people["artist"].post(f"/jobs/{job['id']}/blocklist/clear", json=body)  # the owner may, as with pause
    assert ok.status_code == 200 and ok.json() == {"cleared": 1}
    assert [e["worker_id"] for e in people["admin"].get(f"/jobs/{job['id']}/blocklist").json()] == [w2]
    assert any("blocklist cleared" in m and f"name-{w1}" in m for m in messages(people["admin"], job["id"]))
    # the Manager hears it once, in the answer to its next batch, even if it reported the entry meanwhile
    ack = push(link, [], blocklist=[report(job["id"], w1, t, 3)]).json()
    assert ack["unblock"] == [{"job_id": job["id"], "worker_id": w1, "task_type": t}]
    assert push(link, []).json().get("unblock", []) == []
    # the Manager reports the entry gone; a wrangler clears the other one (any job)
    push(link, [], blocklist=[report(job["id"], w1, t, 0)])
    r = people["wrangler"].post(
        f"/jobs/{job['id']}/blocklist/clear", json={"entries": [{"worker_id": w2, "task_type": t}]}
    )
    assert r.json() == {"cleared": 1}
    assert people["admin"].get(f"/jobs/{job['id']}/blocklist").json() == []
    again = people["wrangler"].post(f"/jobs/{job['id']}/blocklist/clear", json=body)
    assert again.status_code == 200 and again.json() == {"cleared": 0}  # nothing left to clear


def test_clearing_lets_a_manager_that_gave_the_tasks_back_claim_them_again(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    job = submit(people["admin"], t, frames="1")
    (c,) = claim(link, [t])
    worker = f"w-{uuid.uuid4().hex[:8]}"
    # the Manager's only worker is blocklisted: it gives the task back; with no other Manager, the task fails
    gone = {"task_id": c["id"], "attempt": c["attempt"], "status": "queued", "unrunnable_here": True}
    push(link, [gone], workers=workers(t, worker), blocklist=[report(job["id"], worker, t, 2)])
    people["admin"].post(f"/jobs/{job['id']}/status", json={"action": "requeue"})  # resets every blocklist
    assert people["admin"].get(f"/jobs/{job['id']}/blocklist").json() == []
    assert [x["id"] for x in claim(link, [t])] == [c["id"]]


def test_a_complete_report_drops_entries_the_manager_no_longer_has(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    job = submit(people["admin"], t, frames="1")
    a, b = f"w-{uuid.uuid4().hex[:8]}", f"w-{uuid.uuid4().hex[:8]}"
    push(link, [], workers=workers(t, a, b), blocklist=[report(job["id"], a, t, 2), report(job["id"], b, t, 2)])
    push(link, [], blocklist=[report(job["id"], b, t, 3)], blocklist_complete=True)
    entries = people["admin"].get(f"/jobs/{job['id']}/blocklist").json()
    assert [(e["worker_id"], e["failures"]) for e in entries] == [(b, 3)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entries": []}, "entries"),
        ({"entries": [{"worker_id": "x" * 65, "task_type": "exec"}]}, "worker_id"),
        ({"entries": [{"worker_id": "w", "task_type": ""}]}, "task_type"),
        ({"entries": [{"worker_id": "w", "task_type": "exec"}] * 1001}, "entries"),
        ({"entries": [{"worker_id": "w", "task_type": "exec", "extra": 1}]}, "extra"),
        ({}, "entries"),
    ],
)
def test_bad_clear_requests_are_refused_naming_the_field(
    people: dict[str, httpx.Client], body: dict[str, Any], field: str
) -> None:
    job = submit(people["admin"], kind(), frames="1")
    r = people["admin"].post(f"/jobs/{job['id']}/blocklist/clear", json=body)
    assert r.status_code == 422, r.text
    assert any(field in e["field"] for e in r.json()["errors"]), r.json()
    assert people["admin"].post("/jobs/999999999/blocklist/clear", json={"entries": [{"worker_id": "w",
                                "task_type": "x"}]}).status_code == 404  # fmt: skip
    assert people["admin"].get(f"/jobs/{2**63}/blocklist").status_code == 422


def test_bad_blocklist_reports_are_refused_and_change_nothing(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    job = submit(people["admin"], t, frames="1")
    for bad in (
        report(job["id"], "w", t, -1),
        report(job["id"], "w" * 65, t, 1),
        {**report(job["id"], "w", t, 1), "threshold": 0},
    ):
        r = link.post("/updates", json={"seq": link.seq + 1, "blocklist": [bad]})  # type: ignore[attr-defined]
        assert r.status_code == 422, r.text
    # users' clients send their token to it: only a URL the Manager's own start would take (an API fuzzing audit)
    for url in ("javascript:alert(1)", "http://x:99999", "http://[::1", "http://a@b", "http://x/\u202e", "http://x/?q"):
        r = link.post("/updates", json={"seq": link.seq + 1, "client_url": url})  # type: ignore[attr-defined]
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "client_url", (url, r.text)
    # a report about a job that does not exist is ignored, and the batch goes through
    assert push(link, [], blocklist=[report(999_999_999, "w", t, 2)]).status_code == 200
    assert people["admin"].get(f"/jobs/{job['id']}/blocklist").json() == []


def test_a_job_waiting_on_a_canceled_job_says_so_and_can_be_released(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    first = submit(people["artist"], t, frames="1")
    waiting = submit(people["artist"], t, frames="1", depends_on=[first["id"]])
    assert people["artist"].post(f"/jobs/{first['id']}/status", json={"action": "cancel"}).status_code == 200
    told = people["admin"].get(f"/jobs/{waiting['id']}").json()
    assert f"waiting for job {first['id']}" in told["activity"] and "was canceled" in told["activity"]
    assert any("release the dependency or cancel this job" in m for m in messages(people["admin"], waiting["id"]))
    deps = people["other"].get(f"/jobs/{waiting['id']}/dependencies").json()
    assert deps == [{"job_id": first["id"], "name": first["name"], "status": "canceled", "blocking": True}]
    assert claim(link, [t]) == []  # it still waits

    assert people["other"].post(f"/jobs/{waiting['id']}/release", json={}).status_code == 403
    r = people["artist"].post(f"/jobs/{waiting['id']}/release", json={"job_ids": [123456789]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "job_ids"
    r = people["artist"].post(f"/jobs/{waiting['id']}/release", json={"reason": "the plate is final"})
    assert r.status_code == 200, r.text
    assert r.json()["depends_on"] == []
    assert any("released from its dependency" in m and "the plate is final" in m
               for m in messages(people["admin"], waiting["id"]))  # fmt: skip
    assert [c["job_id"] for c in claim(link, [t])] == [waiting["id"]]  # it runs now
    assert people["artist"].post(f"/jobs/{first['id']}/release", json={}).status_code == 422  # finished: nothing


def test_a_job_submitted_after_its_dependency_failed_says_so_at_once(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    t = kind()
    first = submit(people["admin"], t, frames="1", max_task_failures=1)
    (c,) = claim(link, [t])
    push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "failed"}])
    assert people["admin"].get(f"/jobs/{first['id']}").json()["status"] == "failed"
    later = submit(people["admin"], t, frames="1", depends_on=[first["id"]])
    job = people["admin"].get(f"/jobs/{later['id']}").json()
    assert "which failed" in job["activity"]
    # a wrangler may release any job, and cancel it instead
    r = people["wrangler"].post(f"/jobs/{later['id']}/release", json={"job_ids": [first["id"]]})
    assert r.status_code == 200 and r.json()["depends_on"] == []
    bad = people["wrangler"].post(f"/jobs/{later['id']}/release", json={"job_ids": []})
    assert bad.status_code == 422


def test_an_artist_deletes_her_canceled_job_that_another_artists_job_waits_for(
    people: dict[str, httpx.Client], link: httpx.Client
) -> None:
    """Any artist could make a job wait for hers and so keep her from ever deleting her own job (403). The
    delete is hers; letting his job run is not: it is paused, and its owner resumes (it runs) or cancels it."""
    t = kind()
    hers = submit(people["artist"], t, frames="1")
    assert people["artist"].post(f"/jobs/{hers['id']}/status", json={"action": "cancel"}).status_code == 200
    his = submit(people["other"], t, frames="1", depends_on=[hers["id"]])
    mine_too = submit(people["artist"], t, frames="1", depends_on=[hers["id"]])
    r = people["artist"].delete(f"/jobs/{hers['id']}")
    assert r.status_code == 204, r.text
    held = people["admin"].get(f"/jobs/{his['id']}").json()
    assert held["status"] == "paused", held
    assert any(f"job {hers['id']}, which this job waited for, was deleted by" in m for m in messages(
        people["admin"], his["id"]))  # fmt: skip
    assert [c["job_id"] for c in claim(link, [t])] == [mine_too["id"]]  # hers is released, his is not
    assert people["artist"].post(f"/jobs/{his['id']}/status", json={"action": "resume"}).status_code == 403
    r = people["other"].post(f"/jobs/{his['id']}/status", json={"action": "resume"})
    assert r.status_code == 200, r.text
    assert [c["job_id"] for c in claim(link, [t])] == [his["id"]]  # its owner chose: it runs without hers


def test_a_farm_may_cap_the_priority_artists_give(tmp_path: Path) -> None:
    """Nothing kept an artist from putting every job of hers ahead of the whole queue (priority 100)."""
    (tmp_path / "policy.toml").write_text("[priority]\nartist = 60\n")
    srv = ServerProcess(data_dir=tmp_path, database_url=None).start()
    try:
        with httpx.Client(base_url=srv.url + API, headers=srv.headers(), timeout=30) as admin:
            assert admin.post("/users", json={"name": "ana", "role": "artist"}).status_code == 201
            token = admin.post("/tokens", json={"user": "ana"}).json()["token"]
            ana = httpx.Client(base_url=srv.url + API, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            body = {"name": "r", "type": "blender-render", "priority": 90,
                    "settings": {"blendfile": "/p/a.blend", "output_path": "/r/f_####", "frames": "1"}}  # fmt: skip
            r = ana.post("/jobs", json=body)
            assert r.status_code == 403 and r.json()["errors"][0]["field"] == "priority", r.text
            job = ana.post("/jobs", json=body | {"priority": 60}).json()
            for change in (ana.post(f"/jobs/{job['id']}/priority", json={"priority": 61}),
                           ana.post("/jobs/bulk", json={"ids": [job["id"]], "priority": 99})):  # fmt: skip
                assert change.status_code in (200, 403), change.text
                assert "priority 60 at most" in change.text
            assert admin.post(f"/jobs/{job['id']}/priority", json={"priority": 95}).status_code == 200
            assert ana.post(f"/jobs/{job['id']}/priority", json={"priority": 70}).json()["priority"] == 70
            ana.close()
    finally:
        srv.stop()
