"""The SSE event stream: every event has an id, and a client that reconnects with Last-Event-ID misses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from tests.integration.test_server_jobs import render_job
from tests.support.services import ServerProcess

API = "/api/v1"


def read_events(server: ServerProcess, last_event_id: int | None, count: int) -> list[dict[str, Any]]:
    """Open the stream, read `count` events, and drop the connection."""
    headers = server.headers()
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    out: list[dict[str, Any]] = []
    with httpx.stream("GET", server.url + API + "/events", headers=headers, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for frame in _frames(r.iter_lines()):
            assert int(frame["id"]) == json.loads(frame["data"])["id"]
            out.append(json.loads(frame["data"]))
            if len(out) == count:
                break
    return out


def _frames(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in frame:
                yield frame
            frame = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            frame[key] = value.lstrip()


def test_reconnect_with_last_event_id_gets_every_missed_event_in_order(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url + API, headers=server.headers()) as c:
        first = c.post("/jobs", json=render_job(name="ev-0")).json()
        # a client connected from the beginning sees the job-created event; it then drops its connection
        seen = read_events(server, 0, 1)
        last_id = max(e["id"] for e in seen)
        # while it is away, jobs change
        created = [c.post("/jobs", json=render_job(name=f"ev-{i}")).json() for i in (1, 2)]
        c.post(f"/jobs/{first['id']}/status", json={"action": "pause"}).raise_for_status()
        c.post(f"/jobs/{created[0]['id']}/priority", json={"priority": 7}).raise_for_status()
        c.post(f"/jobs/{created[1]['id']}/status", json={"action": "cancel"}).raise_for_status()
        c.delete(f"/jobs/{created[1]['id']}").raise_for_status()
    missed = read_events(server, last_id, 8)
    ids = [e["id"] for e in missed]
    assert ids == sorted(ids) and ids[0] == last_id + 1
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # no gap
    types = [(e["type"], e["data"].get("name") or e["data"].get("id") or e["data"].get("job_id")) for e in missed]
    assert ("job-created", "ev-1") in types and ("job-created", "ev-2") in types
    assert ("job-deleted", created[1]["id"]) in types
    updates = [e for e in missed if e["type"] == "job-updated" and e["data"]["id"] == first["id"]]
    assert updates and updates[-1]["data"]["status"] == "paused"
    prio = [e for e in missed if e["type"] == "job-updated" and e["data"]["id"] == created[0]["id"]]
    assert prio[-1]["data"]["priority"] == 7
    # changes carry what changed, not the settings (they never change after submission, and may be large)
    assert all("settings" not in e["data"] for e in updates + prio)
    assert all("settings" in e["data"] for e in missed if e["type"] == "job-created")


def test_live_events_arrive_without_polling_delay(server: ServerProcess) -> None:
    import threading
    import time

    with httpx.Client(base_url=server.url + API, headers=server.headers()) as c:
        newest = c.post("/jobs", json=render_job(name="live-0")).json()["id"]

        def submit_later() -> None:
            time.sleep(0.5)
            c.post("/jobs", json=render_job(name="live-1")).raise_for_status()

        t = threading.Thread(target=submit_later)
        start = time.monotonic()
        t.start()
        # connect without Last-Event-ID: only what happens from now on
        events = read_events(server, None, 1)
        t.join()
    assert events[0]["type"] == "job-created" and events[0]["data"]["name"] == "live-1"
    assert events[0]["data"]["id"] > newest
    assert time.monotonic() - start < 5


def test_bad_last_event_id(server: ServerProcess) -> None:
    r = httpx.get(server.url + API + "/events", headers={**server.headers(), "Last-Event-ID": "yesterday"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Last-Event-ID"
    assert httpx.get(server.url + API + "/events").status_code == 401


def test_a_last_event_id_ahead_of_every_event_gets_a_reset_then_what_comes(server: ServerProcess) -> None:
    """A client reconnecting after the database was restored (or to another farm) sent an id past every event:
    the stream waited for ids past it and said nothing while jobs came and went."""
    import threading
    import time

    def submit_later() -> None:
        time.sleep(0.5)
        httpx.post(f"{server.url}{API}/jobs", json=render_job(name="after-restore"), headers=server.headers())

    t = threading.Thread(target=submit_later)
    t.start()
    events = read_events(server, 10**12, 2)
    t.join()
    assert events[0]["type"] == "reset", events
    assert events[1]["type"] == "job-created" and events[1]["data"]["name"] == "after-restore"
    assert events[1]["id"] > events[0]["id"]


def test_an_idle_stream_says_a_keepalive_as_often_as_it_announces(server: ServerProcess) -> None:
    """A client takes a few keep-alive periods of silence for a Server that hangs and moves on: the stream says how
    often it speaks, and does. It was every 15 s, unannounced, and clients waited their 60 s read timeout."""
    import time

    with httpx.stream("GET", server.url + API + "/events", headers=server.headers(), timeout=20) as r:
        assert r.status_code == 200
        period = float(r.headers["X-Keepalive-Seconds"])
        assert 0 < period <= 5
        heard: list[float] = []
        start = time.monotonic()
        for line in r.iter_lines():
            if line.startswith(": keep-alive"):
                heard.append(time.monotonic() - start)
                if len(heard) == 2:
                    break
    # the second within two periods and a margin for a loaded machine: the first after one, the next one later
    assert heard[1] < 2 * period + 1.5, heard
    assert heard[1] - heard[0] > period / 2, heard
