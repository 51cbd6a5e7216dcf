"""The GitHub workflows pass actionlint's checks (jactionlint, a maintained fork with wheels on PyPI)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    found = shutil.which("jactionlint", path=str(Path(sys.executable).parent)) or shutil.which("jactionlint")
    if found is None:
        pytest.fail("jactionlint is missing: it is a dev dependency (make venv installs it)")
    return found


def test_there_is_an_installers_workflow() -> None:
    assert ROOT / ".github" / "workflows" / "installers.yml" in WORKFLOWS


@pytest.mark.timeout(60)
def test_workflows_pass_actionlint() -> None:
    out = subprocess.run([_actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.timeout(60)
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """So a green check means something: a step with an unknown key and a bad expression is refused."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - rn: echo ${{ matrix.nope }}\n"
    )
    out = subprocess.run([_actionlint(), str(bad)], capture_output=True, text=True, timeout=50)
    assert out.returncode != 0


@pytest.mark.timeout(60)
def test_shipped_shell_scripts_pass_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/system-deps.sh installs it on Debian)")
    scripts = [ROOT / "packaging" / "linux" / "install.sh", ROOT / "scripts" / "system-deps.sh"]
    out = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stdout
