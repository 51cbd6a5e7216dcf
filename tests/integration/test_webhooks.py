"""Webhooks over real HTTP: a receiver on 127.0.0.1 gets exactly one call per job event, signed and carrying
its idempotency key, also when it was down for a while and the Server restarted meanwhile; several Servers on
one PostgreSQL never deliver a call twice; bad settings are refused naming the field."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_link_server import claim, kind, new_link, push, submit
from tests.support.databases import database_url, fresh_postgres_database
from tests.support.manager import API
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(240)

# quick retries, so "down for a while" is seconds here; the defaults are documented in docs/operations.md
FAST = {
    "TABLAO_WEBHOOK_BACKOFF_MIN": "0.3",
    "TABLAO_WEBHOOK_BACKOFF_MAX": "1.0",
    "TABLAO_WEBHOOK_POLL_SECONDS": "0.3",
    "TABLAO_WEBHOOK_TIMEOUT": "5",
}


@pytest.fixture(scope="module")
def server(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with database_url(db_kind, tmp_path_factory.mktemp("db")) as url:
        srv = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=url, env=FAST).start(timeout=90)
        yield srv
        srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


def add_webhook(admin: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"chat-{kind()}", "url": url}
    if events is not None:
        body["events"] = events
    r = admin.post("/webhooks", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def finish_job(admin: httpx.Client, link: httpx.Client, status: str = "completed") -> dict[str, Any]:
    """A one-task job run to `status` (completed or failed) through the Manager link."""
    t = kind()
    job = submit(admin, t, frames="1", max_task_failures=1)
    (c,) = claim(link, [t])
    r = push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": status}])
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text
    assert admin.get(f"/jobs/{job['id']}").json()["status"] == status
    return job


def ours(receiver: WebhookReceiver, job_ids: set[int]) -> list[dict[str, Any]]:
    return [p for p in receiver.payloads() if p.get("job", {}).get("id") in job_ids]


def test_one_signed_call_per_event_and_only_the_events_asked_for(admin: httpx.Client, server: ServerProcess) -> None:
    receiver = WebhookReceiver().start()
    try:
        hook = add_webhook(admin, receiver.url)  # completed and failed by default
        assert hook["events"] == ["job-completed", "job-failed"] and hook["secret"].startswith("whsec_")
        assert "secret" not in admin.get("/webhooks").json()[0], "the secret is shown once"
        with new_link(server) as link:
            done = finish_job(admin, link, "completed")
            failed = finish_job(admin, link, "failed")
            t = kind()
            canceled = submit(admin, t, frames="1")
            assert admin.post(f"/jobs/{canceled['id']}/status", json={"action": "cancel"}).status_code == 200
        ids = {done["id"], failed["id"], canceled["id"]}
        wait_for(lambda: len(ours(receiver, ids)) >= 2, timeout=30, what="two calls")
        time.sleep(1.5)  # a repeat or a call for the canceled job would arrive by now
        got = ours(receiver, ids)
        assert sorted((p["job"]["id"], p["event"]) for p in got) == [
            (done["id"], "job-completed"),
            (failed["id"], "job-failed"),
        ]
        for call in receiver.calls:
            assert call.path == "/hooks/farm"
            assert call.headers["idempotency-key"] == call.payload["id"]
            expected = hmac.new(hook["secret"].encode(), call.body, hashlib.sha256).hexdigest()
            assert call.headers["x-tablao-signature"] == f"sha256={expected}"
            assert call.headers["x-tablao-event"] == call.payload["event"]
        text = next(p["text"] for p in got if p["event"] == "job-failed")
        assert f"(#{failed['id']})" in text and "failed" in text
        listed = next(h for h in admin.get("/webhooks").json() if h["id"] == hook["id"])
        assert listed["pending"] == 0 and listed["last_delivered"] is not None and listed["last_error"] == ""
        # a test call arrives too, with the ping event
        key = admin.post(f"/webhooks/{hook['id']}/test").json()["id"]
        wait_for(lambda: any(p["id"] == key for p in receiver.payloads()), timeout=20, what="the ping")
        assert next(p for p in receiver.payloads() if p["id"] == key)["event"] == "ping"
    finally:
        admin.delete(f"/webhooks/{hook['id']}")
        receiver.stop()


def test_a_receiver_down_for_a_while_gets_each_call_once_across_a_server_restart(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None, env=FAST).start()
    receiver = WebhookReceiver()  # not listening yet: every call is refused
    try:
        with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
            hook = add_webhook(admin, receiver.url, ["job-completed", "job-failed"])
            with new_link(server) as link:
                jobs = [finish_job(admin, link, s) for s in ("completed", "failed", "completed")]

            def tried() -> dict[str, Any] | None:
                h = next(h for h in admin.get("/webhooks").json() if h["id"] == hook["id"])
                return h if h["pending"] == 3 and h["last_error"] else None

            listed = wait_for(tried, timeout=30, what="failed attempts recorded")
            assert "ConnectError" in listed["last_error"], listed
        server.kill()  # no clean shutdown: the pending calls live in the database only
        server.start()
        time.sleep(1.0)
        receiver.start()
        ids = {j["id"] for j in jobs}
        wait_for(lambda: len(ours(receiver, ids)) >= 3, timeout=60, what="the three calls after the outage")
        time.sleep(2.0)  # room for a duplicate to show up
        got = ours(receiver, ids)
        assert Counter(p["job"]["id"] for p in got) == Counter({j["id"]: 1 for j in jobs})
        assert len({p["id"] for p in got}) == 3
        attempts = [int(c.headers["x-tablao-attempt"]) for c in receiver.calls]
        assert all(a >= 2 for a in attempts), f"each was tried while the receiver was down: {attempts}"
        with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
            listed = next(h for h in admin.get("/webhooks").json() if h["id"] == hook["id"])
            assert listed["pending"] == 0 and listed["last_error"] == ""
    finally:
        receiver.stop()
        server.stop()


@pytest.mark.postgres
def test_several_servers_on_one_database_deliver_each_call_once(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        servers = [
            ServerProcess(data_dir=tmp_path / f"s{i}", database_url=url, env=FAST).start(timeout=60) for i in range(3)
        ]
        receiver = WebhookReceiver(delay=0.05).start()  # slow answers: claims overlap between the Servers
        try:
            token = servers[0].admin_token
            with httpx.Client(base_url=servers[1].url + API, headers=servers[0].headers(token), timeout=30) as admin:
                add_webhook(admin, receiver.url, ["job-completed"])
                with new_link(servers[2]) as link:
                    jobs = [finish_job(admin, link) for _ in range(24)]
            ids = {j["id"] for j in jobs}
            wait_for(lambda: len(ours(receiver, ids)) >= len(ids), timeout=60, what="every call")
            time.sleep(2.0)
            counts = Counter(p["job"]["id"] for p in ours(receiver, ids))
            assert counts == Counter(dict.fromkeys(ids, 1)), "each call made by exactly one Server"
        finally:
            receiver.stop()
            for s in servers:
                s.stop()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"name": "a", "url": "ftp://chat.example/hook"}, "url", "http:// or https://"),
        ({"name": "a", "url": "https://chat.example/" + "x" * 2000}, "url", "at most 2000"),
        ({"name": "a", "url": "https://user:pw@chat.example/hook"}, "url", "user name or password"),
        ({"name": "a", "url": "https:///hook"}, "url", "must name a host"),
        ({"name": "a", "url": "http://chat.example:99999/"}, "url", "not a valid URL"),
        ({"name": "a", "url": "http://chat.example/a b"}, "url", "spaces"),
        # urlsplit takes these host names, httpx (which makes the calls) does not
        ({"name": "a", "url": "http://☃.com/x"}, "url", "not a URL a call can be sent to"),
        ({"name": "a", "url": "http://chat\u200b.example/"}, "url", "not a URL a call can be sent to"),
        ({"name": "a", "url": "http://xn--a.example/"}, "url", "not a URL a call can be sent to"),
        ({"name": "a", "url": "http://10.0.0.999/"}, "url", "not a URL a call can be sent to"),
        ({"name": "a", "url": "http://[v1.x]/"}, "url", "not a URL a call can be sent to"),
        ({"name": "a", "url": "http://chat.example/", "events": []}, "events", "at least 1"),
        ({"name": "a", "url": "http://chat.example/", "events": ["job-exploded"]}, "events.0", "Input should be"),
        ({"name": "a", "url": "http://chat.example/", "events": ["ping"]}, "events", "ping is sent only"),
        ({"name": "", "url": "http://chat.example/"}, "name", "should match pattern"),
        ({"name": "hook ", "url": "http://chat.example/"}, "name", "should match pattern"),  # `hook` to the eye
        ({"name": "a", "url": "http://chat.example/", "secret": "mine"}, "secret", "Extra inputs"),
    ],
)
def test_bad_webhook_settings_are_refused_naming_the_field(
    admin: httpx.Client, body: dict[str, Any], field: str, reason: str
) -> None:
    before = admin.get("/webhooks").json()
    r = admin.post("/webhooks", json=body)
    assert r.status_code == 422, r.text
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert field in errors and reason in errors[field], errors
    assert admin.get("/webhooks").json() == before


def test_webhook_changes_and_missing_ones(admin: httpx.Client) -> None:
    hook = add_webhook(admin, "http://127.0.0.1:9/hook")
    try:
        for name in (hook["name"], hook["name"].upper()):  # names differing only in case looked like one
            r = admin.post("/webhooks", json={"name": name, "url": "http://127.0.0.1:9/other"})
            assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name", r.text
        r = admin.patch(f"/webhooks/{hook['id']}", json={"enabled": False, "events": ["job-failed", "job-failed"]})
        assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["events"] == ["job-failed"]
        for url in ("gopher://x", "http://☃.com/x"):
            r = admin.patch(f"/webhooks/{hook['id']}", json={"url": url})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "url", r.text
        assert next(h for h in admin.get("/webhooks").json() if h["id"] == hook["id"])["url"] == hook["url"]
        assert admin.patch("/webhooks/987654", json={"enabled": True}).status_code == 404
        assert admin.delete("/webhooks/987654").status_code == 404
        assert admin.post("/webhooks/987654/test").status_code == 404
        r = admin.delete(f"/webhooks/{2**70}")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "webhook_id"
    finally:
        assert admin.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert all(h["id"] != hook["id"] for h in admin.get("/webhooks").json())
