"""Start a real Manager subprocess for tests, and a scripted worker that speaks the Worker API with httpx."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port, wait_http
from tests.support.services import ROOT, ServerProcess, child_env

# a busy shared machine can take longer than this to import and migrate; TABLAO_TEST_START_TIMEOUT raises it
START_TIMEOUT = float(os.environ.get("TABLAO_TEST_START_TIMEOUT", "30"))

API = "/api/v1"

# one SSL context for every scripted worker: each new one loads the CA bundle (~25 ms of CPU), and tests make
# workers by the hundred
_TLS = ssl.create_default_context()


def add_manager(server: ServerProcess, name: str) -> str:
    """Create a Manager at the Server over the admin API; returns its token (shown once)."""
    r = httpx.post(f"{server.url}{API}/managers", json={"name": name}, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@dataclass
class ManagerProcess:
    server_url: str
    token: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "manager.log"

    @property
    def registration_secret(self) -> str:
        return (self.data_dir / "worker-registration.secret").read_text().strip()

    def start(self, timeout: float = START_TIMEOUT) -> ManagerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        token_file = self.data_dir.parent / f"{self.data_dir.name}.token"
        token_file.write_text(self.token)
        args = [
            *("-m", "services.manager.cli", "--server", self.server_url, "--token-file", str(token_file)),
            *("--data-dir", str(self.data_dir), "--port", str(self.port), "--log-level", "warning"),
            *self.extra_args,
        ]
        import sys

        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=child_env(**self.env), stdout=log, stderr=log
        )
        log.close()
        try:
            wait_http(f"{self.url}{API}/health", timeout=timeout, proc=self.proc)
        except Exception as exc:
            self.kill()  # one that is slow to start would otherwise outlive the test run
            raise RuntimeError(f"the Manager did not start:\n{self.log_path.read_text()[-3000:]}") from exc
        return self

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class ScriptedWorker:
    """A worker as plain HTTP calls: registers, signs on, asks for tasks and reports, with its own seq."""

    def __init__(self, manager_url: str, name: str, task_types: tuple[str, ...] = ("exec",)) -> None:
        self.http = httpx.Client(base_url=manager_url + API + "/worker", timeout=30, verify=_TLS)
        self.name = name
        self.task_types = list(task_types)
        self.seq = 0
        self.worker_id = ""
        self.secret = ""

    def close(self) -> None:
        self.http.close()

    def register(self, secret: str) -> ScriptedWorker:
        r = self.http.post("/register", json={"registration_secret": secret, "name": self.name, "platform": "linux"})
        assert r.status_code == 200, r.text
        self.worker_id, self.secret = r.json()["worker_id"], r.json()["secret"]
        self.http.auth = httpx.BasicAuth(self.worker_id, self.secret)
        return self

    def sign_on(self, tags: tuple[str, ...] = ()) -> httpx.Response:
        body = {"name": self.name, "platform": "linux", "task_types": self.task_types, "tags": list(tags)}
        r = self.http.post("/sign-on", json=body)
        assert r.status_code == 200, r.text
        return r

    def update(self, **fields: Any) -> dict[str, Any]:
        """One update with the next seq (not sent yet: pass it to `send`)."""
        self.seq += 1
        return {"seq": self.seq, **fields}

    def send(self, task_id: int, updates: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post(f"/tasks/{task_id}/updates", json={"updates": updates})

    def ask(self, wait: float = 0.0, finished: tuple[int, list[dict[str, Any]]] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"wait_seconds": wait}
        if finished is not None:
            body["finished_task_id"] = finished[0]
            body["finished"] = {"updates": finished[1]}
        return self.http.post("/task", json=body)

    def next_task(self, wait: float = 10.0) -> dict[str, Any] | None:
        r = self.ask(wait)
        assert r.status_code in (200, 204), r.text
        return dict(r.json()) if r.status_code == 200 else None

    def heartbeat(self, status: str = "awake") -> httpx.Response:
        return self.http.post("/heartbeat", json={"status": status})

    def run_task(self, task: dict[str, Any], lines: int = 3) -> httpx.Response:
        """Report active, a few log lines, then completed, in one batch."""
        a = task["handout"]
        ups = [
            self.update(handout=a, status="active", activity="starting"),
            self.update(handout=a, log_lines=[f"{task['name']} line {i}" for i in range(lines)], steps_done=1),
            self.update(handout=a, status="completed", activity="done"),
        ]
        return self.send(task["id"], ups)


WorkerFactory = Callable[..., ScriptedWorker]


@contextmanager
def worker_factory() -> Iterator[WorkerFactory]:
    """Makes registered scripted workers (`make(manager, name)`) and closes their connections at the end."""
    made: list[ScriptedWorker] = []

    def make(manager: ManagerProcess, name: str, **kw: Any) -> ScriptedWorker:
        w = ScriptedWorker(manager.url, name, **kw).register(manager.registration_secret)
        made.append(w)
        return w

    try:
        yield make
    finally:
        for w in made:
            w.close()
