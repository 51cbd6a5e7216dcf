"""The file-management commands: `move-out-of-way`, `copy-file` and `remove-path`."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path

from services.protocol.commands import CopyFileParams, PathParams, RemovePathParams
from services.worker.runners.base import CommandFailed, RunContext

# The work runs in a thread: on a network share a stat or a copy can take seconds, and the agent's
# heartbeats and cancellation checks must keep going meanwhile.


async def run_move_out_of_way(params: PathParams, ctx: RunContext) -> None:
    path = Path(params["path"])
    ctx.log(await asyncio.to_thread(_move_out_of_way, path))


def _move_out_of_way(path: Path) -> str:
    if not path.exists() and not path.is_symlink():
        return f"move-out-of-way: nothing at {path}"
    stamp = f"{datetime.fromtimestamp(path.lstat().st_mtime):%Y-%m-%d_%H%M%S}"
    target = path.with_name(f"{path.name}-{stamp}")
    n = 1
    while target.exists():
        # two moves in the same second: keep both rather than overwrite
        target = path.with_name(f"{path.name}-{stamp}-{n}")
        n += 1
    try:
        path.rename(target)
    except OSError as exc:
        raise CommandFailed(f"move-out-of-way: cannot rename {path} to {target}: {exc.strerror}") from exc
    return f"moved {path} out of the way to {target}"


async def run_copy_file(params: CopyFileParams, ctx: RunContext) -> None:
    src, dest = Path(params["src"]), Path(params["dest"])
    ctx.log(await asyncio.to_thread(_copy_file, src, dest))


def _copy_file(src: Path, dest: Path) -> str:
    if not src.is_file():
        raise CommandFailed(f"copy-file: source {src} is not a file")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    except OSError as exc:
        raise CommandFailed(f"copy-file: cannot copy {src} to {dest}: {exc.strerror or exc}") from exc
    return f"copied {src} to {dest}"


async def run_remove_path(params: RemovePathParams, ctx: RunContext) -> None:
    ctx.log(await asyncio.to_thread(_remove_path, Path(params["path"]), params.get("recursive", False)))


def _remove_path(path: Path, recursive: bool) -> str:
    if not path.exists() and not path.is_symlink():
        return f"remove-path: nothing at {path}"
    try:
        if path.is_dir() and not path.is_symlink():
            if not recursive:
                raise CommandFailed(f"remove-path: {path} is a folder; set 'recursive' to remove it")
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise CommandFailed(f"remove-path: cannot remove {path}: {exc.strerror or exc}") from exc
    return f"removed {path}"
