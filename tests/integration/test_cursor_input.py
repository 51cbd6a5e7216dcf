"""Forged list cursors get a 422 naming `cursor`, on SQLite and on PostgreSQL, and real ones still page.

A cursor is base64 of a JSON pair (sort value, id) that the client hands back. Ids past 64 bits, values of
the wrong kind for the sort column and numbers past its range reached the database and failed there: a 500
(SQLite's OverflowError, PostgreSQL's ProgrammingError), or on PostgreSQL's task list a 422 blaming `body`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.protocol.common import ID_MAX
from tests.integration.test_server_jobs import render_job, submit
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(120)

API = "/api/v1"
SEARCH = "cursor probe"
# every sort key the jobs list accepts, with the kind of value its cursor carries
JOB_SORTS = {"created": "date", "updated": "date", "priority": "int", "name": "text", "status": "text"}
GOOD_VALUE = {"date": {"t": "2020-01-01T00:00:00+00:00"}, "int": 5, "text": "cursor probe 1"}

# first values no sort column takes
ANY_KIND_BAD: list[Any] = [None, [1, 2], {"x": 1}, True, False, 1.5, 1.5e308, 10**30]
# first values of a kind another sort column takes, or of the right kind but out of the column's range
WRONG_KIND: dict[str, list[Any]] = {
    "date": [
        "2020-01-01",
        5,
        {"t": 5},
        {"t": "not a date"},
        {"t": "2020-01-01", "x": 1},
        {"t": "2020-13-01T00:00:00"},
        {"t": "0001-01-01T00:00:00+01:00"},  # before year 1 in UTC
        {"t": "9999-12-31T23:00:00-05:00"},  # after year 9999 in UTC
        {"t": "2020-01-01T00:00:00" + "0" * 100},
    ],
    "int": ["5", {"t": "2020-01-01"}, 2**31, -(2**31) - 1, 2**63],
    "text": [5, {"t": "2020-01-01"}, "x" * 201, "nul\x00here", "lone \ud800 surrogate"],
}
BAD_IDS: list[Any] = [2**70, 2**63, -1, True, 1.5, "1", None, [1]]


def forge(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forged(kind: str) -> list[str]:
    """Cursors this server never made, for a list sorted by a column of `kind`."""
    good = GOOD_VALUE[kind]
    return [
        *(forge([good, row_id]) for row_id in BAD_IDS),
        *(forge([value, 1]) for value in ANY_KIND_BAD + WRONG_KIND[kind]),
        forge([good, 1, 2]),  # three values
        forge([good]),
        forge({"value": good, "id": 1}),
        forge(good),
        "not base64 at all!",
        "é",
        raw(b"not json"),
        raw(b"\xff\xfe\x00"),
    ]


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def job_ids(client: httpx.Client) -> list[int]:
    ids = []
    for i, priority in enumerate([30, 70, 30, 50, 70]):
        body = {**render_job(name=f"{SEARCH} {i}", frames="1-9", chunk=1), "priority": priority}
        ids.append(submit(client, body)["id"])
    client.post(f"/jobs/{ids[1]}/status", json={"action": "pause"}).raise_for_status()  # two statuses to sort by
    return ids


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["cursor"], r.text


@pytest.mark.parametrize("sort", [*JOB_SORTS, *(f"-{key}" for key in JOB_SORTS)])
def test_forged_job_list_cursors_are_refused(client: httpx.Client, job_ids: list[int], sort: str) -> None:
    for cursor in forged(JOB_SORTS[sort.lstrip("-")]):
        assert_refused(client.get("/jobs", params={"sort": sort, "cursor": cursor}))


def test_forged_task_list_cursors_are_refused(client: httpx.Client, job_ids: list[int]) -> None:
    for cursor in forged("int"):
        assert_refused(client.get(f"/jobs/{job_ids[0]}/tasks", params={"cursor": cursor}))


@pytest.mark.parametrize(
    ("sort", "value"),
    [
        ("-created", {"t": "9999-12-31T23:59:59.999999+00:00"}),
        ("created", {"t": "0001-01-01T00:00:00+00:00"}),
        ("-updated", {"t": "2020-01-01T00:00:00"}),
        ("-priority", 2**31 - 1),
        ("priority", -(2**31)),
        ("name", "x" * 200),  # the longest the name column holds
        ("-status", ""),
    ],
)
def test_extreme_but_possible_cursors_are_answered(
    client: httpx.Client, job_ids: list[int], sort: str, value: Any
) -> None:
    r = client.get("/jobs", params={"sort": sort, "cursor": forge([value, ID_MAX]), "search": SEARCH})
    assert r.status_code == 200, r.text


def page_through(client: httpx.Client, path: str, **params: Any) -> list[int]:
    """The ids of every row of a list, a page of `limit` at a time, following each answer's next_cursor."""
    seen: list[int] = []
    cursor: str | None = None
    while True:
        r = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += [row["id"] for row in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return seen


@pytest.mark.parametrize("sort", [*JOB_SORTS, *(f"-{key}" for key in JOB_SORTS)])
def test_real_cursors_page_through_every_sort(client: httpx.Client, job_ids: list[int], sort: str) -> None:
    whole = client.get("/jobs", params={"sort": sort, "search": SEARCH, "limit": 100}).json()
    assert sorted(j["id"] for j in whole["items"]) == sorted(job_ids) and whole["next_cursor"] is None
    assert page_through(client, "/jobs", sort=sort, search=SEARCH, limit=2) == [j["id"] for j in whole["items"]]


def test_real_cursors_page_through_tasks(client: httpx.Client, job_ids: list[int]) -> None:
    whole = client.get(f"/jobs/{job_ids[0]}/tasks", params={"limit": 100}).json()["items"]
    assert len(whole) == 10
    assert page_through(client, f"/jobs/{job_ids[0]}/tasks", limit=3) == [t["id"] for t in whole]


def test_jobs_with_long_names_in_another_script_page_by_name(client: httpx.Client) -> None:
    """Such a name's cursor (JSON-escaped, then base64) is longer than the 200 characters the route once took."""
    prefix = "ж" * 95
    ids = [submit(client, render_job(name=f"{prefix} {i}", frames="1", chunk=1))["id"] for i in range(3)]
    assert page_through(client, "/jobs", sort="name", search=prefix, limit=1) == ids
