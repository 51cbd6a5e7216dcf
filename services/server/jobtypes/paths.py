"""Path text for other machines: split, join and predict Blender's output file names, by string rules only.

Job paths are written for the Workers (maybe Windows, maybe holding `{render_root}`), so `pathlib` on the
Server would be wrong; these helpers treat both `/` and `\\` as separators and keep the one the path uses.
"""

from __future__ import annotations

import re

from services.server.jobtypes.fields import FORMAT_EXTENSIONS, ImageFormat

# Extensions Blender counts as image files: one of these on an output name is replaced, not appended to.
_IMAGE_EXTENSIONS = frozenset(
    {
        *(".bmp", ".cin", ".dds", ".dpx", ".exr", ".hdr", ".j2c", ".jp2", ".jpeg", ".jpg", ".pdd"),
        *(".png", ".psb", ".psd", ".rgb", ".rgba", ".sgi", ".tga", ".tif", ".tiff", ".tx", ".webp"),
    }
)
_HASHES = re.compile(r"#+")


def split(path: str) -> tuple[str, str]:
    """(folder with its trailing separator, file name)."""
    cut = max(path.rfind("/"), path.rfind("\\")) + 1
    return path[:cut], path[cut:]


def separator(path: str) -> str:
    return "\\" if "\\" in path and "/" not in path else "/"


def sibling(path: str, name: str) -> str:
    """`name` in the folder of `path`."""
    folder, _ = split(path)
    return folder + name


def stem_and_extension(path: str) -> tuple[str, str]:
    """`/r/still.png` → (`/r/still`, `.png`); a name without a dot has no extension."""
    folder, name = split(path)
    dot = name.rfind(".")
    if dot <= 0:
        return path, ""
    return folder + name[:dot], name[dot:]


def hashes_in_name(pattern: str) -> bool:
    """Whether Blender finds `#` padding in the file name (it ignores `#` in folder names)."""
    return "#" in split(pattern)[1]


def blender_output(pattern: str, fmt: ImageFormat, frame_text: str) -> str:
    """The file Blender writes for `-o pattern -F fmt`, with `frame_text` in place of the frame number.

    Blender replaces the last run of `#` in the file name by the zero-padded frame (appending `####` when
    there is none), then ensures the format's extension: kept when already right, replacing another image
    extension, appended otherwise. `frame_text` may be a number, `*` (a glob) or `%04d` (ffmpeg's printf).
    """
    folder, name = split(pattern)
    if "#" not in name:
        name += "####"
    start, end = [m.span() for m in _HASHES.finditer(name)][-1]
    name = name[:start] + frame_text + name[end:]
    return folder + _ensure_extension(name, fmt)


def padded(pattern: str, frame: int) -> str:
    """The frame number as Blender pads it for `pattern` (width = length of the last `#` run)."""
    _, name = split(pattern)
    runs = _HASHES.findall(name)
    width = len(runs[-1]) if runs else 4
    return f"{frame:0{width}d}"


def printf_token(pattern: str) -> str:
    """ffmpeg's image2 token for the frame number of `pattern`, e.g. `%04d`."""
    _, name = split(pattern)
    runs = _HASHES.findall(name)
    return f"%0{len(runs[-1]) if runs else 4}d"


def _ensure_extension(name: str, fmt: ImageFormat) -> str:
    valid = FORMAT_EXTENSIONS[fmt]
    lower = name.lower()
    if lower.endswith(valid):
        return name
    dot = name.rfind(".")
    if dot > 0 and lower[dot:] in _IMAGE_EXTENSIONS:
        return name[:dot] + valid[0]
    return name + valid[0]
