"""Builds the PyInstaller bundle once per content: a cache keyed by a hash of everything the bundle packs.

`python packaging/build_bundle.py` prints the path of a built one-folder bundle (the folder holding `tablao`,
`tablao-desktop` and `tablao-tray`). The key hashes the sources (app/, services/, resources/), the packaging
files, pyproject.toml and uv.lock, with the Python and PyInstaller versions and the platform; a bundle for that key
is built only when the cache (~/.cache/tablao-bundle, or TABLAO_BUNDLE_CACHE) does not hold it yet, and only the
newest few are kept. Tests use it, so `make test` rebuilds the bundle only when something it packs changed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKED_DIRS = ("app", "services", "resources", "packaging")
PACKED_FILES = ("pyproject.toml", "uv.lock")
KEEP = 2  # cached bundles kept, newest first


def cache_root() -> Path:
    configured = os.environ.get("TABLAO_BUNDLE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "tablao-bundle"


def source_key(root: Path = ROOT) -> str:
    """A hash of every file the bundle is made from, and of the tools that make it."""
    import PyInstaller

    digest = hashlib.sha256()
    digest.update(f"{sys.version}|{platform.platform()}|{PyInstaller.__version__}".encode())
    files = [root / name for name in PACKED_FILES]
    for folder in PACKED_DIRS:
        files += [p for p in (root / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def build(root: Path = ROOT, cache: Path | None = None, quiet: bool = True) -> Path:
    """The bundle folder for the current sources: from the cache, or built into it now."""
    cache = cache or cache_root()
    key = source_key(root)
    done = cache / key / "tablao"
    if (done / "tablao").exists():
        os.utime(cache / key)  # most recently used: kept longest
        return done
    staging = cache / f"{key}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(staging),
        "--workpath",
        str(cache / "work"),  # PyInstaller's own build cache: a rebuild after a small change is quicker
        str(root / "packaging" / "tablao.spec"),
    ]
    result = subprocess.run(command, cwd=root / "packaging", capture_output=quiet, text=True, check=False)
    if result.returncode != 0 or not (staging / "tablao" / "tablao").exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"build_bundle: PyInstaller failed ({result.returncode}):\n{(result.stderr or '')[-4000:]}")
    shutil.rmtree(cache / key, ignore_errors=True)
    staging.rename(cache / key)
    print(f"build_bundle: built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    prune(cache)
    return done


def prune(cache: Path, keep: int = KEEP) -> None:
    """Remove all but the `keep` most recently used bundles."""
    bundles = sorted(
        (p for p in cache.iterdir() if p.is_dir() and len(p.name) == 20), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in bundles[keep:]:
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    print(build(quiet="-v" not in sys.argv))
