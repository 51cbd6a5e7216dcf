"""Start real Tablao services for tests: the Server as a subprocess on an ephemeral port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.ports import free_port, wait_http

# a busy shared machine can take longer than this to import and migrate; TABLAO_TEST_START_TIMEOUT raises it
START_TIMEOUT = float(os.environ.get("TABLAO_TEST_START_TIMEOUT", "30"))

ROOT = Path(__file__).resolve().parents[2]

# A Server lease of 10 s instead of 60 s: the Manager sends its keep-alive batch (which carries its workers'
# states to the Server and brings back a wrangler's requests) every quarter lease, 2.5 s instead of 10 s, and a
# task whose claim answer was lost returns to the queue after 10 s. For tests that stop no service for that long.
QUICK_LEASE = ("--lease-seconds", "10")


def tablao_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TABLAO_ADMIN_TOKEN", None)
    env.pop("TABLAO_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        args = ["server", "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra_args]
        if self.database_url:
            args += ["--database-url", self.database_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(tablao_command(*args), cwd=ROOT, env=child_env(**self.env), stdout=log, stderr=log)
        log.close()
        try:
            wait_http(f"{self.url}/api/v1/health", timeout=timeout, proc=self.proc)
        except Exception as exc:
            self.kill()  # one that is slow to start would otherwise outlive the test run
            raise RuntimeError(f"the Server did not start:\n{self.log_path.read_text()[-3000:]}") from exc
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def jobs_named(self, name: str) -> list[int]:
        """The ids of the Server's jobs of exactly this name (of its first 1,000 matches)."""
        r = httpx.get(f"{self.url}/api/v1/jobs", params={"search": name, "limit": 1000}, headers=self.headers())
        return [j["id"] for j in r.json()["items"] if j["name"] == name]
