"""Input just over each limit, at both services: a clear 4xx with the `{detail, errors}` body, and a service that
keeps answering meanwhile (body size counted on the bytes read, chunked or not; field sizes; id ranges)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_manager_basics import exec_job, submit
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

BODY_LIMIT = 8 * 1024 * 1024  # both services' default
TOO_BIG_ID = 2**63

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager").start()
    yield server, mgr
    mgr.stop()
    server.stop()


def _chunks(total: int, pause: float = 0.0) -> Iterator[bytes]:
    """A JSON-looking body sent without Content-Length (chunked), `total` bytes in 64 KiB pieces."""
    sent = 0
    yield b'{"name": "'
    while sent < total:
        piece = min(65536, total - sent)
        yield b"x" * piece
        sent += piece
        if pause:
            time.sleep(pause)
    yield b'"}'


def _assert_413(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text[:300]
    body = r.json()
    assert "over the limit" in body["detail"] and [e["field"] for e in body["errors"]] == ["body"]


def _health_p_max(url: str, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            t = time.monotonic()
            assert client.get(url).status_code == 200
            worst.append(time.monotonic() - t)
            time.sleep(0.02)


def _send_while_checking_health(health_url: str, send: Any) -> httpx.Response:
    stop, times = threading.Event(), []  # type: ignore[var-annotated]
    probe = threading.Thread(target=_health_p_max, args=(health_url, stop, times))
    probe.start()
    try:
        r = send()
    finally:
        stop.set()
        probe.join(timeout=20)
    assert not times or max(times) < 5.0, f"health took up to {max(times):.2f} s during the upload"
    assert httpx.get(health_url, timeout=5).status_code == 200
    return r  # type: ignore[no-any-return]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_server_body_limit(farm: tuple[ServerProcess, ManagerProcess], chunked: bool) -> None:
    server = farm[0]
    content: Any = _chunks(BODY_LIMIT, pause=0.001) if chunked else b"x" * (BODY_LIMIT + 1)
    for path, headers in (("/jobs", server.headers()), ("/auth/login", {})):  # authenticated and not
        r = _send_while_checking_health(
            f"{server.url}{API}/health",
            lambda p=path, h=headers, c=content: httpx.post(
                f"{server.url}{API}{p}", content=c, headers={**h, "content-type": "application/json"}, timeout=60
            ),
        )
        _assert_413(r)
        content = _chunks(BODY_LIMIT) if chunked else content
    # just under the limit is read and judged on its merits (logging in, which anyone may call, takes 64 KiB)
    body = b" " * (BODY_LIMIT - 10) + b"{}"
    r = httpx.post(f"{server.url}{API}/jobs", content=body, headers=server.headers(), timeout=60)
    assert r.status_code == 422
    r = httpx.post(f"{server.url}{API}/auth/login", content=body, timeout=60)
    assert r.status_code == 413


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_manager_body_limit_on_unauthenticated_worker_routes(
    farm: tuple[ServerProcess, ManagerProcess], chunked: bool
) -> None:
    mgr = farm[1]
    w = ScriptedWorker(mgr.url, "big-bodies").register(mgr.registration_secret)
    w.sign_on()
    worker_auth = httpx.BasicAuth(w.worker_id, w.secret)
    w.close()
    # register reads the body unauthenticated; the other two read it after checking the worker
    for path, auth in (("/worker/register", None), ("/worker/task", worker_auth), ("/worker/heartbeat", worker_auth)):
        content: Any = _chunks(BODY_LIMIT, pause=0.001) if chunked else b"x" * (BODY_LIMIT + 1)
        r = _send_while_checking_health(
            f"{mgr.url}{API}/health",
            lambda p=path, c=content, a=auth: httpx.post(
                f"{mgr.url}{API}{p}", content=c, headers={"content-type": "application/json"}, auth=a, timeout=60
            ),
        )
        _assert_413(r)
    # without credentials the body is not read at all: 401 at once
    r = httpx.post(f"{mgr.url}{API}/worker/task", content=_chunks(BODY_LIMIT), timeout=60)
    assert r.status_code == 401


def _fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


def test_field_size_limits_name_the_field(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    server, mgr = farm
    url, headers = f"{server.url}{API}/jobs", server.headers()
    r = httpx.post(url, json=exec_job("tags", tags=["t" * 65]), headers=headers)
    assert r.status_code == 422 and _fields(r) == ["tags.0"], r.text
    big = exec_job("settings")
    big["settings"]["padding"] = "x" * (256 * 1024)
    r = httpx.post(url, json=big, headers=headers)
    assert r.status_code == 422 and _fields(r) == ["settings"], r.text
    deep: Any = {}
    for _ in range(40):
        deep = {"d": deep}
    r = httpx.post(url, json={**exec_job("deep"), "settings": deep}, headers=headers)
    assert r.status_code == 422 and _fields(r) == ["settings"], r.text
    w = ScriptedWorker(mgr.url, "sizes").register(mgr.registration_secret)
    try:
        body = {"name": "sizes", "platform": "linux", "task_types": ["exec"], "software": {"x": "v" * 20_000}}
        r = w.http.post(f"{mgr.url}{API}/worker/sign-on", json=body)
        assert r.status_code == 422 and _fields(r) == ["software"], r.text
        body = {"name": "sizes", "platform": "linux", "task_types": ["e" * 201]}
        r = w.http.post(f"{mgr.url}{API}/worker/sign-on", json=body)
        assert r.status_code == 422 and _fields(r) == ["task_types[0]"], r.text
    finally:
        w.close()
    assert httpx.get(f"{server.url}{API}/health").status_code == 200


def test_ids_out_of_range_are_422_never_500(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    server, mgr = farm
    job = submit(server, exec_job("ids", frames="1"))
    h = server.headers()
    big = str(TOO_BIG_ID)
    calls = [
        ("GET", f"/jobs/{big}", None),
        ("DELETE", f"/jobs/{big}", None),
        ("POST", f"/jobs/{big}/status", {"action": "pause"}),
        ("POST", f"/jobs/{big}/priority", {"priority": 5}),
        ("GET", f"/jobs/{big}/tasks", None),
        ("GET", f"/jobs/{big}/log", None),
        ("GET", f"/tasks/{big}", None),
        ("GET", f"/jobs/{big}/last-rendered", None),
        ("GET", f"/workers/{'w' * 65}/last-rendered/info", None),
        ("POST", f"/tasks/{big}/status", {"action": "cancel"}),
        ("DELETE", f"/tokens/{big}", None),
        ("GET", f"/events?after={big}", None),
        ("POST", "/jobs/bulk", {"ids": [job["id"], TOO_BIG_ID], "action": "pause"}),
        ("POST", "/tasks/bulk", {"ids": [TOO_BIG_ID], "action": "cancel"}),
        ("POST", "/jobs", {**exec_job("deps"), "depends_on": [TOO_BIG_ID]}),
        ("POST", "/jobs", {**exec_job("mgr"), "manager_id": TOO_BIG_ID}),
    ]
    for method, path, body in calls:
        r = httpx.request(method, f"{server.url}{API}{path}", json=body, headers=h, timeout=10)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert r.json()["errors"], r.text
    r = httpx.get(f"{server.url}{API}/events", headers={**h, "Last-Event-ID": big}, timeout=10)
    assert r.status_code == 422 and _fields(r) == ["Last-Event-ID"], r.text
    r = httpx.get(f"{mgr.url}{API}/tasks/{big}/log", headers=h, timeout=10)
    assert r.status_code == 422, r.text
    w = ScriptedWorker(mgr.url, "ids").register(mgr.registration_secret)
    try:
        w.sign_on()
        r = w.http.get(f"{mgr.url}{API}/worker/tasks/{big}/may-i-run")
        assert r.status_code == 422, r.text
        r = w.send(TOO_BIG_ID, [w.update(status="active", attempt=1)])
        assert r.status_code == 422, r.text
        r = w.http.post(f"{mgr.url}{API}/worker/heartbeat", json={"status": "awake", "current_task_id": TOO_BIG_ID})
        assert r.status_code == 422 and _fields(r) == ["current_task_id"], r.text
    finally:
        w.close()


def test_every_error_has_the_documented_shape(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    for base in (farm[0].url, farm[1].url):
        for method, path in (("GET", "/no/such/route"), ("PUT", f"{API}/health")):
            r = httpx.request(method, base + path)
            assert r.status_code in (404, 405)
            assert set(r.json()) == {"detail", "errors"}, r.text


def test_openapi_documents_declare_real_errors_and_security(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    for base, schemes in ((farm[0].url, {"HTTPBearer"}), (farm[1].url, {"WorkerBasic", "ServerToken"})):
        doc = httpx.get(f"{base}{API}/openapi.json").json()
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        assert set(doc["components"]["securitySchemes"]) == schemes
        for path, item in doc["paths"].items():
            for method, op in item.items():
                responses = op["responses"]
                assert "500" in responses, (method, path)
                for code, entry in responses.items():
                    if code.startswith(("4", "5")):
                        assert entry["content"]["application/json"]["schema"] == {
                            "$ref": "#/components/schemas/ErrorResponse"
                        }, (method, path, code)
                if op.get("security"):
                    assert {"401", "403", "429"} <= set(responses), (method, path)
                if "requestBody" in op:
                    assert {"413", "422"} <= set(responses), (method, path)


def test_docs_page_works_offline(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    for base in (farm[0].url, farm[1].url):
        page = httpx.get(f"{base}{API}/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            r = httpx.get(f"{base}{API}/docs-assets/{asset}")
            assert r.status_code == 200 and len(r.content) > 10_000


def _anonymous_write(
    url: str, method: str, path: str, timeout: float = 3.0, authorization: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A JSON write announcing 1 MB and sending 7 bytes of it, with no credentials (or the `authorization` header
    given, blank ones): the status and body of the answer, which must come without the rest of the body."""
    parsed = httpx.URL(url)
    auth = f"Authorization: {authorization}\r\n" if authorization is not None else ""
    with socket.create_connection((parsed.host, parsed.port), timeout=timeout) as sock:
        head = (
            f"{method} {path if path.startswith('//') else API + path} HTTP/1.1\r\nHost: {parsed.host}\r\n"
            f"{auth}Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"a": 1')
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"{}")


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_write_without_credentials_is_refused_before_its_body_is_read(
    farm: tuple[ServerProcess, ManagerProcess],
) -> None:
    server, mgr = farm
    for url, method, path, field in (
        (server.url, "POST", "/jobs", "token"),
        (server.url, "POST", "/users", "token"),
        (server.url, "PATCH", "/users/1", "token"),
        (server.url, "POST", "/manager/updates", "token"),
        (server.url, "POST", "/manager/tasks/1/log", "token"),
        (mgr.url, "POST", "/worker/heartbeat", "authorization"),
        (mgr.url, "POST", "/worker/sign-on", "authorization"),
        (mgr.url, "PUT", "/workers/w/sleep-schedule", "authorization"),
    ):
        status, body = _anonymous_write(url, method, path)  # a socket timeout here: the service waited for the body
        assert status == 401, (path, body)
        assert body["errors"][0]["field"] == field, (path, body)
    # a blank header is no credentials; a path no route takes is answered too, not read first (as the app would)
    for authorization in ("", "Bearer", "Basic   "):
        status, body = _anonymous_write(server.url, "POST", "/jobs", authorization=authorization)
        assert status == 401, (authorization, body)
    for url, path, status_wanted in (
        (server.url, "/no/such/route", 404),
        (server.url, "/jobs/", 404),
        (server.url, "/auth/login/", 404),
        (server.url, "//api/v1/jobs", 404),
        (mgr.url, "/worker/register/", 404),
        (mgr.url, "/no/such/route", 404),
        (server.url, "/health", 405),
    ):
        status, body = _anonymous_write(url, "POST", path)
        assert status == status_wanted and set(body) == {"detail", "errors"}, (path, status, body)
    # the routes public by design still read what they are sent
    r = httpx.post(f"{server.url}{API}/auth/login", json={"username": "nobody", "password": "x" * 12}, timeout=10)
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "password", r.text  # wrong password
    r = httpx.post(f"{mgr.url}{API}/worker/register", json={"registration_secret": "no", "name": "w",
                                                          "platform": "linux"}, timeout=10)  # fmt: skip
    assert r.status_code in (401, 429) and "registration_secret" in r.text


def test_a_write_with_credentials_the_route_would_refuse_is_refused_before_its_body_is_read(
    farm: tuple[ServerProcess, ManagerProcess],
) -> None:
    """Made-up credentials used to buy a read of up to 8 MiB (64 MiB for a log upload): the route checked them
    only once the body had arrived. Each answer below must come while 999,993 bytes of the body are unsent."""
    server, mgr = farm
    manager_token = mgr.token
    user = f"Bearer {server.admin_token}"
    for url, path, authorization, field, words in (
        (server.url, "/jobs", "Bearer made-up", "token", "not valid"),
        (server.url, "/jobs", f"Bearer {manager_token}", "token", "a Manager's token"),  # at a user's route
        (server.url, "/jobs", "Basic dXNlcjpwYXNz", "token", "needs an API token"),  # another scheme
        (server.url, "/manager/updates", "Bearer made-up", "token", "not a Manager token"),
        (server.url, "/manager/tasks/1/log", user, "token", "not a Manager token"),  # a user's token, a Manager's
        (mgr.url, "/worker/heartbeat", "Basic bm8tc3VjaDp3b3JrZXI=", "authorization", "wrong secret"),
        (mgr.url, "/worker/heartbeat", "Basic é", "authorization", "malformed"),  # beyond ASCII: was a 500
        (mgr.url, "/worker/task", "Bearer made-up", "authorization", "Basic"),  # a token where a worker's id is due
        (mgr.url, "/workers/w/sleep-schedule", "Bearer made-up", "authorization", "unknown or revoked"),
        (mgr.url, "/workers/w/sleep-schedule", "Basic bm8tc3VjaDp3b3JrZXI=", "authorization", "Server API token"),
    ):
        status, body = _anonymous_write(
            url, "POST" if "sleep" not in path else "PUT", path, authorization=authorization
        )
        assert status == 401, (path, authorization, body)
        assert body["errors"][0]["field"] == field and words in body["detail"], (path, authorization, body)
    # a read says so too: a Manager's token is named for what it is
    r = httpx.get(f"{server.url}{API}/jobs", headers=server.headers(manager_token), timeout=10)
    assert r.status_code == 401 and "a Manager's token" in r.json()["detail"], r.text
    # a path no route takes is still a 404, good credentials or not
    status, body = _anonymous_write(server.url, "POST", "/no/such/route", authorization="Bearer made-up")
    assert status == 404, body
    # good credentials still reach the route, which reads the body (here a broken one, so a 422 names it)
    r = httpx.post(f"{server.url}{API}/jobs", content=b'{"a": 1', headers=server.headers(), timeout=10)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body", r.text
    r = httpx.post(
        f"{server.url}{API}/manager/updates", content=b"{", headers=server.headers(manager_token), timeout=10
    )
    assert r.status_code == 422, r.text


def test_an_address_sending_bad_tokens_waits_before_its_bodies_are_read(tmp_path: Any) -> None:
    """The back-off for bad tokens holds at the door too: 429 with Retry-After, and a good token still passes."""
    server = ServerProcess(
        data_dir=tmp_path / "server", database_url=None, env={"TABLAO_AUTH_FREE_FAILURES": "2"}
    ).start()
    try:
        statuses = [_anonymous_write(server.url, "POST", "/jobs", authorization=f"Bearer bad-{i}")[0] for i in range(4)]
        assert statuses[:2] == [401, 401] and statuses[-1] == 429, statuses
        manager_statuses = [
            _anonymous_write(server.url, "POST", "/manager/updates", authorization=f"Bearer bad-{i}")[0]
            for i in range(4)
        ]
        assert manager_statuses[:2] == [401, 401] and manager_statuses[-1] == 429, manager_statuses
        r = httpx.post(f"{server.url}{API}/jobs", content=b"{", headers=server.headers(), timeout=10)
        assert r.status_code == 422, r.text
    finally:
        server.stop()
