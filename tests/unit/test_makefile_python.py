"""`make run` and `make test` pick the first Python 3.11+ on PATH: on a Mac, `python3` is Xcode's 3.9, and the
virtual environment was made with it before uv refused it. None at all is one line saying what to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="no make")


def _path_with(tmp_path: Path, pythons: dict[str, str]) -> Path:
    """A PATH of make, sh and fake Pythons, each exiting as a real one of its version would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    for name, version in pythons.items():
        major, minor = version.split(".")
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho 'Python {version}'\n[ {minor} -ge 11 ] && [ {major} -ge 3 ]\n")
        script.chmod(0o755)
    for name in ("Makefile", "uv.lock", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    return bin_dir


def _make(tmp_path: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "make"), "-C", str(tmp_path), *args],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_first_python_of_3_11_or_newer_is_used(tmp_path: Path) -> None:
    bin_dir = _path_with(tmp_path, {"python3": "3.9", "python3.12": "3.12"})
    r = _make(tmp_path, bin_dir, "-n", "venv")
    assert r.returncode == 0, r.stderr
    assert "python3.12 -m venv .venv" in r.stdout


def test_without_one_the_newcomer_is_told_what_to_install(tmp_path: Path) -> None:
    bin_dir = _path_with(tmp_path, {"python3": "3.9"})
    r = _make(tmp_path, bin_dir, "run")
    assert r.returncode != 0
    assert r.stderr.startswith("Tablao needs Python 3.11 or newer, and none of python3, python3.11 - 3.14 is")
    assert "make run PYTHON=/path/to/python3.12" in r.stderr
    assert not (tmp_path / ".venv").exists()


def test_python_on_the_command_line_is_taken_as_given(tmp_path: Path) -> None:
    bin_dir = _path_with(tmp_path, {"python3": "3.9", "python3.12": "3.12"})
    r = _make(tmp_path, bin_dir, "-n", "venv", "PYTHON=/opt/py/bin/python3")
    assert "/opt/py/bin/python3 -m venv .venv" in r.stdout
