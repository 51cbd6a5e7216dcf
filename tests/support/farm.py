"""A whole local farm for end-to-end tests: the real Server, Manager and workers as child processes."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from services.local_ports import free_ports
from services.localfarm.farm import LocalFarm

T = TypeVar("T")


def free_port_pair() -> int:
    """A port P with P + 1 free too (the Manager takes the Server's port + 1)."""
    return free_ports(2)


def need_programs(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH (make test installs them on Debian/Ubuntu)")


@contextmanager
def local_farm(
    data_dir: Path, workers: int = 2, manager_args: tuple[str, ...] = (), worker_args: tuple[str, ...] = ()
) -> Iterator[FarmClient]:
    farm = LocalFarm(
        data_dir,
        free_port_pair(),
        workers,
        manager_args=("--worker-timeout", "6", *manager_args),
        worker_args=("--heartbeat-interval", "1", "--poll-wait", "2", *worker_args),
        # tests write their outputs into their own temporary folders; the farm's data stays protected
        output_roots=(tempfile.gettempdir(),),
    )
    loop = LoopThread()
    client = None
    try:
        farm.claim()
        loop.run(farm.start())
        client = FarmClient(farm, loop)
        yield client
    finally:
        if client is not None:
            client.close()
        loop.run(farm.stop())
        loop.close()


class LoopThread:
    """An asyncio loop in a thread that lives as long as the farm (children die with the thread that started
    them on Linux), for tests written as plain functions."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class FarmClient:
    def __init__(self, farm: LocalFarm, loop: LoopThread) -> None:
        self.farm = farm
        self.loop = loop
        token = farm.admin_token_file.read_text().strip()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.server = httpx.Client(base_url=farm.server_url + "/api/v1", headers=self.headers, timeout=30)
        self.manager = httpx.Client(base_url=farm.manager_url + "/api/v1", headers=self.headers, timeout=30)

    def close(self) -> None:
        self.server.close()
        self.manager.close()

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.server.post("/jobs", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.server.get(f"/jobs/{job_id}", params={"tasks_limit": 1000}).json())

    def wait_job(self, job_id: int, statuses: set[str], timeout: float = 240) -> dict[str, Any]:
        found = self.wait_for(lambda: (j := self.job(job_id))["status"] in statuses and j, timeout,
                              lambda: f"job {job_id} is {self.job(job_id)['status']}")  # fmt: skip
        return dict(found)

    def wait_for(self, check: Callable[[], Any], timeout: float, describe: Callable[[], str] | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := check():
                return result
            time.sleep(0.25)
        logs = "\n".join(f"--- {c.name}:\n{c.tail(20)}" for c in self.farm.children)
        raise AssertionError(f"timed out: {describe() if describe else ''}\n{logs}")

    def task_log(self, task_id: int) -> str:
        r = self.manager.get(f"/tasks/{task_id}/log")
        assert r.status_code == 200, r.text
        return r.text
