"""The worker's second check of output paths: every file a command writes must resolve under an output root.

The Server already refused paths outside the farm's roots as written; here the path is checked as this
machine sees it, after path variables, `..` and symbolic links, just before the command runs, so a link
planted inside a root that points elsewhere is caught too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from services.worker.variables import substitute

# The parameters each command writes to (or deletes); commands not listed write nothing by name. `exec`
# runs arbitrary programs, which only Landlock can hold to the roots (see task_policy).
WRITTEN_PARAMETERS: dict[str, tuple[str, ...]] = {
    "blender-render": ("output",),
    "ffmpeg": ("output",),
    "merge-images": ("output",),
    "merge-samples": ("output",),
    "copy-file": ("dest",),
    "move-out-of-way": ("path",),
    "remove-path": ("path",),
}


def resolve_roots(roots: Iterable[str], variables: Mapping[str, str]) -> list[Path]:
    """The configured roots with path variables filled in, as real absolute paths; unresolved ones dropped."""
    out: list[Path] = []
    for root in roots:
        text = substitute(root, variables)
        if "{" in text or not text.strip():
            continue  # a variable this worker has no value for names no place here
        out.append(Path(text).expanduser().resolve())
    return out


def written_paths(command: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (parameter, path) pairs this command writes to; most commands (`exec`) write none."""
    return [
        (key, value)
        for key in WRITTEN_PARAMETERS.get(command, ())
        if isinstance(value := params.get(key), str) and value
    ]


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _deepest(path: Path, places: Iterable[Path]) -> Path | None:
    return max((p for p in places if _under(path, [p])), key=lambda p: len(p.parts), default=None)


def problem(command: str, params: Mapping[str, Any], roots: list[Path], protected: Iterable[Path] = ()) -> str | None:
    """A message naming the parameter when a written path resolves outside every root, else None.

    A path inside a protected folder (a service's data) is refused too, unless a root lies within that
    folder and holds the path (the all-in-one farm's render root inside the Manager's folder).
    """
    written = written_paths(command, params)
    guarded = [Path(p).resolve() for p in protected] if written else []
    for key, value in written:
        real = Path(value).expanduser().resolve()
        root = _deepest(real, roots)
        guard = _deepest(real, guarded)
        if root is not None and guard is not None and len(guard.parts) > len(root.parts):
            return f"{command}: parameter '{key}' ({value}) resolves to {real}, inside the protected {guard}"
        if root is None:
            where = ", ".join(str(r) for r in roots) or "(none configured)"
            return (
                f"{command}: parameter '{key}' ({value}) resolves to {real}, outside the farm's output roots: {where}"
            )
    return None


# commands whose written path is a new file, whose folder may not exist yet
_MAKE_FOLDER = frozenset({"blender-render", "ffmpeg", "merge-images", "merge-samples", "copy-file"})


def makes_folders(command: str) -> bool:
    """Whether `folders_to_make` may return anything for this command (without touching the disk)."""
    return command in _MAKE_FOLDER


def folders_to_make(command: str, params: Mapping[str, Any], protected: Iterable[Path]) -> list[Path]:
    """The missing folders of a command's new files, outside protected folders.

    The worker makes them before a confined task starts: Landlock grants what exists when the task starts,
    so a folder the program would create beside a protected one (e.g. next to the worker's data directory)
    would otherwise be out of its reach.
    """
    if command not in _MAKE_FOLDER:
        return []
    guarded = [Path(p).resolve() for p in protected]
    out = []
    for key in WRITTEN_PARAMETERS.get(command, ()):
        value = params.get(key)
        if isinstance(value, str) and value:
            folder = Path(value).expanduser().resolve().parent
            if not folder.exists() and _deepest(folder, guarded) is None:
                out.append(folder)
    return out
