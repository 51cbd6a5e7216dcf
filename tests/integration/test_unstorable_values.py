"""Values no database column of the farm can hold get a 422 naming the field, on SQLite and on PostgreSQL.

PostgreSQL refuses the NUL character in text and numbers past a column's range, where SQLite takes both: each
of these was a 500 there (and for a Manager's update batch, one it would have sent again for ever)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

BIG = 2**40  # past a 32-bit column, within the 64-bit ids
NUL_MSG = "contains the NUL character (U+0000), which no field accepts"
TOO_LARGE = "numbers past a float's range (1.8e308) would be Infinity; no field accepts them"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def manager_link(server: ServerProcess) -> Iterator[httpx.Client]:
    token = add_manager(server, "unstorable")
    with httpx.Client(base_url=server.url + API + "/manager", headers=server.headers(token), timeout=30) as c:
        yield c


def job(name: str = "ok", **settings: Any) -> dict[str, Any]:
    return {"name": name, "type": "exec", "settings": {"command": ["true"], "frames": "1", **settings}}


def as_python_writes_it(api: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """POST /jobs with the body as `json.dumps` writes it: ASCII, everything else escaped (httpx writes UTF-8)."""
    return api.post("/jobs", content=json.dumps(body), headers={"Content-Type": "application/json"})


def refused(r: httpx.Response, field: str, message: str | None = None) -> None:
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [field], r.text
    if message is not None:
        assert errors[0]["message"] == message
        assert r.json()["detail"] == f"{field}: {message}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job("a\x00b"), "name"),
        (job(command=["true", "x\x00y"]), "settings.command.1"),
        (job(env={"A\x00": "1"}), "settings.env"),  # a key: the field is the object holding it
        ({**job(), "tags": ["gpu", "\x00"]}, "tags.1"),
    ],
)
def test_a_nul_anywhere_in_a_submission_is_refused(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    before = api.get("/jobs").json()["total"]
    refused(api.post("/jobs", json=body), field, NUL_MSG)
    assert api.get("/jobs").json()["total"] == before  # nothing stored


def test_a_nul_in_a_query_path_or_login_is_refused(api: httpx.Client) -> None:
    refused(api.get("/jobs", params={"search": "a\x00b"}), "search", NUL_MSG)
    refused(api.get("/workers/w%00/utilisation"), "worker_id", NUL_MSG)
    refused(api.post("/auth/login", json={"username": "ana\x00", "password": "x"}), "username", NUL_MSG)
    assert api.get("/nothing-here/%00").status_code == 404  # a path no route has stays a 404


def test_nan_and_infinity_are_refused_and_the_words_kept(api: httpx.Client) -> None:
    raw = '{"name": "x", "type": "exec", "priority": NaN, "settings": {"command": ["true"], "frames": "1"}}'
    r = api.post("/jobs", content=raw, headers={"Content-Type": "application/json"})
    refused(r, "priority", "NaN and Infinity are not JSON numbers; no field accepts them")
    raw = raw.replace("NaN", "50").replace('"x"', '"NaN -Infinity"')  # words inside strings are only words
    r = api.post("/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 201 and r.json()["name"] == "NaN -Infinity", r.text


FLOAT_JOB = """{"name": "f", "type": "openjd", "settings": {"parameters": {"Scale": NUMBER}, "template": {
    "specificationVersion": "jobtemplate-2023-09", "name": "f",
    "parameterDefinitions": [{"name": "Scale", "type": "FLOAT"}],
    "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "echo", "args": ["{{Param.Scale}}"]}}}}]}}}"""


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400", "1" + "0" * 400 + ".5"])
def test_numbers_past_a_float_are_refused_naming_the_field(api: httpx.Client, number: str) -> None:
    """Python's parser makes them Infinity, which a job's JSON settings cannot hold (nor give back)."""
    before = api.get("/jobs").json()["total"]
    r = api.post("/jobs", content=FLOAT_JOB.replace("NUMBER", number), headers=JSON)
    refused(r, "settings.parameters.Scale", TOO_LARGE)
    raw = json.dumps({**job(), "priority": 50}).replace("50", number)
    refused(api.post("/jobs", content=raw, headers=JSON), "priority", TOO_LARGE)
    assert api.get("/jobs").json()["total"] == before  # nothing stored


@pytest.mark.parametrize("number", ["1e3", "2.5e-10", "1e308", "-1.5E+300"])
def test_finite_floats_with_exponents_are_kept(api: httpx.Client, number: str) -> None:
    r = api.post("/jobs", content=FLOAT_JOB.replace("NUMBER", number), headers=JSON)
    assert r.status_code == 201 and r.json()["settings"]["parameters"]["Scale"] == float(number), r.text


def test_a_lone_surrogate_is_refused_and_a_pair_kept(api: httpx.Client) -> None:
    """`\\ud800` alone is half of a character: no database encodes it (a 500 on SQLite as on PostgreSQL).
    Python's encoder writes an emoji as an escaped pair, which is a character like any other."""
    refused(as_python_writes_it(api, job(command=["true", "\ud800"])), "settings.command.1")
    refused(as_python_writes_it(api, job(env={"\udfff": "x"})), "settings.env")
    r = as_python_writes_it(api, job("frame \U0001f600", command=["echo", "\U0001f600"]))
    assert r.status_code == 201, r.text
    stored = api.get(f"/jobs/{r.json()['id']}").json()
    assert stored["name"] == "frame \U0001f600" and stored["settings"]["command"][1] == "\U0001f600"


def test_text_that_only_looks_like_an_escaped_nul_is_kept(api: httpx.Client) -> None:
    """A backslash followed by `u0000` is six ordinary characters, not a NUL."""
    r = api.post("/jobs", json=job("C:\\u0000 folder", command=["echo", "\\u0000"]))
    assert r.status_code == 201, r.text
    stored = api.get(f"/jobs/{r.json()['id']}").json()
    assert stored["name"] == "C:\\u0000 folder"
    assert stored["settings"]["command"] == ["echo", "\\u0000"]


def test_ids_past_their_column_are_refused(api: httpx.Client) -> None:
    refused(api.post("/jobs", json={**job(), "manager_id": BIG}), "manager_id")
    refused(api.delete(f"/managers/{BIG}"), "manager_id")
    refused(api.patch(f"/users/{BIG}", json={"disabled": True}), "user_id")
    refused(api.delete(f"/tokens/{BIG}"), "token_id")
    refused(api.delete(f"/webhooks/{BIG}"), "webhook_id")
    assert api.get(f"/jobs/{BIG}").status_code == 404  # jobs and tasks have 64-bit ids: simply not there


def test_a_manager_batch_the_database_could_not_hold_is_refused_and_the_link_goes_on(
    api: httpx.Client, manager_link: httpx.Client
) -> None:
    worker = {"id": "w1", "name": "w1", "platform": "linux", "task_types": ["exec"], "tags": [], "status": "awake"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"task_updates": [{"task_id": 1, "attempt": 1, "steps_total": BIG}]}, "task_updates.0.steps_total"),
        ({"task_updates": [{"task_id": 1, "attempt": 1, "failure_count": BIG}]}, "task_updates.0.failure_count"),
        ({"task_updates": [{"task_id": 1, "attempt": 1, "worker_name": "n" * 65}]}, "task_updates.0.worker_name"),
        ({"workers": [{**worker, "name": "n" * 65}]}, "workers.0.name"),
        ({"workers": [{**worker, "platform": "p" * 33}]}, "workers.0.platform"),
        ({"workers": [{**worker, "request_id": BIG}]}, "workers.0.request_id"),
        ({"workers": [{**worker, "name": "w\x001"}]}, "workers.0.name"),
    ]
    for body, field in bad:
        refused(manager_link.post("/updates", json={"seq": 1, **body}), field)
    refused(manager_link.post("/updates", json={"seq": 2**63}), "seq")
    sample = {"time": "2026-12-03T10:00:00Z", "cpu_percent": 5, "memory_percent": 5, "memory_used_mb": 1.0}
    raw = json.dumps({"seq": 1, "workers": [{**worker, "utilisation": sample}]}).replace("1.0", "Infinity")
    r = manager_link.post("/updates", content=raw, headers={"Content-Type": "application/json"})
    refused(r, "workers.0.utilisation.memory_used_mb")
    # numbers Python's parser makes Infinity: PostgreSQL answered 422 for the whole `body`, resent for ever
    for number in ("1e999", "-1e999", "1E400"):
        r = manager_link.post("/updates", content=raw.replace("Infinity", number), headers=JSON)
        refused(r, "workers.0.utilisation.memory_used_mb", TOO_LARGE)
    refused(manager_link.post("/updates", json={"seq": 1, "workers": [{**worker, "utilisation": {
        **sample, "load_1m": 1e7}}]}), "workers.0.utilisation.load_1m")  # fmt: skip
    # none of them was applied: the first batch is still the one expected, and it goes through
    r = manager_link.post("/updates", json={"seq": 1, "workers": [worker]})
    assert r.status_code == 200, r.text
    assert r.json()["last_seq"] == 1
    assert any(w["name"] == "w1" for w in api.get("/workers").json())


BIG_INT_YAML = """\
specificationVersion: jobtemplate-2023-09
name: big
parameterDefinitions:
- {name: N, type: INT, default: NUMBER}
steps:
- name: S
  parameterSpace:
    taskParameterDefinitions: [{name: X, type: INT, range: [1, RANGE]}]
  script:
    actions:
      onRun: {command: echo, args: ["{{Param.N}}", "{{Task.Param.X}}"]}
"""


@pytest.mark.parametrize(
    ("number", "in_range", "as_json"),
    [("99999999999999999999999999", "2", False), ("1", str(-(2**64)), False), ("1", str(2**63), True)],
)
def test_an_openjd_template_with_an_integer_past_64_bits_is_refused(
    api: httpx.Client, number: str, in_range: str, as_json: bool
) -> None:
    """Each task stores its step's template, written by orjson, which holds 64-bit integers only: a 500 it was."""
    before = api.get("/jobs").json()["total"]
    text = BIG_INT_YAML.replace("NUMBER", number)
    if as_json:  # the same template as JSON text, which the Server parses as JSON
        text = json.dumps(yaml.safe_load(text)).replace('"RANGE"', in_range)
    text = text.replace("RANGE", in_range)
    r = api.post("/jobs", json={"name": "big", "type": "openjd", "settings": {"template": text}})
    refused(r, "settings.template")
    assert "integers in a template are at most 9223372036854775807" in r.json()["errors"][0]["message"]
    assert api.get("/jobs").json()["total"] == before  # nothing stored
    # within 64 bits the same template is a job
    text = BIG_INT_YAML.replace("NUMBER", str(2**62)).replace("RANGE", str(-(2**62)))
    r = api.post("/jobs", json={"name": "big", "type": "openjd", "settings": {"template": text}})
    assert r.status_code == 201 and r.json()["tasks_total"] == 2, r.text
