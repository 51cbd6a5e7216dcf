"""ffmpeg-encode: segments in parallel, the concat task, single-task encodes, and refused settings."""

from __future__ import annotations

import pytest

from services.server.jobtypes.ffmpeg_encode import CONCAT_TASK, SEGMENT_CLOCK_BASE, FfmpegEncode
from tests.unit.server.jobtypes.helpers import compile_job, params, rejected

JOB = FfmpegEncode()
BASE = {"input_pattern": "{render_root}/shot/frame_%04d.png", "output_path": "{render_root}/shot/shot.mp4"}


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_segments_then_concat_by_example() -> None:
    tasks = compile_job(JOB, **BASE, frame_start=1, frame_end=250, segment_frames=100, fps=25, crf=18)
    assert [t.name for t in tasks] == [
        "encode frames 1-100",
        "encode frames 101-200",
        "encode frames 201-250",
        CONCAT_TASK,
    ]
    segments = [f"{{render_root}}/shot/shot_segment_{n:04d}.ts" for n in range(3)]
    for n, (task, start, count) in enumerate(zip(tasks, [1, 101, 201], [100, 100, 50], strict=False)):
        assert task.type == "ffmpeg" and task.depends_on == [] and task.steps_total == count
        p = params(task)
        assert p["total_frames"] == count and p["output"] == segments[n]
        args = p["args"]
        assert args[:8] == [
            *("-framerate", "25", "-start_number", str(start)),
            *("-i", "{render_root}/shot/frame_%04d.png", "-frames:v", str(count)),
        ]
        assert _arg(args, "-c:v") == "libx264" and _arg(args, "-crf") == "18"
        assert _arg(args, "-pix_fmt") == "yuv420p"
        assert _arg(args, "-f") == "mpegts" and args[-1] == segments[n]
        assert float(_arg(args, "-output_ts_offset")) == pytest.approx(SEGMENT_CLOCK_BASE + (start - 1) / 25)
    concat = tasks[3]
    assert concat.depends_on == [0, 1, 2] and concat.type == "ffmpeg"
    assert concat.commands[0] == {
        "name": "ffmpeg",
        "parameters": {
            "args": [
                *("-i", "concat:" + "|".join(segments), "-c", "copy"),
                *("-movflags", "+faststart", "{render_root}/shot/shot.mp4"),
            ],
            "total_frames": 250,
            "output": "{render_root}/shot/shot.mp4",
        },
    }
    assert concat.commands[1:] == [{"name": "remove-path", "parameters": {"path": p}} for p in segments]


def test_one_segment_encodes_directly() -> None:
    tasks = compile_job(JOB, **BASE, frame_start=5, frame_end=9)
    assert len(tasks) == 1
    args = params(tasks[0])["args"]
    assert _arg(args, "-start_number") == "5" and _arg(args, "-frames:v") == "5"
    assert _arg(args, "-movflags") == "+faststart" and args[-1] == "{render_root}/shot/shot.mp4"
    assert "-f" not in args


def test_hash_pattern_h265_in_matroska() -> None:
    tasks = compile_job(
        JOB,
        input_pattern="/r/f_###.exr",
        output_path="/r/v.MKV",
        codec="h265",
        frame_start=0,
        frame_end=9,
        segment_frames=5,
    )
    assert len(tasks) == 3
    args = params(tasks[0])["args"]
    assert _arg(args, "-i") == "/r/f_%03d.exr" and _arg(args, "-c:v") == "libx265"
    assert "-tag:v" not in args  # hvc1 is for MP4 and QuickTime
    assert "-movflags" not in params(tasks[2])["args"]


def test_prores_is_one_task() -> None:
    tasks = compile_job(JOB, **{**BASE, "output_path": "/r/v.mov"}, codec="prores", frame_end=5000, segment_frames=100)
    assert len(tasks) == 1
    args = params(tasks[0])["args"]
    assert _arg(args, "-c:v") == "prores_ks" and _arg(args, "-frames:v") == "5000"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"input_pattern": "/r/frame.png"}, "input_pattern", "frame number once"),
        ({"input_pattern": "/r/f_%04d_####.png"}, "input_pattern", "frame number once"),
        ({"frame_start": 10, "frame_end": 9}, "frame_end", "the last frame 9 comes before the first frame 10"),
        ({"output_path": "/r/v.avi"}, "output_path", "must end in .mp4, .mov, .mkv"),
        ({"codec": "prores"}, "codec", "prores goes in .mov or .mkv"),
        ({"codec": "vp9"}, "codec", "'h264', 'h265' or 'prores'"),
        ({"crf": 52}, "crf", "less than or equal to 51"),
        ({"segment_frames": 0}, "segment_frames", "greater than or equal to 1"),
        ({"fps": -1}, "fps", "greater than or equal to 0.01"),
        # a frame every 10^300 s: each segment's clock offset was written with 300 digits
        ({"fps": 1e-300}, "fps", "greater than or equal to 0.01"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], field: str, message: str) -> None:
    loc, msg = rejected(JOB, **{**BASE, **change})
    assert loc == (field,)
    assert message in msg
