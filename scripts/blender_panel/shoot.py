"""Make docs/screenshots/blender-panel.png: the add-on's panel in real Blender (needs blender and xvfb-run).

.venv/bin/python scripts/blender_panel/shoot.py [OUT.png]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from resources.addon_zip import build_zip  # noqa: E402

PREPARE = """
import bpy
for screen in bpy.data.screens:
    for area in screen.areas:
        if area.type == "PROPERTIES":
            area.spaces[0].context = "OUTPUT"
bpy.ops.wm.save_as_mainfile(filepath=%r)
"""


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots" / "blender-panel.png")
    with tempfile.TemporaryDirectory(prefix="tablao-shot-") as tmp:
        t = Path(tmp)
        env = {**os.environ, "HOME": tmp, "BLENDER_USER_SCRIPTS": str(t / "s"), "BLENDER_USER_CONFIG": str(t / "c")}
        addon = build_zip(t / "addon.zip")
        ui = t / "ui.blend"
        subprocess.run(["blender", "-b", "--factory-startup", "--python-expr", PREPARE % str(ui)],
                       env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
        raw = t / "raw.png"
        subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1280x1700x24", "blender", "--factory-startup",
             "-p", "0", "0", "640", "1660", str(ui), "--python", str(Path(__file__).with_name("in_blender.py")),
             "--", str(addon), str(raw)],
            env=env, check=True, capture_output=True, timeout=180,
        )  # fmt: skip
        with Image.open(raw) as image:
            # the Tablao panel is the last one on the Output tab: keep from its header down to its last row
            image.crop((0, image.height - 820, image.width, image.height - 400)).save(out, optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
