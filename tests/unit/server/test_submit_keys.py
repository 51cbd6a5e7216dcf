"""`POST /jobs` with an `Idempotency-Key`, in process on a real SQLite file and on PostgreSQL: a repeat gets the
job the first request made, never a second one, also when the repeats come at once; a different body, a bad key
or another user's key are told apart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.jobs import JobSubmission
from services.protocol.states import JobStatus
from services.server.config import ServerConfig
from services.server.db.tables import CanceledSubmitKeyRow, JobRow
from services.server.store import orphans, submission, submit_keys
from services.server.store.jobs import Actor
from services.server.store.submission import SubmitKey
from tests.support.databases import database_url
from tests.support.inprocess_server import admin_client, stored_jobs_and_tasks

JOBS = "/api/v1/jobs"
KEY = "Idempotency-Key"


@pytest.fixture(params=["sqlite", "postgres"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    with database_url(request.param, tmp_path) as url:
        config = ServerConfig(data_dir=tmp_path, database_url=url, max_active_jobs_per_user=4)
        async with admin_client(config) as c:
            yield c


def job(frames: str = "1-3", **more: Any) -> dict[str, Any]:
    return {"name": "j", "type": "exec", "settings": {"command": ["true"], "frames": frames, "chunk_size": 1}, **more}


async def submit(client: httpx.AsyncClient, body: dict[str, Any], key: str, **headers: str) -> httpx.Response:
    return await client.post(JOBS, json=body, headers={KEY: key, **headers})


async def test_a_repeat_gets_the_job_the_first_request_made(client: httpx.AsyncClient) -> None:
    first = await submit(client, job(), "shot-010/lighting/v3")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    # the same body with its keys in another order is the same submission
    again_body = {"settings": {"chunk_size": 1, "frames": "1-3", "command": ["true"]}, "type": "exec", "name": "j"}
    again = await submit(client, again_body, "shot-010/lighting/v3")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert stored_jobs_and_tasks(client) == (1, 3)
    log = (await client.get(f"{JOBS}/{first.json()['id']}/log")).json()
    assert sum("submitted by" in e["message"] for e in log) == 1
    # without a key, or with another, the same body is another job
    assert (await client.post(JOBS, json=job())).status_code == 201
    assert (await submit(client, job(), "shot-010/lighting/v4")).status_code == 201
    assert stored_jobs_and_tasks(client) == (3, 9)


async def test_a_repeat_answers_with_the_job_as_it_is_now(client: httpx.AsyncClient) -> None:
    first = (await submit(client, job(), "k1")).json()
    r = await client.post(f"{JOBS}/{first['id']}/status", json={"action": "pause"})
    assert r.status_code == 200, r.text
    again = await submit(client, job(), "k1")
    assert again.status_code == 200 and again.json()["status"] in ("paused", "pausing"), again.text


async def test_the_same_key_with_another_body_is_refused_and_changes_nothing(client: httpx.AsyncClient) -> None:
    first = await submit(client, job("1-3"), "k")
    assert first.status_code == 201
    for other in (job("1-4"), job("1-3", priority=60), job("1-3", start_paused=True)):
        r = await submit(client, other, "k")
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == KEY
        assert f"job {first.json()['id']}" in r.json()["detail"]
    assert stored_jobs_and_tasks(client) == (1, 3)
    detail = (await client.get(f"{JOBS}/{first.json()['id']}")).json()
    assert detail["priority"] == 50 and detail["tasks_total"] == 3


@pytest.mark.parametrize(
    "bad",
    [[""], ["has space"], ["x" * 129], ["tab\there"], ["caf\u00e9"], ["line\x7f"], ["a", "b"]],
    ids=["empty", "space", "129 chars", "tab", "latin-1", "del", "two of them"],
)
async def test_a_malformed_key_is_refused_naming_the_header(client: httpx.AsyncClient, bad: list[str]) -> None:
    r = await client.post(JOBS, json=job(), headers=[(KEY.encode(), b.encode("latin-1")) for b in bad])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == KEY, r.text
    assert stored_jobs_and_tasks(client) == (0, 0)


async def test_the_longest_key_is_taken(client: httpx.AsyncClient) -> None:
    key = "~" + "a" * 126 + "!"
    assert (await submit(client, job(), key)).status_code == 201
    assert (await submit(client, job(), key)).status_code == 200


async def test_a_key_is_its_users_own(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/users", json={"name": "ana", "role": "wrangler", "password": "a-long-password-1"})
    assert r.status_code == 201, r.text
    token = await client.post("/api/v1/tokens", json={"user": "ana", "name": "t"})
    assert token.status_code == 201, token.text
    ana = {"Authorization": f"Bearer {token.json()['token']}"}
    mine = await submit(client, job(), "same")
    hers = await client.post(JOBS, json=job(), headers={KEY: "same", **ana})
    assert hers.status_code == 201, hers.text
    assert hers.json()["id"] != mine.json()["id"] and hers.json()["submitter"] == "ana"
    again = await client.post(JOBS, json=job(), headers={KEY: "same", **ana})
    assert again.status_code == 200 and again.json()["id"] == hers.json()["id"]
    # demoted meanwhile: the repeat still gets her job (today's policy refuses artists `exec`), a new one does not
    demoted = await client.patch(f"/api/v1/users/{r.json()['id']}", json={"role": "artist"})
    assert demoted.status_code == 200, demoted.text
    again = await client.post(JOBS, json=job(), headers={KEY: "same", **ana})
    assert again.status_code == 200 and again.json()["id"] == hers.json()["id"], again.text
    refused = await client.post(JOBS, json=job(), headers={KEY: "another", **ana})
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "type", refused.text


async def test_a_refused_submission_leaves_its_key_free_and_a_deleted_job_frees_it(client: httpx.AsyncClient) -> None:
    for _ in range(4):
        assert (await client.post(JOBS, json=job())).status_code == 201
    r = await submit(client, job(), "after-quota")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "quota", r.text  # over 4 unfinished jobs
    ids = [j["id"] for j in (await client.get(JOBS)).json()["items"]]
    assert (await client.post(f"{JOBS}/{ids[0]}/status", json={"action": "cancel"})).status_code == 200
    made = await submit(client, job(), "after-quota")
    assert made.status_code == 201, made.text
    assert (await client.post(f"{JOBS}/{made.json()['id']}/status", json={"action": "cancel"})).status_code == 200
    assert (await client.delete(f"{JOBS}/{made.json()['id']}")).status_code == 204
    remade = await submit(client, job(), "after-quota")
    assert remade.status_code == 201 and remade.json()["id"] != made.json()["id"], remade.text


@pytest.mark.parametrize("frames", ["1-3", f"1-{submission.SMALL_JOB + 20}"], ids=["small", "in chunks"])
async def test_repeats_at_once_store_one_job(client: httpx.AsyncClient, frames: str) -> None:
    answers = await asyncio.gather(*(submit(client, job(frames), "at-once") for _ in range(6)))
    made = [r for r in answers if r.status_code == 201]
    assert len(made) == 1, [(r.status_code, r.text[:200]) for r in answers]
    job_id = made[0].json()["id"]
    for r in answers:
        if r.status_code == 200:
            assert r.json()["id"] == job_id
        elif r.status_code == 409:  # the first was still storing its tasks: ask again
            assert r.json()["errors"][0]["field"] == KEY and r.headers["Retry-After"] == "1", r.text
        else:
            assert r.status_code == 201
    assert stored_jobs_and_tasks(client)[0] == 1
    assert (await submit(client, job(frames), "at-once")).json()["id"] == job_id


async def test_repeats_at_once_of_the_job_that_reaches_the_quota_are_not_refused_for_it(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        assert (await client.post(JOBS, json=job())).status_code == 201
    answers = await asyncio.gather(*(submit(client, job(), "the-fourth") for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [200] * 5 + [201], [r.text[:200] for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1


async def test_a_repeat_of_a_job_canceled_while_it_was_stored_is_refused_and_builds_nothing(
    client: httpx.AsyncClient,
) -> None:
    """A wrangler canceled the job while its tasks were being stored (its removal under way): a client still
    asking with the key must not build it again; a job whose Server died while storing it is still coming."""
    made = (await submit(client, job(), "canceled-while-stored")).json()
    with client.app.state.write_sessions() as session:  # type: ignore[attr-defined]
        row = session.get_one(JobRow, made["id"])
        row.status, row.activity = JobStatus.UNDER_CONSTRUCTION.value, orphans.CANCELED_UNBUILT
        session.commit()
    r = await submit(client, job(), "canceled-while-stored")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "status", r.text
    assert "canceled while its tasks were being stored" in r.json()["detail"] and "Retry-After" not in r.headers
    with client.app.state.write_sessions() as session:  # type: ignore[attr-defined]
        session.get_one(JobRow, made["id"]).activity = ""
        session.commit()
    r = await submit(client, job(), "canceled-while-stored")
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == KEY, r.text


def test_only_the_keys_own_index_counts_as_a_repeat() -> None:
    clash = IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: jobs.submitter, jobs.submit_key"))
    pg_clash = IntegrityError(
        "INSERT", {}, Exception('duplicate key value violates unique constraint "ux_jobs_submit_key"')
    )
    gone = IntegrityError("INSERT", {}, Exception("FOREIGN KEY constraint failed"))
    assert submit_keys.is_key_clash(clash) and submit_keys.is_key_clash(pg_clash)
    assert not submit_keys.is_key_clash(gone)


@pytest.mark.postgres
async def test_on_postgresql_a_repeat_whose_first_commits_before_its_quota_check_gets_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat's key read sees nothing, then the first request commits its job, which fills the quota the
    repeat checks next: the repeat answers with that job, not the quota's 409."""
    with database_url("postgres", tmp_path) as url:
        config = ServerConfig(data_dir=tmp_path, database_url=url, max_active_jobs_per_user=1)
        async with admin_client(config) as client:
            state = client.app.state  # type: ignore[attr-defined]
            really_taken = submit_keys.taken
            first: list[int] = []
            raced: list[bool] = []

            def store_the_first(actor: Actor, key: str) -> None:
                sub = JobSubmission.model_validate(job())
                limits = submission.Limits(None, 1, None)
                made = submission.submit(state.read_sessions, state.write_sessions, sub, actor, limits,
                                         lambda _s, _j: nullcontext(), state.builds,
                                         SubmitKey(key, submit_keys.digest(sub)))  # fmt: skip
                first.append(made.id)

            def taken(session: Session, actor: Actor, key: str) -> bool:
                found = really_taken(session, actor, key)
                if not raced:  # the repeat's read is done: the first request now stores its job and commits
                    raced.append(True)
                    other = threading.Thread(target=store_the_first, args=(actor, key))
                    other.start()
                    other.join(10)
                return found

            monkeypatch.setattr(submit_keys, "taken", taken)
            r = await submit(client, job(), "raced")
            assert first and r.status_code == 200 and r.json()["id"] == first[0], r.text
            assert stored_jobs_and_tasks(client) == (1, 3)


async def test_a_job_canceled_while_stored_is_not_built_again_by_a_repeat_after_its_removal(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission, "CHUNK", 500)
    monkeypatch.setattr(submission, "CHUNK_PAUSE", 0.3)  # a slow store: a window to cancel in
    body = job("1-3000")
    first = asyncio.ensure_future(submit(client, body, "canceled-then-removed"))
    for _ in range(100):
        await asyncio.sleep(0.05)
        building = (await client.get(JOBS, params={"status": "under-construction"})).json()["items"]
        if building:
            break
    assert building, "the job was never seen being stored"
    canceled = await client.post(f"{JOBS}/{building[0]['id']}/status", json={"action": "cancel"})
    assert canceled.status_code == 200, canceled.text
    assert (await first).status_code == 409  # its writer stopped at its next chunk and removed what it stored
    assert stored_jobs_and_tasks(client) == (0, 0)
    again = await submit(client, body, "canceled-then-removed")
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "status", again.text
    assert f"job {building[0]['id']}" in again.json()["detail"]
    assert stored_jobs_and_tasks(client) == (0, 0)
    other = await submit(client, body, "a-new-key")
    assert other.status_code == 201, other.text


async def test_the_key_of_a_job_canceled_while_stored_is_forgotten_after_a_week(client: httpx.AsyncClient) -> None:
    write_sessions = client.app.state.write_sessions  # type: ignore[attr-defined]
    now = utcnow()
    with write_sessions() as session:
        for key, age in (("last-month", timedelta(days=30)), ("yesterday", timedelta(days=1))):
            session.add(CanceledSubmitKeyRow(submitter="admin", submit_key=key, job_id=7, canceled=now - age))
        session.commit()
    with write_sessions() as session:
        assert submit_keys.prune_canceled(session) == 1
        session.commit()
    recent = await submit(client, job(), "yesterday")
    assert recent.status_code == 409 and recent.json()["errors"][0]["field"] == "status", recent.text
    old = await submit(client, job(), "last-month")  # a repeat this late is a new submission
    assert old.status_code == 201, old.text
    assert stored_jobs_and_tasks(client) == (1, 3)
