"""Open Job Description on a real local farm: PATH values written with another platform's paths are mapped
through the farm's path variables, and a step's hostRequirements decide which worker may run its tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import FarmClient, local_farm

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[FarmClient]:
    variables = tmp_path_factory.mktemp("vars") / "variables.json"
    # the studio's Windows machines see the share as W:\proj; this (Linux) worker sees it here
    variables.write_text(json.dumps({"proj": {"windows": "W:\\proj", "linux": str(shared)}}))
    with local_farm(
        tmp_path_factory.mktemp("farm"),
        workers=1,
        manager_args=("--variables", str(variables)),
        worker_args=("--host-attribute", "lic=nuke", "--host-amount", "amount.worker.gpu=1"),
    ) as f:
        yield f


def step(name: str, requirements: dict[str, Any], script: str) -> dict[str, Any]:
    return {"name": name, "hostRequirements": requirements,
            "script": {"actions": {"onRun": {"command": "sh", "args": ["-c", script]}}}}  # fmt: skip


def test_mapped_paths_and_host_requirements(farm: FarmClient, shared: Path) -> None:
    fits = {
        "attributes": [{"name": "attr.worker.os.family", "anyOf": ["linux", "macos"]},
                       {"name": "attr.custom.lic", "anyOf": ["nuke"]}],
        "amounts": [{"name": "amount.worker.vcpu", "min": 1}, {"name": "amount.worker.gpu", "min": 1}],
    }  # fmt: skip
    template = {
        "specificationVersion": "jobtemplate-2023-09",
        "name": "hosts",
        "parameterDefinitions": [{"name": "Out", "type": "PATH"}],
        "steps": [
            step("Fits", fits, 'echo "written at {{Param.Out}}" > "{{Param.Out}}"'),
            step("Huge", {"amounts": [{"name": "amount.worker.vcpu", "min": 100000}]}, "echo never"),
        ],
    }
    # written as a Windows artist would: the worker maps W:\proj to its own folder for the share
    body = {"name": "hosts", "type": "openjd",
            "settings": {"template": template, "parameters": {"Out": "W:\\proj\\mapped.txt"}}}  # fmt: skip
    # the Server knows what the worker offers (its Manager reports it)
    workers = farm.wait_for(lambda: [w for w in farm.server.get("/workers").json() if w["capabilities"]], 30)
    caps = workers[0]["capabilities"]
    assert caps["attributes"]["attr.custom.lic"] == ["nuke"] and caps["amounts"]["amount.worker.gpu"] == 1
    assert caps["attributes"]["attr.worker.os.family"] == ["linux"] and caps["amounts"]["amount.worker.vcpu"] >= 1
    job = farm.submit(body)
    job_id = job["id"]
    # at once, farm-wide: the step no worker meets is named in the job's activity and log
    assert job["activity"].startswith("step 'Huge': no worker on the farm meets its host requirements"), job
    assert "amount.worker.vcpu ≥ 100000" in job["activity"]
    log = farm.server.get(f"/jobs/{job_id}/log").json()
    assert any("step 'Huge': no worker" in e["message"] for e in log), log
    assert not any("step 'Fits'" in e["message"] for e in log)

    def by_name() -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in farm.job(job_id)["tasks"]}

    farm.wait_for(lambda: by_name()["Fits"]["status"] == "completed", 60, lambda: str(by_name()))
    out = shared / "mapped.txt"
    assert out.read_text().strip() == f"written at {out}"
    log = farm.task_log(by_name()["Fits"]["id"])
    assert f"path mapping: W:\\proj (windows) -> {shared}" in log, log

    # no worker meets the other step: it says so rather than waiting silently, and is never run
    farm.wait_for(lambda: "host requirements" in by_name()["Huge"]["activity"], 30, lambda: str(by_name()))
    huge = by_name()["Huge"]
    assert "amount.worker.vcpu: " in huge["activity"] and "at least 100000 wanted" in huge["activity"], huge
    assert huge["status"] in ("queued", "assigned")
    assert farm.job(job_id)["status"] not in ("completed", "failed")
    r = farm.server.post(f"/jobs/{job_id}/status", json={"action": "cancel", "reason": "test done"})
    assert r.status_code == 200, r.text
