"""Property-based fuzzing of both services from their own OpenAPI documents (schemathesis): no 5xx, and every
answer (status, headers, body) matches what the document declares. Examples per operation are bounded so
the whole module runs in a couple of minutes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.support.databases import fresh_postgres_database
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

EXAMPLES = 12
# no 5xx; status, content type, headers and body as documented; data the document does not allow refused
# (the wire models are strict: `"5"` is no number). Not schemathesis's "schema-valid data is accepted": the API
# answers 4xx to well-formed requests that fail on the farm's state (a wrong password, a job type that does not
# exist), which no schema can express.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
pytestmark = pytest.mark.timeout(600)
# what fuzzing must not touch: the event stream never ends (tested in test_server_events.py), and revoking
# tokens would revoke the fuzzer's own (revocation is tested in test_logins_tokens.py), and removing Managers
# would remove the fuzzer's Manager (removal is tested in test_admin_api.py)
SKIPPED = {
    ("GET", f"{API}/events"),
    ("DELETE", f"{API}/tokens/{{token_id}}"),
    ("DELETE", f"{API}/managers/{{manager_id}}"),
}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ManagerProcess, dict[str, str]]]:
    # bad credentials are part of the fuzzing: no back-off on this farm
    env = {"TABLAO_AUTH_FREE_FAILURES": "1000000"}
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None, env=env).start()
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager", env=env
    ).start()
    worker = ScriptedWorker(mgr.url, "fuzz").register(mgr.registration_secret)
    worker.close()
    auth = {"worker": f"Basic {_basic(worker.worker_id, worker.secret)}", "user": f"Bearer {server.admin_token}"}
    yield server, mgr, auth
    mgr.stop()
    server.stop()


def _basic(user: str, secret: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{secret}".encode()).decode()


def _prepare(case: Any) -> None:
    """Long polls are asked not to wait, followed logs not to follow."""
    if isinstance(case.body, dict) and "wait_seconds" in case.body:
        case.body["wait_seconds"] = 0
    if isinstance(case.query, dict):
        case.query.pop("follow", None)  # a followed log streams until the task leaves


def _fuzz(doc_url: str, base_url: str, header_for: Any) -> None:
    """Every operation of the document, positive and negative examples; all failures reported together."""
    schema = schemathesis.openapi.from_url(doc_url)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here: the document is ours
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
            )
            def check(case: Any) -> None:
                _prepare(case)
                case.call_and_validate(
                    base_url=base_url, headers={"Authorization": header_for(case.path)}, checks=CHECKS, timeout=30
                )

            try:
                check()
            except Unsatisfiable:
                continue  # no negative example exists (an operation without inputs)
            except Exception as exc:  # schemathesis raises one error per failing operation, with the request
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert operations > 5
    assert not failures, "\n\n".join(failures)


def test_server_api_matches_its_document(farm: tuple[ServerProcess, ManagerProcess, dict[str, str]]) -> None:
    server, _, auth = farm
    _fuzz(f"{server.url}{API}/openapi.json", server.url, lambda _path: auth["user"])


def test_server_api_on_postgresql_matches_its_document(tmp_path_factory: pytest.TempPathFactory) -> None:
    """PostgreSQL refuses what SQLite stores (a NUL in text, a number past a column's range): the same fuzzing
    against a Server on it finds the 500s that only it would give."""
    env = {"TABLAO_AUTH_FREE_FAILURES": "1000000"}
    with fresh_postgres_database() as url:
        server = ServerProcess(data_dir=tmp_path_factory.mktemp("pg-server"), database_url=url, env=env).start()
        try:
            add_manager(server, "m1")
            token = f"Bearer {server.admin_token}"
            _fuzz(f"{server.url}{API}/openapi.json", server.url, lambda _path: token)
        finally:
            server.stop()


def test_manager_api_matches_its_document(farm: tuple[ServerProcess, ManagerProcess, dict[str, str]]) -> None:
    _, mgr, auth = farm
    _fuzz(
        f"{mgr.url}{API}/openapi.json",
        mgr.url,
        lambda path: auth["worker"] if path.startswith(f"{API}/worker/") else auth["user"],
    )


Check = Callable[[str, str, str, dict[str, Any], dict[str, str]], list[str]]


def _on_both_services(farm: tuple[ServerProcess, ManagerProcess, dict[str, str]], check: Check) -> list[str]:
    """`check(base_url, template, path, operations, headers)` for each documented path of the Server and the
    Manager (parameters given as 1), with the credentials its routes take."""
    import re

    import httpx

    server, mgr, auth = farm
    wrong = []
    for base, worker_routes in ((server.url, None), (mgr.url, f"{API}/worker/")):
        paths = httpx.get(f"{base}{API}/openapi.json", timeout=30).json()["paths"]
        for template, operations in paths.items():
            who = "worker" if worker_routes and template.startswith(worker_routes) else "user"
            path = re.sub(r"\{[^}]+\}", "1", template)
            wrong += check(base, template, path, operations, {"Authorization": auth[who]})
    return wrong


def _methods_not_taken(
    base: str, _template: str, path: str, operations: dict[str, Any], headers: dict[str, str]
) -> list[str]:
    """Each method the document does not give a path: a 405 whose `Allow` names the documented ones, and HEAD
    beside GET (schemathesis's unsupported_method and allow_header_conformance, for every path at once)."""
    import httpx

    documented = sorted({m.upper() for m in operations} | ({"HEAD"} if "get" in operations else set()))
    wrong = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        if method.lower() in operations:
            continue
        r = httpx.request(method, base + path, headers=headers, content=b"{}", timeout=30)
        if r.status_code != 405 or r.headers.get("allow") != ", ".join(documented):
            wrong.append(f"{method} {path}: {r.status_code}, Allow {r.headers.get('allow')!r} ({documented})")
    return wrong


def test_every_method_a_path_does_not_take_is_a_405_naming_the_ones_it_does(
    farm: tuple[ServerProcess, ManagerProcess, dict[str, str]],
) -> None:
    wrong = _on_both_services(farm, _methods_not_taken)
    assert not wrong, "\n".join(wrong)


def _head_like_get(
    base: str, _template: str, path: str, operations: dict[str, Any], headers: dict[str, str]
) -> list[str]:
    """A path that takes GET asked with HEAD: GET's status and content type, and no body."""
    import httpx

    if "get" not in operations:
        return []
    # the event stream never ends: its GET is read up to its headers, as HEAD ends it
    with httpx.stream("GET", base + path, headers=headers, timeout=30) as got:
        status, kind = got.status_code, got.headers.get("content-type")
    r = httpx.head(base + path, headers=headers, timeout=30)
    if (r.status_code, r.headers.get("content-type"), r.content) == (status, kind, b""):
        return []
    return [f"HEAD {path}: {r.status_code} {r.headers.get('content-type')} {r.content[:80]!r}; GET: {status} {kind}"]


def test_every_path_that_takes_get_answers_head_as_get_without_the_body(
    farm: tuple[ServerProcess, ManagerProcess, dict[str, str]],
) -> None:
    """HTTP has a server that takes GET take HEAD (monitoring probes send it); FastAPI's routes refused it."""
    wrong = _on_both_services(farm, _head_like_get)
    assert not wrong, "\n".join(wrong)
