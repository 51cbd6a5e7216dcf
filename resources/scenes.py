"""Make the sample scene from plain Python by running `sample_scene.py` in Blender (for tests and `tablao demo`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("sample_scene.py")


class SceneError(RuntimeError):
    """Blender could not make the scene; the message holds its last lines of output."""


def make_sample_scene(
    path: str | Path,
    blender: str = "blender",
    frames: int = 8,
    size: tuple[int, int] = (64, 36),
    samples: int = 2,
    timeout: float = 120.0,
) -> Path:
    """Write a small animated .blend to path (its folder is created) and return the path."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(SCRIPT), "--",
        str(out), "--frames", str(frames), "--size", str(size[0]), str(size[1]), "--samples", str(samples),
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SceneError(f"Blender not found: {blender!r}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SceneError(f"Blender took longer than {timeout:.0f} s to make the scene") from exc
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise SceneError(f"Blender failed to make {out} (exit {proc.returncode}):\n{tail}")
    return out
