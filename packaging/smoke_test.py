"""Smoke test of an installed Tablao: its all-in-one farm, headless, runs an `exec` job to completion.

`python packaging/smoke_test.py PATH/TO/tablao[.exe]` (the CI workflow runs it on each platform after installing);
exit 0 when the job completed. The job runs `tablao --version` of the same installation once per frame, so it
needs nothing else on the machine. Uses only the standard library, so any Python runs it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port < 65535:
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no two free ports in a row")


def api(base: str, token: str, path: str) -> object:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def run(tablao: Path, work: Path, timeout: float = 240) -> None:
    """Start the farm, submit the job with the installed CLI, wait for it to complete, stop the farm."""
    port = free_port_pair()
    data = work / "farm"
    log = (work / "farm.log").open("wb")
    flags = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {}
    argv = [str(tablao), "all-in-one", "--headless", "--data-dir", str(data), "--port", str(port), "--workers", "1"]
    farm = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **flags)  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + timeout
        token_file = data / "server" / "admin.token"
        while not (token_file.exists() and token_file.read_text().strip()):
            if farm.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"smoke_test: the farm did not start:\n{(work / 'farm.log').read_text()}")
            time.sleep(0.5)
        token = token_file.read_text().strip()
        job = {"name": "smoke", "type": "exec", "settings": {"command": [str(tablao), "--version"], "frames": "1-2"}}
        (work / "job.json").write_text(json.dumps(job))
        submit = [str(tablao), "submit", str(work / "job.json"), "--server", f"http://127.0.0.1:{port}"]
        out = subprocess.run([*submit, "--token-file", str(token_file)], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"smoke_test: submit failed: {out.stderr}")
        job_id = int(out.stdout.split()[2])
        status = ""
        while status not in ("completed", "failed", "canceled"):
            if farm.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"smoke_test: job {job_id} is {status!r}:\n{(work / 'farm.log').read_text()}")
            time.sleep(1)
            job_state = api(f"http://127.0.0.1:{port}/api/v1", token, f"/jobs/{job_id}")
            status = str(job_state["status"]) if isinstance(job_state, dict) else ""
        if status != "completed":
            raise SystemExit(f"smoke_test: job {job_id} {status}:\n{(work / 'farm.log').read_text()}")
        print(f"smoke_test: job {job_id} completed on the farm of {tablao}")
    finally:
        if farm.poll() is None:
            farm.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT)  # type: ignore[attr-defined,unused-ignore]
            try:
                farm.wait(60)
            except subprocess.TimeoutExpired:
                farm.kill()
                farm.wait()
        log.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: smoke_test.py PATH/TO/tablao")
    with tempfile.TemporaryDirectory(prefix="tablao-smoke-") as folder:
        run(Path(sys.argv[1]), Path(folder))
