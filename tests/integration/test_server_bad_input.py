"""Bad input gets a 4xx naming the field and the reason, and changes nothing already stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_server_jobs import render_job, submit
from tests.support.services import ServerProcess

API = "/api/v1"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


def openjd_job(
    steps: list[dict[str, Any]], parameters: dict[str, Any] | None = None, **template: Any
) -> dict[str, Any]:
    """An `openjd` job of these steps (each given a script) and parameter values, with extra template keys."""
    steps = [{"script": {"actions": {"onRun": {"command": "echo"}}}, **step} for step in steps]
    body = {"specificationVersion": "jobtemplate-2023-09", "name": "t", "steps": steps, **template}
    return {"name": "ojd", "type": "openjd", "settings": {"template": body, "parameters": parameters or {}}}


def space(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"taskParameterDefinitions": list(parameters)}


FOUR_BILLION = {"type": "INT", "range": "1-4000000000"}


def snapshot(client: httpx.Client) -> Any:
    jobs = client.get("/jobs", params={"limit": 1000}).json()["items"]
    return [(j, client.get(f"/jobs/{j['id']}/tasks", params={"limit": 1000}).json()["items"]) for j in jobs]


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        (render_job(frames="5-1"), 422, "settings.frames", "ends before it starts"),
        (render_job(chunk=0), 422, "settings.chunk_size", "greater than or equal to 1"),
        (
            {**render_job(), "settings": {"frames": "1-3", "output_path": "/r/f_####"}},
            422,
            "settings.blendfile",
            "Field required",
        ),
        ({**render_job(), "type": "maya-render"}, 422, "type", "unknown job type 'maya-render'"),
        ({**render_job(), "priority": 101}, 422, "priority", "less than or equal to 100"),
        ({**render_job(), "name": ""}, 422, "name", "at least 1 character"),
        ({**render_job(), "depends_on": [987654]}, 422, "depends_on", "no job with id 987654"),
        ({**render_job(), "bogus": 1}, 422, "bogus", "Extra inputs are not permitted"),
        # more than 2**63 tasks: openjd-model's len() of the space was an OverflowError, a 500
        (
            openjd_job(
                [{"name": "S", "parameterSpace": space({"name": "X", **FOUR_BILLION}, {"name": "Y", **FOUR_BILLION})}]
            ),
            422,
            "settings.template",
            "the template makes 16,000,000,000,000,000,000 tasks; a job may have at most 100,000",
        ),
        # openjd-model skips a bound of 0, and takes NaN and infinity for a FLOAT
        (
            openjd_job([{"name": "S"}], {"N": -5}, parameterDefinitions=[{"name": "N", "type": "INT", "minValue": 0}]),
            422,
            "settings.parameters",
            "Value (-5) for parameter N must be at least 0.",
        ),
        (
            openjd_job([{"name": "S"}], {"F": "nan"}, parameterDefinitions=[{"name": "F", "type": "FLOAT"}]),
            422,
            "settings.parameters",
            "Value (nan) for parameter F must be a finite number, within a float's range (1.8e308).",
        ),
    ],
)
def test_bad_submissions(client: httpx.Client, body: dict[str, Any], status: int, field: str, reason: str) -> None:
    submit(client, render_job(name="kept"))
    before = snapshot(client)
    r = client.post("/jobs", json=body)
    assert r.status_code == status, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert field in errors, r.json()
    assert reason in errors[field]
    assert reason in r.json()["detail"]
    assert snapshot(client) == before


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post("/jobs", content=b'{"name": "x", ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body"
    assert "malformed JSON" in r.json()["detail"]


def test_oversized_body(client: httpx.Client) -> None:
    before = snapshot(client)
    huge = render_job()
    huge["settings"]["scene"] = "x" * (9 * 1024 * 1024)
    r = client.post("/jobs", json=huge)
    assert r.status_code == 413
    assert r.json()["errors"][0]["field"] == "body"
    assert "over the limit" in r.json()["detail"]
    assert snapshot(client) == before


def test_unknown_ids(client: httpx.Client) -> None:
    for method, path, body in [
        ("GET", "/jobs/424242", None),
        ("GET", "/jobs/424242/tasks", None),
        ("GET", "/jobs/424242/log", None),
        ("POST", "/jobs/424242/status", {"action": "pause"}),
        ("POST", "/jobs/424242/priority", {"priority": 3}),
        ("DELETE", "/jobs/424242", None),
        ("GET", "/tasks/424242", None),
        ("POST", "/tasks/424242/status", {"action": "cancel"}),
        ("POST", "/workers/nope/status-request", {"status": "asleep"}),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["errors"][0]["field"] == "id"
    r = client.get("/jobs/not-a-number")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "job_id"


def test_illegal_transitions_change_nothing(client: httpx.Client) -> None:
    jid = submit(client, render_job())["id"]
    before = snapshot(client)
    for action in ("resume", "requeue"):
        r = client.post(f"/jobs/{jid}/status", json={"action": action})
        assert r.status_code == 409, r.text
        assert f"cannot {action} a job that is queued" in r.json()["detail"]
    r = client.post(f"/jobs/{jid}/status", json={"action": "explode"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action"
    assert snapshot(client) == before


def test_an_id_in_a_path_or_a_number_in_a_query_is_its_digits_only(client: httpx.Client) -> None:
    """Python's int() took `2_0` for job 20 and ` 2`, `+2`, `2.0` and `02` for job 2; a fuzzer revoked the admin's
    own token with DELETE /tokens/%201."""
    jid = client.post("/jobs", json=render_job()).json()["id"]
    assert client.get(f"/jobs/{jid}").status_code == 200
    for spelling in (f"+{jid}", f"{jid}.0", f"0{jid}", f"%20{jid}", f"{jid}%20", f"{jid}_0"):
        r = client.get(f"/jobs/{spelling}")
        assert r.status_code == 422, (spelling, r.text)
        assert "digits only" in r.text, (spelling, r.text)
    for query in ({"limit": "+5"}, {"limit": "5.0"}, {"limit": "0_5"}):
        r = client.get("/jobs", params=query)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit", (query, r.text)
    assert client.get("/jobs", params={"limit": "5"}).status_code == 200


def test_bad_query_parameters(client: httpx.Client) -> None:
    for sort in ("colour", "--created", "-"):
        r = client.get("/jobs", params={"sort": sort})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "sort", sort
    r = client.get("/jobs", params={"cursor": "garbage!"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
    r = client.get("/jobs", params={"status": "sleeping"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("status")


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"[" * 10_000 + b"]" * 10_000, {}),
        (b'{"name": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001, {}),
        (b'{"name": "x", "type": "exec", "priority": ' + b"9" * 5_000 + b"}", {}),
        (b'{"name": "\xff\xfe", "type": "exec"}', {}),
        (
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xabV\xcaK\xccMU\xb2RP\xaaP\xaa\x05\x00",
            {"Content-Encoding": "gzip"},
        ),
    ],
    ids=["deep-list", "deep-object", "long-number", "not-utf8", "gzip"],
)
def test_a_body_json_cannot_read_is_a_422_naming_the_body(
    client: httpx.Client, body: bytes, headers: dict[str, str]
) -> None:
    """FastAPI answered these 400 'There was an error parsing the body' with no field; other malformed JSON is a
    422 naming the body."""
    r = client.post("/jobs", content=body, headers={"Content-Type": "application/json", **headers})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "body", "message": r.json()["detail"].removeprefix("body: ")}]
    assert r.json()["detail"].startswith("body: malformed JSON")


def test_an_answer_lists_at_most_50_errors(client: httpx.Client) -> None:
    """Half a million unknown keys made an answer of 50 MB: every key in `errors` and again in `detail`. Past 50
    unknown fields of one request object they are one error saying how many (making an error of each held the
    event loop for seconds); other errors are listed up to 50."""
    body = {**render_job(), **{f"k{i}": 0 for i in range(100_000)}}
    r = client.post("/jobs", json=body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body"], r.text[:500]
    assert r.json()["detail"].startswith("body: 100000 unknown fields ('k0', 'k1', 'k2', ...); this takes only: ")
    job = render_job()
    body = {**job, "settings": {**job["settings"], **{f"k{i}": 0 for i in range(10_000)}}}  # the job type's own
    r = client.post("/jobs", json=body)
    assert r.status_code == 422
    assert len(r.json()["errors"]) == 50 and len(r.content) < 20_000
    assert r.json()["detail"].endswith("; and 9950 more errors")


def test_logging_in_takes_only_a_small_body(server: ServerProcess) -> None:
    """Anyone may log in: a body of megabytes is refused before it is parsed."""
    r = httpx.post(f"{server.url}{API}/auth/login", json={"username": "a", "password": "b" * 70_000})
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("typo", "meant"), [("setings", "settings"), ("Priority", "priority"), ("dependson", "depends_on")]
)
def test_a_misspelt_field_of_a_submission_names_the_likely_one(client: httpx.Client, typo: str, meant: str) -> None:
    """From a newcomer's audit: a job file's `setings` was "Extra inputs are not permitted" alone, where a typo
    inside the settings already said "did you mean"."""
    body = {"name": "typo", "type": "exec", "settings": {"command": ["true"], "frames": "1"}, typo: {}}
    r = client.post("/jobs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": typo, "message": f"Extra inputs are not permitted; did you mean {meant!r}?"}
    ], r.text
