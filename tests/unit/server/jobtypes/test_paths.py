"""Path text helpers, and Blender's output file names as Blender 3.4.1 was seen to write them."""

from __future__ import annotations

import pytest

from services.server.jobtypes.fields import ImageFormat
from services.server.jobtypes.paths import (
    blender_output,
    hashes_in_name,
    padded,
    printf_token,
    sibling,
    stem_and_extension,
)


@pytest.mark.parametrize(
    ("pattern", "fmt", "frame", "written"),
    [
        # All but the Windows path were checked with `blender -b F.blend -o PATTERN -F FORMAT -f FRAME` (3.4.1).
        ("/r/fr_##", ImageFormat.JPEG, 1, "/r/fr_01.jpg"),
        ("/r/x_##.png", ImageFormat.JPEG, 3, "/r/x_03.jpg"),
        ("/r/y.##", ImageFormat.JPEG, 3, "/r/y.03.jpg"),
        ("/r/z_##_v.TIF", ImageFormat.JPEG, 3, "/r/z_03_v.jpg"),
        ("/r/noh", ImageFormat.JPEG, 3, "/r/noh0003.jpg"),
        ("/r/frame_####", ImageFormat.PNG, 12, "/r/frame_0012.png"),
        ("/r/frame_####.PNG", ImageFormat.PNG, 12, "/r/frame_0012.PNG"),
        ("/r/a_##_b_###", ImageFormat.OPEN_EXR, 7, "/r/a_##_b_007.exr"),
        ("/r/##/f_#", ImageFormat.TIFF, 12345, "/r/##/f_12345.tif"),
        ("C:\\r\\f_####.jpeg", ImageFormat.JPEG, 2, "C:\\r\\f_0002.jpeg"),
    ],
)
def test_blender_output_names(pattern: str, fmt: ImageFormat, frame: int, written: str) -> None:
    assert blender_output(pattern, fmt, padded(pattern, frame)) == written


def test_patterns_for_ffmpeg() -> None:
    assert blender_output("/r/f_###", ImageFormat.PNG, printf_token("/r/f_###")) == "/r/f_%03d.png"
    assert blender_output("/r/f_###", ImageFormat.PNG, "*") == "/r/f_*.png"


def test_hashes_only_count_in_the_file_name() -> None:
    assert hashes_in_name("{render_root}/job/frame_####")
    assert not hashes_in_name("/r/##/frame")
    assert hashes_in_name("C:\\r\\f#")


def test_siblings_and_stems() -> None:
    assert sibling("{render_root}/job/frame_####", "preview.mp4") == "{render_root}/job/preview.mp4"
    assert sibling("frame_####", "preview.mp4") == "preview.mp4"
    assert stem_and_extension("/r/still.png") == ("/r/still", ".png")
    assert stem_and_extension("/r.d/still") == ("/r.d/still", "")
    assert stem_and_extension("/r/.hidden") == ("/r/.hidden", "")
