"""Installs Tablao's Blender add-on into the Blender found on this machine (no Qt: the UI calls it off-thread).

Blender installs it itself: `blender -b --python-expr ...` runs addon_install on the zip, enables the add-on
and saves the user preferences, so it is there the next time the artist opens Blender.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from resources.addon_zip import MODULE, build_zip

TIMEOUT_SECONDS = 120.0
# Printed by the expression when all went well, so a Blender that exits 0 after a Python error is not success.
_DONE = "TABLAO_ADDON_INSTALLED"


@dataclass(frozen=True, slots=True)
class InstallResult:
    ok: bool
    message: str


def find_blender() -> str | None:
    """TABLAO_BLENDER (as the Worker uses it), then PATH."""
    configured = os.environ.get("TABLAO_BLENDER")
    return shutil.which(configured) if configured else shutil.which("blender")


def install_expression(zip_path: Path) -> str:
    return (
        "import bpy; "
        f"bpy.ops.preferences.addon_install(filepath={str(zip_path)!r}, overwrite=True); "
        f"bpy.ops.preferences.addon_enable(module={MODULE!r}); "
        "bpy.ops.wm.save_userpref(); "
        f"print({_DONE!r})"
    )


async def install_addon(blender: str | None = None, limit_seconds: float = TIMEOUT_SECONDS) -> InstallResult:
    blender = blender or find_blender()
    if blender is None:
        return InstallResult(False, "Blender not found: put it on PATH or set TABLAO_BLENDER")
    with tempfile.TemporaryDirectory(prefix="tablao-addon-") as tmp:
        zip_path = build_zip(Path(tmp) / f"{MODULE}.zip")
        argv = [blender, "-b", "--python-exit-code", "1", "--python-expr", install_expression(zip_path)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            return InstallResult(False, f"cannot start Blender ({blender}): {exc.strerror or exc}")
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            seconds = f"{limit_seconds:.0f} s"
            return InstallResult(False, f"Blender ({blender}) took longer than {seconds} to install the add-on")
    text = out.decode("utf-8", errors="replace")
    if proc.returncode != 0 or _DONE not in text:
        tail = " | ".join(line for line in text.strip().splitlines()[-3:])
        return InstallResult(
            False, f"Blender ({blender}) could not install the add-on (exit {proc.returncode}): {tail}"
        )
    return InstallResult(True, f"Installed and enabled the Tablao add-on in {blender}: see Output properties")
