"""Last-rendered previews through a real Manager and Server: validation, the latest per job and worker at the
Server, the event that announces it, who may read it, and a Server outage that queues one image, not every one."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration.test_manager_basics import exec_job, submit
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ServerProcess

pytestmark = pytest.mark.timeout(180)


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=80)
    return out.getvalue()


def preview(width: int, height: int, path: str = "/renders/frame_0001.png") -> dict[str, Any]:
    data = base64.b64encode(jpeg(width, height)).decode()
    return {"content_type": "image/jpeg", "width": width, "height": height, "data": data, "frame_path": path,
            "frame_width": width * 4, "frame_height": height * 4}  # fmt: skip


@pytest.fixture
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("server"), database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path_factory.mktemp("mgr") / "manager").start()
    yield server, mgr
    mgr.stop()
    server.stop()


def wait_for(check: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def info(server: ServerProcess, path: str, token: str | None = None) -> dict[str, Any] | None:
    r = httpx.get(f"{server.url}{API}{path}/last-rendered/info", headers=server.headers(token), timeout=10)
    return dict(r.json()) if r.status_code == 200 else None


def events_after(server: ServerProcess, after: int, kind: str, within: float = 3.0) -> list[dict[str, Any]]:
    """The events of one type after an id, read from the real SSE stream for `within` seconds."""
    found: list[dict[str, Any]] = []
    url = f"{server.url}{API}/events?after={after}"
    try:
        # the stream never ends: it is read until it stays quiet for `within` seconds
        with httpx.stream("GET", url, headers=server.headers(), timeout=httpx.Timeout(10, read=within)) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == kind:
                        found.append(event)
    except httpx.ReadTimeout:
        pass
    return found


def test_a_preview_reaches_the_server_and_is_announced(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    server, mgr = farm
    job = submit(server, exec_job("previews", frames="1-2"))
    worker = ScriptedWorker(mgr.url, "w-preview").register(mgr.registration_secret)
    try:
        worker.sign_on()
        task = worker.next_task()
        assert task is not None and task["job_id"] == job["id"]
        a = task["handout"]
        # bad previews are refused naming the field, and change nothing
        for bad, field in (
            ({**preview(64, 36), "data": "not base64!"}, "updates[0].preview.data"),
            ({**preview(64, 36), "width": 4096}, "updates[0].preview.width"),
            ({**preview(64, 36), "content_type": "image/png"}, "updates[0].preview.content_type"),
            ({**preview(64, 36), "data": base64.b64encode(b"x" * 300_000).decode()}, "updates[0].preview.data"),
            # a page passed off as a JPEG, or a JPEG said to be a WebP
            (
                {**preview(64, 36), "data": base64.b64encode(b"<html><script>1</script>").decode()},
                "updates[0].preview.data",
            ),
            ({**preview(64, 36), "content_type": "image/webp"}, "updates[0].preview.data"),
        ):
            r = worker.send(task["id"], [worker.update(handout=a, preview=bad)])
            assert r.status_code == 422, r.text
            assert [e["field"] for e in r.json()["errors"]] == [field], r.text
        r = worker.send(task["id"], [worker.update(handout=a, status="active")])
        assert r.status_code == 200, r.text
        r = worker.send(task["id"], [worker.update(handout=a, preview=preview(128, 72))])
        assert r.status_code == 200, r.text
        got = wait_for(lambda: info(server, f"/jobs/{job['id']}"), what="the job's preview at the Server")
        assert got["task_id"] == task["id"] and got["worker_name"] == "w-preview"
        assert (got["width"], got["height"], got["frame_width"]) == (128, 72, 512)
        assert got["frame_path"] == "/renders/frame_0001.png"
        image = httpx.get(f"{server.url}{API}/jobs/{job['id']}/last-rendered", headers=server.headers(), timeout=10)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.headers["x-content-type-options"] == "nosniff"  # only its first bytes were checked
        with Image.open(io.BytesIO(image.content)) as img:
            assert (img.format, img.size) == ("JPEG", (128, 72))
        same = httpx.get(
            f"{server.url}{API}/jobs/{job['id']}/last-rendered",
            headers={**server.headers(), "If-None-Match": image.headers["etag"]},
            timeout=10,
        )
        assert same.status_code == 304 and not same.content
        mine = info(server, f"/workers/{worker.worker_id}")
        assert mine is not None and mine["job_id"] == job["id"]
        # announced on the event stream, without the image
        announced = events_after(server, 0, "last-rendered")
        assert announced, "no last-rendered event"
        data = announced[-1]["data"]
        assert data["job_id"] == job["id"] and data["worker_id"] == worker.worker_id
        assert data["job_version"] == got["version"] and data["worker_version"] >= 1
        assert "data" not in data
        # a Manager's token is not a user's; no token at all gets 401 too
        r = httpx.get(f"{server.url}{API}/jobs/{job['id']}/last-rendered", headers=server.headers(mgr.token))
        assert r.status_code == 401
        r = httpx.get(f"{server.url}{API}/jobs/{job['id']}/last-rendered")
        assert r.status_code == 401
    finally:
        worker.close()


def test_a_server_outage_queues_the_latest_preview_only(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    server, mgr = farm
    job = submit(server, exec_job("outage", frames="1-2"))
    worker = ScriptedWorker(mgr.url, "w-outage").register(mgr.registration_secret)
    try:
        worker.sign_on()
        task = worker.next_task()
        assert task is not None
        a = task["handout"]
        assert worker.send(task["id"], [worker.update(handout=a, status="active")]).status_code == 200
        server.stop()
        # ten frames while the Server is away; the Manager takes each, keeping only the newest
        for i in range(1, 11):
            frame = preview(10 * i, 10, path=f"/renders/frame_{i:04d}.png")
            r = worker.send(task["id"], [worker.update(handout=a, preview=frame)])
            assert r.status_code == 200, r.text
        r = worker.send(task["id"], [worker.update(handout=a, status="completed")])
        assert r.status_code == 200, r.text
        server.start(timeout=90)  # a loaded machine restarts slowly
        got = wait_for(lambda: info(server, f"/jobs/{job['id']}"), 60, "the preview after the outage")
        assert got["frame_path"] == "/renders/frame_0010.png" and got["width"] == 100
        assert got["version"] == 1  # the nine older ones never went up
        announced = events_after(server, 0, "last-rendered")
        assert [e["data"]["frame_path"] for e in announced] == ["/renders/frame_0010.png"]
        task_now = httpx.get(f"{server.url}{API}/tasks/{task['id']}", headers=server.headers(), timeout=10).json()
        assert task_now["status"] == "completed"
    finally:
        worker.close()


def test_a_new_workers_first_preview_is_kept_as_the_workers_too(farm: tuple[ServerProcess, ManagerProcess]) -> None:
    """Worker states ride along only every few seconds; a worker that registers and renders within that time still
    gets its preview at the Server (its state goes up with the preview instead of after it)."""
    server, mgr = farm
    job = submit(server, exec_job("new-worker", frames="1-2"))
    first = ScriptedWorker(mgr.url, "w-first").register(mgr.registration_secret)
    worker = ScriptedWorker(mgr.url, "w-new")
    try:
        first.sign_on()

        def known() -> list[str]:
            r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=10)
            return [w["name"] for w in r.json()]

        wait_for(lambda: "w-first" in known(), what="the first worker at the Server")
        # the Manager has just reported its workers: the next report is seconds away
        worker.register(mgr.registration_secret)
        worker.sign_on()
        task = worker.next_task()
        assert task is not None and task["job_id"] == job["id"]
        r = worker.send(task["id"], [worker.update(handout=task["handout"], status="active", preview=preview(32, 18))])
        assert r.status_code == 200, r.text
        wait_for(lambda: info(server, f"/jobs/{job['id']}"), what="the job's preview at the Server")
        mine = info(server, f"/workers/{worker.worker_id}")
        assert mine is not None and mine["task_id"] == task["id"]
    finally:
        worker.close()
        first.close()
