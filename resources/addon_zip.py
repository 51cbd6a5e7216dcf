"""`tablao blender-addon --output FILE.zip`: pack the Blender add-on into the zip Blender installs."""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ADDON_DIR = Path(__file__).with_name("blender_addon") / "tablao_submit"
MODULE = ADDON_DIR.name


def build_zip(output: Path) -> Path:
    """Write the add-on's package as `tablao_submit/*.py` into output (replaced if it exists)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for source in sorted(ADDON_DIR.glob("*.py")):
            zf.write(source, f"{MODULE}/{source.name}")
    tmp.replace(output)  # never leave half a zip where Blender might pick it up
    return output


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tablao blender-addon",
        description="Make the installable zip of Tablao's Blender add-on (Edit > Preferences > Add-ons > Install).",
    )
    parser.add_argument("--output", "-o", type=Path, default=Path("tablao_blender_addon.zip"), help="the zip to write")
    args = parser.parse_args(argv)
    try:
        out = build_zip(args.output)
    except OSError as exc:
        print(f"tablao blender-addon: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"Wrote {out}: install it in Blender (Edit > Preferences > Add-ons > Install...) and tick 'Render: Tablao'.")
    return 0
