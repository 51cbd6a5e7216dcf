"""`tablao workers WORKER`: which worker a name, an id or the start of an id names (services/workers_cli.py)."""

from __future__ import annotations

import argparse

import httpx
import pytest
from pydantic import ValidationError

from services.protocol.farm import Worker
from services.protocol.link import WorkerReport
from services.protocol.server_client import BadAnswer, ServerClient
from services.protocol.states import WorkerStatus
from services.workers_cli import find, run


def _worker(worker_id: str, name: str) -> Worker:
    return Worker(
        id=worker_id, name=name, manager_id=1, platform="linux", task_types=["blender"], tags=[], software={},
        status=WorkerStatus.AWAKE, status_requested=None, current_task_id=None, last_seen=None, utilisation=None,
    )  # fmt: skip


WORKERS = [
    _worker("3f2a9c1e-0000", "render-01"),
    _worker("3f2a77aa-0000", "render-02"),
    _worker("b0b0b0b0-0000", "render-02"),  # the same name at another Manager
    _worker("c0ffee00-0000", "3f2a"),  # a name that is also the start of others' ids
]


@pytest.mark.parametrize(
    ("given", "found"),
    [("render-01", "3f2a9c1e-0000"), ("3f2a9", "3f2a9c1e-0000"), ("b0b0b0b0-0000", "b0b0b0b0-0000"),
     ("3f2a", "c0ffee00-0000"), ("c0ff", "c0ffee00-0000")],
)  # fmt: skip
def test_a_name_an_id_or_the_start_of_one_names_one_worker(given: str, found: str) -> None:
    assert find(WORKERS, given).id == found


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("render-02", "2 workers are named render-02: give its id (3f2a77aa-0000, b0b0b0b0-0000)"),
        ("3f2a7", None),
        ("3f2", "no worker is named 3f2 or has it as its id"),  # too short to be the start of an id
        ("render-0\x1b[2J", "no worker is named render-0\\x1b[2J"),  # the terminal is not driven by the name
    ],
)
def test_what_names_no_single_worker_says_why(given: str, said: str | None) -> None:
    if said is None:
        assert find(WORKERS, given).name == "render-02"
        return
    with pytest.raises(SystemExit) as exited:
        find(WORKERS, given)
    assert str(exited.value.code).startswith(said)


def test_an_id_start_shared_by_several_asks_for_more() -> None:
    with pytest.raises(SystemExit, match="2 workers have an id starting with 3f2a9: give more of it"):
        find([*WORKERS, _worker("3f2a9d00-0000", "render-09")], "3f2a9")


async def test_a_worker_id_is_one_path_segment_whatever_it_holds() -> None:
    """A hostile Manager's worker id `x/../../tokens/1` made `tablao workers NAME --action forget` a
    `DELETE /tokens/1` (httpx folds `..`); the Server now refuses such ids too."""
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(204)

    client = ServerClient("http://127.0.0.1:9", "t" * 20, transport=httpx.MockTransport(server))
    try:
        await client.forget_worker("x/../../tokens/1")
    finally:
        await client.aclose()
    assert seen == ["/api/v1/workers/x%2F..%2F..%2Ftokens%2F1"]


@pytest.mark.parametrize("worker_id", ["x/../../tokens/1", "..", "a b", "\x1b[2J", "", "x" * 65])
def test_the_server_takes_no_worker_id_that_is_not_one_plain_segment(worker_id: str) -> None:
    report = {"id": worker_id, "name": "w", "platform": "linux", "task_types": [], "tags": [], "status": "awake"}
    with pytest.raises(ValidationError):
        WorkerReport.model_validate(report)
    WorkerReport.model_validate(report | {"id": "3f2a9c1e-0b6d-4a51-9d0e-2f0c1a7b9e11"})


def paged_server(workers: list[Worker], page: int = 2) -> httpx.MockTransport:
    """A Server answering `GET /workers` `page` at a time whatever `limit` asks (its cap may be lower), the next
    page's cursor in `X-Next-Cursor`."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/workers", request.url
        start = int(request.url.params.get("cursor", 0))
        items = workers[start : start + page]
        more = start + page < len(workers)
        headers = {"X-Next-Cursor": str(start + page)} if more else {}
        return httpx.Response(200, json=[w.model_dump(mode="json") for w in items], headers=headers)

    return httpx.MockTransport(answer)


FARM = [_worker(f"{i:08x}-0000", f"render-{i:02d}") for i in range(5)]


async def test_the_list_and_a_worker_named_come_from_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    """A farm with more workers than one page of the Server's list showed the first page only, and a worker on
    a later page was "no worker is named ..."."""
    client = ServerClient("http://127.0.0.1:9", "t" * 20, transport=paged_server(FARM))
    try:
        assert await run(client, argparse.Namespace(worker=None, action=None, now=False)) == 0
        listed = capsys.readouterr().out
        assert all(w.name in listed for w in FARM) and listed.endswith("5 workers\n"), listed
        assert await run(client, argparse.Namespace(worker="render-04", action=None, now=False)) == 0
        assert "Worker render-04" in capsys.readouterr().out
        assert [w.id for w in await client.workers()] == [w.id for w in FARM]
    finally:
        await client.aclose()


async def test_a_page_that_leads_nowhere_is_a_bad_answer_not_a_loop() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={"X-Next-Cursor": "again"})

    client = ServerClient("http://127.0.0.1:9", "t" * 20, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(BadAnswer, match="leads nowhere"):
            await client.workers()
    finally:
        await client.aclose()


def test_a_status_asked_for_keeps_the_columns_in_line(capsys: pytest.CaptureFixture[str]) -> None:
    """From a CLI audit: "offline (asked: asleep)" in a 10-wide column pushed the rest of its row aside."""
    from services.protocol.states import WorkerStatusRequest
    from services.workers_cli import print_list

    asked = WORKERS[0].model_copy(
        update={"status": WorkerStatus.STARTING, "status_requested": WorkerStatusRequest.SHUTDOWN}
    )
    print_list([asked, WORKERS[1]])
    rows = capsys.readouterr().out.splitlines()
    assert "starting→shutdown" in rows[1]
    assert len({row.index("linux") for row in rows[1:3]}) == 1 and rows[0].index("platform") == rows[1].index("linux")
