"""Open Job Description templates on a real local farm, submitted with `tablao submit TEMPLATE -p`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.farm import FarmClient, local_farm
from tests.support.services import ROOT, child_env, tablao_command

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TEMPLATES = ROOT / "tests" / "support" / "openjd"
DONE = {"completed", "failed", "canceled"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[FarmClient]:
    variables = tmp_path_factory.mktemp("vars") / "variables.json"
    variables.write_text(json.dumps({"shared": {"all": str(shared)}}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TABLAO_VARIABLES", str(variables))
        with local_farm(tmp_path_factory.mktemp("farm"), workers=2, manager_args=("--variables", str(variables))) as f:
            yield f


def submit(farm: FarmClient, template: Path, *params: str) -> subprocess.CompletedProcess[str]:
    argv = tablao_command("submit", str(template), "--server", farm.farm.server_url,
                          "--token-file", str(farm.farm.admin_token_file))  # fmt: skip
    for p in params:
        argv += ["-p", p]
    return subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60)


def submitted_id(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[2])  # "submitted job N (...)"


def test_steps_environments_and_embedded_files_run(farm: FarmClient, shared: Path) -> None:
    out = shared / "several"
    job_id = submitted_id(submit(farm, TEMPLATES / "several_steps.yaml", f"OutDir={out}", "Frames=1-3", "Shot=sh020"))
    job = farm.job(job_id)
    assert job["name"] == "openjd demo sh020"
    # the PATH value lies in the shared folder: it was sent with the farm's variable, each worker resolves it
    assert job["settings"]["parameters"]["OutDir"] == "{shared}/several"
    done = farm.wait_job(job_id, DONE)
    assert done["status"] == "completed", done["activity"]
    assert len(done["tasks"]) == 3 * 2 + 1
    for frame in (1, 2, 3):
        for layer in ("fg", "bg"):
            text = (out / f"{layer}_{frame}.txt").read_text()
            # the job environment's variable and the step environment's openjd_env reached the task
            assert text.strip() == f"frame {frame} layer {layer} job-sh020 ready"
    index = (out / "index.txt").read_text().split()
    assert index == sorted(f"{layer}_{f}.txt" for f in (1, 2, 3) for layer in ("fg", "bg"))  # Collect ran last
    render = next(t for t in done["tasks"] if t["name"] == "Render Frame=2 Layer=bg")
    log = farm.task_log(render["id"])
    assert "entering step environment" in log and "rendered 2 bg" in log and "leaving step environment" in log
    assert log.index("entering step environment") < log.index("rendered 2 bg") < log.index("leaving step environment")


def test_failing_action_fails_the_task_with_its_exit_status(farm: FarmClient, shared: Path) -> None:
    job_id = submitted_id(submit(farm, TEMPLATES / "fails_and_cancels.yaml", f"OutDir={shared}", "Mode=fail"))
    done = farm.wait_job(job_id, DONE)
    assert done["status"] == "failed"
    task = done["tasks"][0]
    assert "step 'Work' failed" in task["activity"] and "exit status 3" in task["activity"], task["activity"]
    assert "about to fail on purpose" in farm.task_log(task["id"])


def test_cancel_gives_the_action_its_notify_period(farm: FarmClient, shared: Path) -> None:
    out = shared / "cancel"
    out.mkdir()
    job_id = submitted_id(submit(farm, TEMPLATES / "fails_and_cancels.yaml", f"OutDir={out}", "Mode=slow"))
    farm.wait_for(lambda: "waiting to be canceled" in farm.task_log(farm.job(job_id)["tasks"][0]["id"]), 60)
    r = farm.server.post(f"/jobs/{job_id}/status", json={"action": "cancel", "reason": "test"})
    assert r.status_code == 200, r.text
    done = farm.wait_job(job_id, DONE)
    assert done["status"] == "canceled"
    task_id = done["tasks"][0]["id"]
    # the action was notified (SIGTERM) and had its notify period to clean up (it takes 2 s; the Worker's own
    # grace period for other commands is 0.5 s). Its output after the cancel does not reach the task log: the
    # Manager fences a canceled attempt's updates.
    farm.wait_for(lambda: (out / "cleaned.txt").exists(), 30, lambda: farm.task_log(task_id))


def test_invalid_templates_and_values_are_refused_with_the_reason(farm: FarmClient, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specificationVersion: jobtemplate-2023-09\nname: x\nsteps:\n  - name: A\n")
    r = submit(farm, bad)
    assert r.returncode == 1 and "settings.template" in r.stderr and "script" in r.stderr, r.stderr
    r = submit(farm, TEMPLATES / "fails_and_cancels.yaml", "OutDir=/x", "Mode=sideways")
    assert r.returncode == 1 and "settings.parameters" in r.stderr and "Mode" in r.stderr, r.stderr
    r = submit(farm, TEMPLATES / "fails_and_cancels.yaml", "Mode")
    assert r.returncode == 1 and "Name=Value" in r.stderr
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({
        "specificationVersion": "jobtemplate-2023-09", "name": "huge",
        "steps": [{"name": "A", "parameterSpace": {"taskParameterDefinitions": [
            {"name": "X", "type": "INT", "range": "1-1000000000"}, {"name": "Y", "type": "INT", "range": "1-1000"}]},
            "script": {"actions": {"onRun": {"command": "true"}}}}],
    }))  # fmt: skip
    r = submit(farm, huge)
    assert r.returncode == 1 and "1,000,000,000,000 tasks" in r.stderr, r.stderr
