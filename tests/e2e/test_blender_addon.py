"""The Blender add-on in real Blender: installed from its zip, it submits the sample scene to a real farm."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resources.addon_zip import build_zip
from resources.scenes import make_sample_scene
from tests.support.farm import FarmClient, local_farm, need_programs
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
DRIVER = Path(__file__).parents[1] / "support" / "addon_in_blender.py"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The farm's shared folders: {project} holds the .blend, {render_root} receives frames."""
    need_programs("blender")
    root = tmp_path_factory.mktemp("shared")
    (root / "project").mkdir()
    (root / "render").mkdir()
    make_sample_scene(root / "project" / "sample.blend", frames=4, size=(32, 18), samples=1)
    return root


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Iterator[FarmClient]:
    variables = tmp_path_factory.mktemp("vars") / "variables.json"
    variables.write_text(json.dumps({
        "project": {"all": str(shared / "project")},
        "render_root": {"all": str(shared / "render")},
    }))  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TABLAO_VARIABLES", str(variables))  # the Server publishes them; the Manager resolves them
        with local_farm(tmp_path_factory.mktemp("farm"), workers=1, manager_args=("--variables", str(variables))) as f:
            yield f


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(tmp_path_factory.mktemp("zip") / "tablao_blender_addon.zip")


def run_addon(blend: Path, zip_path: Path, tmp: Path, *args: str) -> dict[str, Any]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "BLENDER_USER_SCRIPTS": str(tmp / "scripts"),
        "BLENDER_USER_CONFIG": str(tmp / "config"),
    }
    argv = ["blender", "-b", str(blend), "--factory-startup", "--python-exit-code", "3",
            "--python", str(DRIVER), "--", str(zip_path), *args]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env, check=False)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("TABLAO_RESULT ")]
    assert proc.returncode == 0 and lines, out[-3000:]
    return dict(json.loads(lines[-1].removeprefix("TABLAO_RESULT ")))


def token_for(farm: FarmClient, name: str, role: str) -> str:
    r = farm.server.post("/users", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return str(farm.server.post("/tokens", json={"user": name, "name": "blender"}).json()["token"])


def test_submit_from_blender_renders_on_the_farm(
    farm: FarmClient, shared: Path, addon_zip: Path, tmp_path: Path
) -> None:
    token = token_for(farm, "ana", "artist")
    blend = shared / "project" / "sample.blend"
    check = run_addon(
        blend, addon_zip, tmp_path, "--server", farm.farm.server_url, "--token", token, "--action", "check"
    )
    assert check["connection"] == "Connected as ana (artist)", check
    url = farm.farm.server_url
    result = run_addon(blend, addon_zip, tmp_path, "--server", url, "--token", token, "--priority", "61")
    assert result["raised"] == "" and result["job_id"] > 0, result
    again = run_addon(blend, addon_zip, tmp_path, "--server", url, "--token", token, "--action", "check")
    assert again["saved_priority"] == 61, again  # the submission saved the .blend, panel settings and all
    assert f"tablao job {result['job_id']}" in result["status"]
    job = farm.job(result["job_id"])
    assert job["submitter"] == "ana" and job["type"] == "blender-render" and job["priority"] == 61
    # the add-on rewrote the paths with the farm's variables so every worker resolves them for itself
    assert job["settings"]["blendfile"] == "{project}/sample.blend"
    assert job["settings"]["output_path"] == "{render_root}/addon/frame_####"
    assert job["settings"]["frames"] == "1-4" and job["settings"]["chunk_size"] == 2
    done = farm.wait_job(job["id"], {"completed", "failed", "canceled"})
    assert done["status"] == "completed", done["activity"]
    frames = sorted(p.name for p in (shared / "render" / "addon").glob("frame_*.png"))
    assert frames == [f"frame_{i:04d}.png" for i in range(1, 5)]


def test_wrong_token_and_field_errors_are_clear(
    farm: FarmClient, shared: Path, addon_zip: Path, tmp_path: Path
) -> None:
    blend = shared / "project" / "sample.blend"
    url = farm.farm.server_url
    bad = run_addon(blend, addon_zip, tmp_path, "--server", url, "--token", "tbl_wrong")
    assert "refused the API token" in bad["status"] and bad["job_id"] == 0, bad
    assert "refused the API token" in bad["raised"]
    token = token_for(farm, "bo", "artist")
    # an output outside every shared folder is caught before submitting, next to the Output field
    outside = run_addon(
        blend, addon_zip, tmp_path, "--server", url, "--token", token, "--output-path", "/elsewhere/f_##"
    )
    assert "not in a folder the farm shares" in outside["errors"]["output_path"], outside
    # a Server field error lands on the field it names: more tags than a job may carry
    tags = ",".join(f"t{i}" for i in range(21))
    many = run_addon(blend, addon_zip, tmp_path, "--server", url, "--token", token, "--tags", tags)
    assert many["job_id"] == 0 and "20" in many["errors"]["tags"], many
    assert many["status"].startswith("The Server refused:"), many


def test_unreachable_server_is_a_message_not_a_traceback(shared: Path, addon_zip: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_addon(shared / "project" / "sample.blend", addon_zip, tmp_path, "--server", url, "--token", "tbl_x")
    assert result["status"].startswith(f"Cannot reach the Tablao Server at {url}"), result
    result = run_addon(shared / "project" / "sample.blend", addon_zip, tmp_path, "--server", "farm:8470",
                       "--token", "tbl_x", "--action", "check")  # fmt: skip
    assert "is not an http:// or https:// address" in result["raised"], result
