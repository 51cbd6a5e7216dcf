"""A Server, a Manager and a worker talking https end to end, with a CA made for the test; plain http is
refused on a non-loopback address."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.ports import free_port
from tests.support.services import ROOT, child_env, tablao_command
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@contextmanager
def _service(log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(tablao_command(*args), cwd=ROOT, env=child_env(), stdout=out, stderr=out)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _healthy(url: str, verify: ssl.SSLContext, proc: subprocess.Popen[bytes], log: Path) -> None:
    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/api/v1/health", verify=verify, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, timeout=60, what=f"{url} to answer over https")


def test_server_manager_and_worker_over_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(cert_file), append=i > 0)
    verify = ssl.create_default_context(cafile=str(ca_file))
    tls = ("--tls-cert", str(cert_file), "--tls-key", str(key_file))
    server_dir, manager_dir = tmp_path / "server", tmp_path / "manager"
    server_dir.mkdir()
    server_url, manager_url = f"https://127.0.0.1:{free_port()}", f"https://127.0.0.1:{free_port()}"

    server_args = ("server", "--data-dir", str(server_dir), "--port", server_url.rsplit(":", 1)[1], *tls)
    with _service(tmp_path / "server.log", *server_args) as server:
        _healthy(server_url, verify, server, tmp_path / "server.log")
        admin = {"Authorization": f"Bearer {(server_dir / 'admin.token').read_text().strip()}"}
        api = httpx.Client(base_url=server_url + "/api/v1", headers=admin, verify=verify, timeout=30)
        token_file = tmp_path / "manager.token"
        token_file.write_text(api.post("/managers", json={"name": "m"}).json()["token"])

        manager_args = ("manager", "--server", server_url, "--token-file", str(token_file),
                        "--data-dir", str(manager_dir), "--port", manager_url.rsplit(":", 1)[1],
                        "--ca-bundle", str(ca_file), *tls)  # fmt: skip
        with _service(tmp_path / "manager.log", *manager_args) as manager:
            _healthy(manager_url, verify, manager, tmp_path / "manager.log")
            worker_args = ("worker", "--manager", manager_url, "--ca-bundle", str(ca_file),
                           "--data-dir", str(tmp_path / "worker"), "--name", "w", "--task-types", "exec",
                           "--registration-secret-file", str(manager_dir / "worker-registration.secret"),
                           "--poll-wait", "2")  # fmt: skip
            with _service(tmp_path / "worker.log", *worker_args):
                job_file = tmp_path / "job.json"
                body = {"name": "tls", "type": "exec", "settings": {"command": ["echo", "over tls"], "frames": "1-2"}}
                job_file.write_text(json.dumps(body))
                client = ("--server", server_url, "--token-file", str(server_dir / "admin.token"))
                submitted = subprocess.run(
                    tablao_command("submit", str(job_file), *client, "--ca-bundle", str(ca_file)),
                    cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                assert submitted.returncode == 0, submitted.stderr
                job_id = api.get("/jobs").json()["items"][0]["id"]
                wait_for(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "completed", timeout=90,
                         what="the job to complete over TLS")  # fmt: skip

                # a client that does not trust the farm's CA gets one line, no traceback, no data
                refused = subprocess.run(tablao_command("jobs", *client), cwd=ROOT, env=child_env(),
                                         capture_output=True, text=True, timeout=60)  # fmt: skip
                assert refused.returncode == 1
                assert "certificate" in refused.stderr.lower() and "Traceback" not in refused.stderr
        api.close()


@pytest.mark.parametrize("service", ["server", "manager"])
def test_plain_http_on_the_network_is_refused_unless_forced(tmp_path: Path, service: str) -> None:
    args = ["--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path)]
    if service == "manager":
        (tmp_path / "t").write_text("token")
        args += ["--server", "http://127.0.0.1:1", "--token-file", str(tmp_path / "t")]
    done = subprocess.run(tablao_command(service, *args), cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "without TLS" in done.stderr and "--tls-cert" in done.stderr and "--insecure-http" in done.stderr
