"""Job submission in process on a real SQLite file: small jobs in one transaction, big ones in chunks, the same
limits and quotas either way, and a refused job leaves nothing behind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.config import ServerConfig
from services.server.db.tables import JobRow, WorkerRow
from services.server.jobtypes.exec_job import ExecJob
from services.server.store import farm, submission
from services.server.store.task_writer import TaskWriter
from tests.support.inprocess_server import admin_client, stored_jobs_and_tasks

JOBS = "/api/v1/jobs"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = ServerConfig(
        data_dir=tmp_path, max_tasks_per_job=150, max_active_jobs_per_user=3, max_unfinished_tasks_per_user=250
    )
    async with admin_client(config) as c:
        yield c


def job(frames: str) -> dict[str, object]:
    return {"name": "j", "type": "exec", "settings": {"command": ["true"], "frames": frames, "chunk_size": 1}}


async def test_small_and_big_jobs_are_stored_whole_with_their_tasks(client: httpx.AsyncClient) -> None:
    small = await client.post(JOBS, json=job("1-3"))
    assert small.status_code == 201, small.text
    assert small.json()["status"] == "queued" and small.json()["tasks_total"] == 3
    big = await client.post(JOBS, json=job(f"1-{submission.SMALL_JOB + 20}"))
    assert big.status_code == 201, big.text
    assert big.json()["tasks_total"] == submission.SMALL_JOB + 20
    assert stored_jobs_and_tasks(client) == (2, 3 + submission.SMALL_JOB + 20)
    tasks = (await client.get(f"{JOBS}/{small.json()['id']}/tasks")).json()
    items = tasks["items"] if isinstance(tasks, dict) else tasks
    assert sorted(t["name"] for t in items) == ["frame 1", "frame 2", "frame 3"]


async def test_limits_and_quotas_hold_for_small_jobs_and_a_refused_job_leaves_nothing(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(JOBS, json=job("1-151"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settings", r.text
    assert stored_jobs_and_tasks(client) == (0, 0)
    r = await client.post(JOBS, json={**job("1"), "depends_on": [999]})
    assert r.status_code == 422 and stored_jobs_and_tasks(client) == (0, 0)
    for frames in ("1-100", "1-100"):
        assert (await client.post(JOBS, json=job(frames))).status_code == 201
    r = await client.post(JOBS, json=job("1-51"))  # 200 unfinished + 51 > 250
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "quota", r.text
    assert (await client.post(JOBS, json=job("1-50"))).status_code == 201  # exactly at the limit
    r = await client.post(JOBS, json=job("1"))  # a fourth unfinished job
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "quota", r.text
    assert stored_jobs_and_tasks(client) == (3, 250)


async def test_tasks_with_big_commands_are_stored_in_smaller_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk was 5,000 tasks whatever their size: 2,098 tasks of 250 kB commands took 1 GB of the Server's
    memory at once. Here 20 kB a task and a budget of 200 kB a chunk: at most 10 at a time after the first."""
    chunks: list[int] = []
    add = TaskWriter.add

    def recorded(self: TaskWriter, session: Any, tasks: list[Any]) -> None:
        chunks.append(len(tasks))
        add(self, session, tasks)

    monkeypatch.setattr(TaskWriter, "add", recorded)
    monkeypatch.setattr(submission, "CHUNK_BYTES", 200_000)
    command = ["echo", *(f"{i:04d}".ljust(400, "a") for i in range(50)), "{frame}"]  # about 20 kB a task
    async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
        body = {"name": "big", "type": "exec", "settings": {"command": command, "frames": "1-300", "chunk_size": 1}}
        r = await client.post(JOBS, json=body)
        assert r.status_code == 201, r.text
        assert stored_jobs_and_tasks(client) == (1, 300)
    assert sum(chunks) == 300 and chunks[0] == submission.SMALL_JOB + 1
    assert max(chunks[1:]) <= 10


async def test_a_job_asking_for_tags_no_worker_has_says_so_at_once(client: httpx.AsyncClient) -> None:
    """A newcomer's job asking for `gpu` stayed queued for ever with an empty activity."""
    with client.app.state.write_sessions() as session:  # type: ignore[attr-defined]
        manager, _ = farm.create_manager(session, "m")
        session.flush()
        for name, tags in (("cpu-1", ["linux"]), ("gpu-1", ["gpu", "linux"])):
            session.add(WorkerRow(id=name, manager_id=manager.id, name=name, platform="linux", task_types=["exec"],
                                  tags=tags, software={}, status="awake"))  # fmt: skip
        session.commit()
    nobody = await client.post(JOBS, json={**job("1"), "tags": ["gpu", "rtx-4090"]})
    assert nobody.status_code == 201, nobody.text
    said = nobody.json()["activity"]
    assert said.startswith("no worker on the farm has the tags gpu, rtx-4090; its tasks wait"), said
    log = (await client.get(f"{JOBS}/{nobody.json()['id']}")).json()["log"]
    assert any(entry["message"] == said for entry in log)
    fits = await client.post(JOBS, json={**job("1"), "tags": ["gpu"]})
    assert fits.status_code == 201 and fits.json()["activity"] == "", fits.text


def render(**settings: object) -> dict[str, object]:
    base = {"blendfile": "/projects/shot.blend", "frames": "1-2", "output_path": "/renders/shot/frame_####"}
    return {"name": "r", "type": "blender-render", "settings": {**base, **settings}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (render(chunk_size=True), "settings.chunk_size"),
        (render(chunk_size="2"), "settings.chunk_size"),
        (render(fps="30"), "settings.fps"),
        (render(preview_video="true"), "settings.preview_video"),
        (render(preview_video=1), "settings.preview_video"),
        ({**job("1"), "settings": {**job("1")["settings"], "chunk_size": "3"}}, "settings.chunk_size"),  # type: ignore[dict-item]
    ],
)
async def test_settings_of_another_json_type_than_documented_are_refused(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    """As on every wire model: `"2"` is no chunk size, `true` no number, `1` no switch (they were stored as 2, 1
    and true). A float setting takes a whole number, and an enum its text."""
    r = await client.post(JOBS, json=body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert stored_jobs_and_tasks(client) == (0, 0)
    ok = await client.post(JOBS, json=render(fps=30, chunk_size=2, preview_video=False))
    assert ok.status_code == 201, ok.text
    whole = await client.post(JOBS, json=render(chunk_size=2.0, fps=24.0))  # JSON Schema's integer, as WHOLE takes
    assert whole.status_code == 201 and whole.json()["settings"]["chunk_size"] == 2, whole.text


@pytest.mark.parametrize("big", [2**70, -(2**64)])
async def test_a_setting_past_64_bits_is_refused_naming_it(client: httpx.AsyncClient, big: int) -> None:
    """orjson writes no such integer: reading the settings strictly was a 500 for them."""
    for body, field in ((render(chunk_size=big), "settings.chunk_size"), (render(zz_extra=big), "settings.zz_extra")):
        r = await client.post(JOBS, json=body)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text


@pytest.mark.parametrize(
    "name", ["a\nJob 'x' (#9) of admin completed", "shot\u2028two", "gnp.\u202eexe", "bell\x07", "tab\tname"]
)
async def test_a_job_name_of_more_than_one_line_of_text_is_refused(client: httpx.AsyncClient, name: str) -> None:
    """A job's name goes into lists, notifications and webhooks' chat lines: a line break forged a second line."""
    r = await client.post(JOBS, json={**job("1"), "name": name})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["name"], r.text
    assert "one line of text" in r.text
    ok = await client.post(JOBS, json={**job("1"), "name": "shot 010 – lighting v3 «final» 日本"})
    assert ok.status_code == 201, ok.text
    pasted = await client.post(JOBS, json={**job("1"), "name": "  shot 10\n"})  # from a spreadsheet's cell
    assert pasted.status_code == 201 and pasted.json()["name"] == "shot 10", pasted.text
    blank = await client.post(JOBS, json={**job("1"), "name": " \n "})
    assert blank.status_code == 422 and [e["field"] for e in blank.json()["errors"]] == ["name"], blank.text


async def test_a_misspelt_setting_is_named_with_the_one_likely_meant(client: httpx.AsyncClient) -> None:
    """A newcomer's `comand` got pydantic's "Extra inputs are not permitted" and no word of `command`."""
    r = await client.post(JOBS, json={"name": "typo", "type": "exec", "settings": {"comand": ["true"], "frames": "1"}})
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors["settings.command"] == "Field required"
    assert errors["settings.comand"].startswith("not a setting of this job type (its settings: chunk_size, command,")
    assert errors["settings.comand"].endswith("; did you mean 'command'?")
    r = await client.post(JOBS, json={**job("1"), "settings": {**job("1")["settings"], "zzz": 1}})  # type: ignore[dict-item]
    assert "did you mean" not in r.text and "not a setting of this job type" in r.text


@pytest.mark.parametrize("estimated", [True, False])
async def test_a_big_job_being_stored_counts_in_its_submitters_quota(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, estimated: bool
) -> None:
    """It counted nothing until it was whole: two big jobs submitted at once each passed a quota of 250 unfinished
    tasks that both together went over. Now it counts its estimate (or, for a type that makes none, the tasks
    stored so far: its first 101 here)."""
    if not estimated:
        monkeypatch.setattr(ExecJob, "estimate", lambda self, settings: None)
    being_stored, go_on = threading.Event(), threading.Event()
    next_chunk = submission._next_chunk
    first_thread: list[int] = []

    def paused(stream: Iterator[Any], n: int) -> list[Any]:
        """The first job's thread waits once its first chunk is stored (its second call: the first is its head)."""
        if not first_thread:
            first_thread.append(threading.get_ident())
        elif threading.get_ident() == first_thread[0] and not being_stored.is_set():
            being_stored.set()
            assert go_on.wait(20)
        return next_chunk(stream, n)

    monkeypatch.setattr(submission, "_next_chunk", paused)
    first = asyncio.create_task(client.post(JOBS, json=job("1-140")))
    assert await asyncio.to_thread(being_stored.wait, 20)
    try:
        second = await client.post(JOBS, json=job("1-150"))  # 101 or 140 of the first's + 150 > 250
        assert second.status_code == 409 and second.json()["errors"][0]["field"] == "quota", second.text
    finally:
        go_on.set()
    r = await first
    assert r.status_code == 201 and r.json()["tasks_total"] == 140, r.text
    assert (await client.post(JOBS, json=job("1-110"))).status_code == 201  # 250: at the limit, not past it


OPENJD_WITH_X = {
    "specificationVersion": "jobtemplate-2023-09", "name": "t",
    "parameterDefinitions": [{"name": "X", "type": "INT"}, {"name": "F", "type": "FLOAT"}],
    "steps": [{"name": "a", "script": {"actions": {"onRun": {"command": "echo"}}}}],
}  # fmt: skip


@pytest.mark.parametrize("big", [2**70, -(2**70), 2**63])
async def test_an_openjd_parameter_past_64_bits_is_refused_and_the_job_list_still_reads(
    client: httpx.AsyncClient, big: int
) -> None:
    """From an API fuzzing audit: it was stored, and every page of GET /jobs holding it was a 500 for everyone."""
    for name in ("X", "F"):
        settings = {"template": OPENJD_WITH_X, "parameters": {"X": 1, "F": 1.5, name: big}}
        r = await client.post(JOBS, json={"name": "big", "type": "openjd", "start_paused": True, "settings": settings})
        assert r.status_code == 422, r.text
        (error,) = r.json()["errors"]
        assert error["field"] == f"settings.parameters.{name}" and "at most 9223372036854775807" in error["message"]
    assert stored_jobs_and_tasks(client) == (0, 0)
    settings = {"template": OPENJD_WITH_X, "parameters": {"X": 2**63 - 1, "F": 1.5}}
    r = await client.post(JOBS, json={"name": "ok", "type": "openjd", "start_paused": True, "settings": settings})
    assert r.status_code == 201, r.text
    assert (await client.get(JOBS)).status_code == 200


async def test_a_job_stored_with_an_integer_past_64_bits_before_they_were_refused_is_listed(
    client: httpx.AsyncClient,
) -> None:
    settings = {"template": OPENJD_WITH_X, "parameters": {"X": 1, "F": 1.5}}
    r = await client.post(JOBS, json={"name": "old", "type": "openjd", "start_paused": True, "settings": settings})
    assert r.status_code == 201, r.text
    with client.app.state.write_sessions() as session:  # type: ignore[attr-defined]
        job = session.get_one(JobRow, r.json()["id"])
        job.settings = {**job.settings, "parameters": {"X": 2**70, "F": 1.5}}
        session.commit()
    listed = await client.get(JOBS)
    assert listed.status_code == 200 and [j["id"] for j in listed.json()["items"]] == [r.json()["id"]], listed.text


async def test_a_job_of_a_task_type_no_worker_offers_says_so_at_once(client: httpx.AsyncClient) -> None:
    """From a newcomer's audit: a Blender job on a farm whose workers found no Blender stayed "queued" for ever,
    nothing said (only a worker's details showed its task types)."""
    with client.app.state.write_sessions() as session:  # type: ignore[attr-defined]
        manager, _ = farm.create_manager(session, "m")
        session.flush()
        types = ["exec", "ffmpeg"]
        session.add(WorkerRow(id="w1", manager_id=manager.id, name="w1", platform="linux", task_types=types, tags=[],
                              software={}, status="awake"))  # fmt: skip
        session.commit()
    nobody = await client.post(JOBS, json=render())
    assert nobody.status_code == 201, nobody.text
    said = nobody.json()["activity"]
    assert said == (
        "no worker on the farm runs blender tasks (they offer exec, ffmpeg); its tasks wait until one does (a worker "
        "offers them once it finds blender: on its PATH, or given with --blender)"
    ), said
    log = (await client.get(f"{JOBS}/{nobody.json()['id']}")).json()["log"]
    assert any(entry["message"] == said for entry in log)
    fits = await client.post(JOBS, json=job("1"))
    assert fits.status_code == 201 and fits.json()["activity"] == "", fits.text
