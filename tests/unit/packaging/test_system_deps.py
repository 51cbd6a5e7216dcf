"""scripts/system-deps.sh as a Mac sees it (a `uname` that says Darwin, a recording `brew`, nothing else on PATH):
`make test` on a fresh Mac asked for Xvfb, openbox, trayer and xdotool, which only the X11 tray test uses (it
skips without them), and stopped; with Homebrew it now installs Blender and ffmpeg itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "system-deps.sh"


def _bare_path(tmp_path: Path, *, brew: bool) -> tuple[Path, Path]:
    """A PATH holding only what the script needs beside the tools it checks for, and where `brew` writes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "grep", "id"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "uname").write_text('#!/bin/sh\n[ "$1" = -m ] && echo arm64 || echo Darwin\n')
    calls = tmp_path / "brew-calls"
    if brew:
        (bin_dir / "brew").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    for f in bin_dir.iterdir():
        if not f.is_symlink():
            f.chmod(0o755)
    return bin_dir, calls


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bash = str(bin_dir / "bash")
    return subprocess.run(
        [bash, str(SCRIPT), *args], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_a_mac_with_homebrew_gets_blender_and_ffmpeg_and_no_x11_tools(tmp_path: Path) -> None:
    bin_dir, calls = _bare_path(tmp_path, brew=True)
    r = _run(bin_dir)
    assert r.returncode == 0, r.stderr
    installed = calls.read_text().splitlines()
    assert "install --cask blender" in installed and "install ffmpeg" in installed
    assert not [c for c in installed if any(x in c for x in ("xvfb", "openbox", "trayer", "xdotool", "keyring"))]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_a_mac_without_homebrew_is_told_what_to_install(tmp_path: Path) -> None:
    bin_dir, _ = _bare_path(tmp_path, brew=False)
    r = _run(bin_dir)
    assert r.returncode == 1
    assert r.stderr.startswith("Missing: blender ffmpeg. On macOS: install Homebrew")
    assert _run(bin_dir, "--gui-only").returncode == 0  # `make run` goes on: the farm runs without them
