"""Make the sample scenes from plain Python by running Blender (for tests and `tablao demo`): the animated sample
scene (`sample_scene.py`) and a small simulation scene to bake."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("sample_scene.py")

# a cloth plane called "Flag" and a particle emitter called "Emitter", both with their point caches
SIMULATION_SCENE = """
import bpy, sys
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.mesh.primitive_plane_add(size=2, location=(0, 0, 1))
bpy.context.active_object.name = "Flag"
bpy.ops.object.modifier_add(type="CLOTH")
bpy.ops.mesh.primitive_ico_sphere_add(radius=0.5, location=(0, 0, 3))
bpy.context.active_object.name = "Emitter"
bpy.ops.object.particle_system_add()
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[sys.argv.index("--") + 1])
"""


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
    return _run_blender(argv, out, timeout)


def make_simulation_scene(path: str | Path, blender: str = "blender", timeout: float = 120.0) -> Path:
    """Write a .blend with a cloth plane ("Flag") and a particle emitter ("Emitter") to bake."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", SIMULATION_SCENE,
            "--", str(out)]  # fmt: skip
    return _run_blender(argv, out, timeout)


def _run_blender(argv: list[str], out: Path, timeout: float) -> Path:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SceneError(f"Blender not found: {argv[0]!r}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SceneError(f"Blender took longer than {timeout:.0f} s to make the scene") from exc
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise SceneError(f"Blender failed to make {out} (exit {proc.returncode}):\n{tail}")
    return out
