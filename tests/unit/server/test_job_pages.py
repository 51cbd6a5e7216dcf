"""Pages of `GET /jobs` are bounded in bytes as well as in jobs: jobs with large settings come fewer to a page, every
job exactly once and in order across the pages, and never an empty page while a job is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.server.config import ServerConfig
from services.server.store import jobs as job_store
from tests.support.inprocess_server import admin_client

JOBS = "/api/v1/jobs"
BUDGET = 100_000


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(job_store, "PAGE_SETTINGS_BYTES", BUDGET)
    async with admin_client(ServerConfig(data_dir=tmp_path)) as c:
        yield c


async def submit(client: httpx.AsyncClient, name: str, argument_chars: int) -> int:
    pieces = ["a" * 4000] * (argument_chars // 4000) + ["a" * (argument_chars % 4000)]  # 4,096 is an item's most
    settings = {"command": ["echo", *pieces], "frames": "1"}
    r = await client.post(JOBS, json={"name": name, "type": "exec", "settings": settings})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        r = await client.get(JOBS, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert page["items"], "an empty page with a cursor"


def settings_bytes(job: dict[str, Any]) -> int:
    return len(orjson.dumps(job["settings"]))


@pytest.mark.parametrize("sort", ["-created", "name", "priority"])
async def test_large_settings_make_shorter_pages_that_together_hold_every_job_once(
    client: httpx.AsyncClient, sort: str
) -> None:
    ids = [await submit(client, f"big {i:02}", 30_000) for i in range(10)]
    ids += [await submit(client, f"small {i:02}", 10) for i in range(30)]
    ids += [await submit(client, f"big {i:02}", 30_000) for i in range(10, 14)]
    pages = await all_pages(client, limit=1000, sort=sort)
    seen = [job["id"] for page in pages for job in page]
    assert sorted(seen) == sorted(ids)  # each once
    assert len(pages) >= 5, [len(p) for p in pages]  # 14 × 30 KB over a 100 KB budget
    for page in pages:
        # a page ends before the job that would take it past the budget, unless that job is its first
        assert len(page) == 1 or sum(settings_bytes(j) for j in page) <= BUDGET, [settings_bytes(j) for j in page]


async def test_the_order_across_pages_is_the_sort_order(client: httpx.AsyncClient) -> None:
    for i in range(12):
        await submit(client, f"job {i:02}", 30_000 if i % 3 else 10)
    names = [job["name"] for page in await all_pages(client, limit=1000, sort="name") for job in page]
    assert names == [f"job {i:02}" for i in range(12)]
    newest_first = [job["name"] for page in await all_pages(client, sort="-created") for job in page]
    assert newest_first == [f"job {i:02}" for i in reversed(range(12))]


async def test_a_job_bigger_than_the_budget_still_has_a_page_of_its_own(client: httpx.AsyncClient) -> None:
    small = await submit(client, "a small", 10)
    huge = [await submit(client, f"b huge {i}", 150_000) for i in range(2)]
    pages = await all_pages(client, limit=1000, sort="name")
    assert [[j["id"] for j in p] for p in pages] == [[small], [huge[0]], [huge[1]]]


async def test_the_item_limit_still_holds_for_small_jobs(client: httpx.AsyncClient) -> None:
    ids = [await submit(client, f"s {i:02}", 10) for i in range(7)]
    pages = await all_pages(client, limit=3, sort="name")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [j["id"] for p in pages for j in p] == ids
