"""`tablao --version` prints the installed version and exits at once, without Qt."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


@pytest.mark.timeout(60)
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag(flag: str) -> None:
    code = "import sys, app.cli; rc = app.cli.main([sys.argv[1]]); assert 'PySide6' not in sys.modules; sys.exit(rc)"
    out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True, timeout=50)
    assert out.stdout == f"tablao {version('tablao')}\n"
