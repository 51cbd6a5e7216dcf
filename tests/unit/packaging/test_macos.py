"""macOS: Tablao.app's Info.plist and the tray helper app (LSUIElement) inside it, checked with plistlib."""

from __future__ import annotations

import plistlib
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.packaging import load_packaging
from tests.support.services import ROOT


@pytest.fixture(scope="module")
def macos() -> ModuleType:
    return load_packaging("macos")


def test_app_info_plist(macos: ModuleType) -> None:
    info = plistlib.loads(plistlib.dumps(macos.app_info("1.2.3")))
    assert info["CFBundleIdentifier"] == "org.tablao.Tablao"
    assert info["CFBundleShortVersionString"] == info["CFBundleVersion"] == "1.2.3"
    assert info["CFBundleExecutable"] == "tablao-desktop"
    assert info["CFBundleIconFile"] == "tablao.icns"
    assert info["CFBundlePackageType"] == "APPL"
    assert "LSUIElement" not in info, "the desktop app has a Dock icon"
    assert [t["CFBundleURLSchemes"] for t in info["CFBundleURLTypes"]] == [["tablao"]]  # tablao://job/ID links


@pytest.mark.timeout(30)
def test_tray_helper_is_an_agent_app_that_runs_the_bundles_tray(macos: ModuleType, tmp_path: Path) -> None:
    app = tmp_path / "Tablao.app"
    (app / "Contents" / "MacOS").mkdir(parents=True)
    (app / "Contents" / "Resources").mkdir()
    (app / "Contents" / "Resources" / "tablao.icns").write_bytes((ROOT / "resources/icons/tablao.icns").read_bytes())
    real = app / "Contents" / "MacOS" / "tablao-tray"
    real.write_text('#!/bin/sh\necho "the real tray" "$@"\n')
    real.chmod(0o755)

    helper: Path = macos.add_tray_helper(app, "1.2.3")
    assert helper == app / "Contents" / "Library" / "LoginItems" / "Tablao Tray.app"
    with (helper / "Contents" / "Info.plist").open("rb") as f:
        info = plistlib.load(f)
    assert info["LSUIElement"] is True
    assert info["CFBundleIdentifier"] == "org.tablao.Tablao.tray"
    assert info["CFBundleExecutable"] == "tablao-tray"
    assert (helper / "Contents" / "Resources" / "tablao.icns").is_file()
    out = subprocess.run(
        [helper / "Contents" / "MacOS" / "tablao-tray", "--manager", "http://m"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.stdout == "the real tray --manager http://m\n"
