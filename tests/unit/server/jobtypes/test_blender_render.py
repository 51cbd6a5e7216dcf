"""blender-render: render tasks per chunk, the preview video task, and refused settings."""

from __future__ import annotations

import pytest

from services.server.jobtypes.blender_render import PREVIEW_CODEC_ARGS, BlenderRender
from tests.unit.server.jobtypes.helpers import compile_job, params, rejected

JOB = BlenderRender()
BASE = {"blendfile": "{project}/shot.blend", "output_path": "{render_root}/job/frame_####"}


def test_chunks_and_preview_by_example() -> None:
    tasks = compile_job(JOB, **BASE, frames="1-8", chunk_size=2, preview_video=True, fps=25)
    assert [t.name for t in tasks] == [
        "render frames 1-2",
        "render frames 3-4",
        "render frames 5-6",
        "render frames 7-8",
        "preview-video",
    ]
    for task, frames in zip(tasks, ["1..2", "3..4", "5..6", "7..8"], strict=False):
        assert task.type == "blender"
        assert task.depends_on == []
        assert task.steps_total == 2
        assert task.commands == [
            {
                "name": "blender-render",
                "parameters": {
                    "blendfile": "{project}/shot.blend",
                    "output": "{render_root}/job/frame_####",
                    "format": "PNG",
                    "frames": frames,
                },
            }
        ]
    preview = tasks[4]
    assert preview.type == "ffmpeg"
    assert preview.depends_on == [0, 1, 2, 3]
    assert preview.steps_total == 8
    assert preview.commands == [
        {
            "name": "ffmpeg",
            "parameters": {
                "args": [
                    *("-framerate", "25", "-start_number", "1", "-i", "{render_root}/job/frame_%04d.png"),
                    *("-frames:v", "8"),
                    *PREVIEW_CODEC_ARGS,
                    "{render_root}/job/preview.mp4",
                ],
                "total_frames": 8,
                "output": "{render_root}/job/preview.mp4",
            },
        }
    ]
    assert "libx264" in PREVIEW_CODEC_ARGS and "scale=trunc(iw/2)*2:trunc(ih/2)*2" in PREVIEW_CODEC_ARGS


def test_scene_format_and_padding_follow_the_settings() -> None:
    tasks = compile_job(
        JOB,
        blendfile="/p/a.blend",
        output_path="/r/x/img_##.jpg",
        format="JPEG",
        frames="9-11",
        scene="Main",
        preview_video=True,
        preview_path="/r/x/movie.mp4",
    )
    assert [params(t)["frames"] for t in tasks[:-1]] == ["9", "10", "11"]
    assert all(params(t)["scene"] == "Main" and params(t)["format"] == "JPEG" for t in tasks[:-1])
    args = params(tasks[-1])["args"]
    assert args[args.index("-i") + 1] == "/r/x/img_%02d.jpg"
    assert args[args.index("-start_number") + 1] == "9"
    assert args[-1] == params(tasks[-1])["output"] == "/r/x/movie.mp4"


def test_frames_with_gaps_use_a_glob() -> None:
    tasks = compile_job(JOB, **BASE, frames="1-3,10", chunk_size=2, preview_video=True, format="TIFF")
    assert [params(t)["frames"] for t in tasks[:-1]] == ["1..2", "3,10"]
    args = params(tasks[-1])["args"]
    assert args[args.index("-pattern_type") + 1] == "glob"
    assert args[args.index("-i") + 1] == "{render_root}/job/frame_*.tif"
    assert "-start_number" not in args
    assert params(tasks[-1])["total_frames"] == 4
    assert tasks[-1].depends_on == [0, 1]


def test_percent_in_a_folder_is_escaped_for_ffmpeg() -> None:
    tasks = compile_job(JOB, blendfile="/a.blend", output_path="/r/100%/f_####", frames="1-2", preview_video=True)
    args = params(tasks[-1])["args"]
    assert args[args.index("-i") + 1] == "/r/100%%/f_%04d.png"


def test_no_preview_unless_asked_or_for_exr() -> None:
    assert [t.type for t in compile_job(JOB, **BASE, frames="1-3")] == ["blender"] * 3
    exr = compile_job(JOB, **BASE, frames="1-3", format="OPEN_EXR", preview_video=True)
    assert [t.type for t in exr] == ["blender"] * 3


def test_hundred_thousand_frames() -> None:
    tasks = compile_job(JOB, **BASE, frames="1-100000", preview_video=True)
    assert len(tasks) == 100_001
    assert params(tasks[99_999])["frames"] == "100000"
    assert tasks[-1].depends_on == list(range(100_000))


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"frames": "5-1"}, "frames", "range 5-1 ends before it starts"),
        ({"frames": ""}, "frames", "frame range is empty"),
        ({"chunk_size": 0}, "chunk_size", "greater than or equal to 1"),
        ({"blendfile": "   "}, "blendfile", "a path is required"),
        ({"output_path": "/r/frame"}, "output_path", "must contain `#`"),
        ({"output_path": "/r/##/frame"}, "output_path", "must contain `#`"),
        ({"format": "GIF"}, "format", "'PNG', 'JPEG', 'OPEN_EXR' or 'TIFF'"),
        ({"fps": 0}, "fps", "greater than 0"),
        ({"preview_path": "/r/p.mov"}, "preview_path", "must end in .mp4"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], field: str, message: str) -> None:
    loc, msg = rejected(JOB, **{**BASE, **change})
    assert loc == (field,)
    assert message in msg


def test_missing_blendfile_is_named() -> None:
    loc, msg = rejected(JOB, output_path="/r/f_####")
    assert loc == ("blendfile",)
    assert msg == "Field required"


def test_frame_range_error_is_exactly_the_reason() -> None:
    assert rejected(JOB, **BASE, frames="5-1") == (("frames",), "range 5-1 ends before it starts")
