"""The PyInstaller bundle (`make package` → dist/tablao/tablao): the Server serves its API with the job types
found through entry points, and the all-in-one farm starts its children from the bundle itself.

Skipped until the bundle was built: `make package && .venv/bin/pytest -m frozen tests/e2e/test_bundle.py`.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.farm import free_port_pair
from tests.support.services import ROOT

BUNDLE = ROOT / "dist" / "tablao" / "tablao"

pytestmark = [
    pytest.mark.frozen,
    pytest.mark.skipif(not BUNDLE.exists(), reason="no bundle at dist/tablao/tablao: run `make package` first"),
]


@pytest.mark.timeout(120)
def test_bundled_all_in_one_runs_a_server_a_manager_and_a_worker(tmp_path: Path) -> None:
    port = free_port_pair()
    argv = [str(BUNDLE), "all-in-one", "--headless", "--data-dir", str(tmp_path), "--port", str(port)]
    log = (tmp_path / "farm.log").open("w")
    farm = subprocess.Popen([*argv, "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        token_file = tmp_path / "server" / "admin.token"
        deadline = time.monotonic() + 60
        workers: list[dict[str, object]] = []
        while time.monotonic() < deadline and not workers:
            assert farm.poll() is None, (tmp_path / "farm.log").read_text()
            time.sleep(1)
            if token_file.exists():
                headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
                with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers) as c:
                    try:
                        workers = [w for w in c.get("/workers").json() if w["status"] == "awake"]
                        types = {t["name"] for t in c.get("/job-types").json()}
                    except httpx.HTTPError:
                        continue
        assert workers, (tmp_path / "farm.log").read_text()
        assert {"blender-render", "blender-still", "ffmpeg-encode", "exec"} <= types
        farm.send_signal(signal.SIGINT)
        assert farm.wait(30) == 0
    finally:
        if farm.poll() is None:
            farm.kill()
            farm.wait()
        log.close()
