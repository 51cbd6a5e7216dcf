"""blender-render output parsing (captured real Blender 3.4 lines) and the ffmpeg runner with real ffmpeg."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from services.worker.runners import CommandFailed, Programs, get_runner
from services.worker.runners.bake import bake_expression, bake_params
from services.worker.runners.blender import BlenderOutput, count_frames, render_argv

DATA = Path(__file__).with_name("data")
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not on PATH (apt-get install ffmpeg)")


def test_blender_output_of_a_real_two_frame_render(rec):
    parser = BlenderOutput(rec.context(), total=2)
    lines = (DATA / "blender_render_ok.txt").read_text().splitlines()
    for line in lines:
        parser.feed(line)
    assert parser.saved == ["/tmp/sc/out/frame_0001.png", "/tmp/sc/out/frame_0002.png"]
    assert rec.outputs == parser.saved
    assert rec.progress == [(1, 2), (2, 2)]
    assert parser.frame == 2
    assert parser.failure(0) is None
    assert rec.lines == lines  # every line reaches the task log


def test_blender_output_of_a_missing_blend_file(rec):
    parser = BlenderOutput(rec.context(), total=1)
    for line in (DATA / "blender_render_missing.txt").read_text().splitlines():
        parser.feed(line)
    reason = parser.failure(1)
    assert reason is not None
    assert "Cannot read file '/tmp/sc/missing.blend': No such file or directory" in reason
    assert "exit status 1" in reason
    assert parser.saved == []


def test_an_error_line_fails_even_with_exit_status_zero(rec):
    parser = BlenderOutput(rec.context(), total=1)
    parser.feed("Error: Build without OpenImageDenoiser")
    parser.feed("Error: Not freed memory blocks: 1, total unfreed memory 0.000 MB")
    assert parser.failure(0) == "Blender: Error: Build without OpenImageDenoiser"


@pytest.mark.parametrize(
    ("frames", "count"), [("1", 1), ("1..4", 4), ("1,3,5", 3), ("1..4,7,10..11", 7), ("-2..2", 5), ("4..1", None),
                          ("a", None), ("1-4", None)],
)  # fmt: skip
def test_count_frames(frames, count):
    assert count_frames(frames) == count


def test_render_command_line_puts_output_and_format_before_frames():
    argv = render_argv(
        "/usr/bin/blender",
        {"blendfile": "/s.blend", "output": "/r/frame_####", "format": "PNG", "frames": "1..2", "scene": "Main",
         "python_expr": "import bpy", "args": ["--threads", "1"]},
    )  # fmt: skip
    assert argv == ["/usr/bin/blender", "--disable-autoexec", "-b", "/s.blend", "--python-exit-code", "1",
                    "--python-expr", "import bpy",
                    "-S", "Main", "--threads", "1", "-o", "/r/frame_####", "-F", "PNG", "-f", "1..2"]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"output": "/o", "format": "PNG", "frames": "1"}, "blender-render: parameter 'blendfile': field required"),
        (
            {"blendfile": "/b", "output": "/o", "format": "GIF", "frames": "1"},
            "parameter 'format': input should be 'PNG', 'JPEG', .* got 'GIF'",
        ),
        (
            {"blendfile": "/b", "output": "/o", "format": "PNG", "frames": "1", "args": "-t 1"},
            "parameter 'args': input should be a valid list, got '-t 1'",
        ),
        ({"blendfile": "", "output": "/o", "format": "PNG", "frames": "1"}, "parameter 'blendfile': string should"),
        ({"blendfile": "/b", "output": "/o", "format": "PNG", "frames": 1}, "parameter 'frames': .* got 1"),
    ],
)
async def test_render_bad_parameters_fail_before_blender_starts(params, message, rec):
    run = get_runner("blender-render")
    assert run is not None
    # a program that would succeed: only the parameter check can fail the command
    with pytest.raises(CommandFailed, match=message):
        await run(params, rec.context(Programs(blender="/usr/bin/true")))


async def test_render_without_blender_is_a_clear_failure(rec):
    run = get_runner("blender-render")
    assert run is not None
    params = {"blendfile": "/b.blend", "output": "/o", "format": "PNG", "frames": "1"}
    with pytest.raises(CommandFailed, match="program 'blender' not found"):
        await run(params, rec.context(Programs(blender=None)))


async def test_render_of_a_missing_blend_file_fails_before_starting_blender(rec):
    run = get_runner("blender-render")
    assert run is not None
    params = {"blendfile": "/nonexistent/x.blend", "output": "/o", "format": "PNG", "frames": "1"}
    with pytest.raises(CommandFailed, match="does not exist"):
        await run(params, rec.context(Programs(blender="/usr/bin/true")))


async def test_render_of_a_folder_given_as_the_blend_file_says_it_is_a_folder(tmp_path: Path, rec):
    """A newcomer's folder was reported as a blend file that "does not exist"."""
    run = get_runner("blender-render")
    assert run is not None
    params = {"blendfile": str(tmp_path), "output": "/o", "format": "PNG", "frames": "1"}
    with pytest.raises(CommandFailed, match="is a folder, not a file"):
        await run(params, rec.context(Programs(blender="/usr/bin/true")))


def test_bake_parameters_are_embedded_as_json():
    p = bake_params({"target": "cloth", "object": "Flag", "frame_start": 1, "frame_end": 10, "blendfile": "/b"})
    assert p == {"target": "cloth", "frame_start": 1, "frame_end": 10, "object": "Flag", "modifier": None}
    expr = bake_expression(p)
    compile(expr, "<bake>", "exec")  # it is valid Python
    assert '"object": "Flag"' in expr
    with pytest.raises(CommandFailed, match="'frame_end' \\(1\\) is before"):
        bake_params({"target": "fluid", "frame_start": 5, "frame_end": 1, "blendfile": "/b"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"target": "smoke", "frame_start": 1, "frame_end": 2},
            "blender-bake: parameter 'target': must be one of 'point-cache', 'fluid', 'cloth', 'verify', got 'smoke'",
        ),
        ({"target": "verify", "frame_start": 1, "frame_end": 2}, "parameter 'caches': field required"),
        (
            {"target": "verify", "caches": [{"target": "fluid", "object": 3}], "frame_start": 1, "frame_end": 2},
            r"parameter 'caches\[0\]\.object': .* got 3",
        ),
        ({"target": "fluid", "frame_start": 5, "frame_end": 1}, "'frame_end' \\(1\\) is before"),
    ],
)
async def test_bake_bad_parameters_fail_before_blender_starts(params, message, tmp_path: Path, rec):
    blend = tmp_path / "b.blend"
    blend.write_bytes(b"")
    run = get_runner("blender-bake")
    assert run is not None
    with pytest.raises(CommandFailed, match=message):
        await run({"blendfile": str(blend), **params}, rec.context(Programs(blender="/usr/bin/true")))


@needs_ffmpeg
async def test_ffmpeg_progress_from_real_output(tmp_path: Path, rec):
    run = get_runner("ffmpeg")
    assert run is not None
    out = tmp_path / "clip.mp4"
    args = ["-f", "lavfi", "-i", "testsrc=size=64x36:rate=24:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            str(out)]  # fmt: skip
    await run({"args": args, "total_frames": 48, "output": str(out)}, rec.context())
    assert out.stat().st_size > 0
    assert rec.outputs == [str(out)]
    assert rec.progress, "no frame= progress parsed"
    assert rec.progress[-1] == (48, 48)
    dones = [done for done, _ in rec.progress]
    assert dones == sorted(dones)
    assert not any(line.startswith(("progress=", "out_time=", "speed=")) or line == "frame=48" for line in rec.lines)
    assert any("libx264" in line for line in rec.lines)  # ffmpeg's own log reaches the task log


@needs_ffmpeg
async def test_ffmpeg_failure_names_the_reason(tmp_path: Path, rec):
    run = get_runner("ffmpeg")
    assert run is not None
    missing = tmp_path / "frame_%04d.png"
    with pytest.raises(CommandFailed, match=r"exited with status 1: .*No such file"):
        await run({"args": ["-i", str(missing), str(tmp_path / "o.mp4")]}, rec.context())


@needs_ffmpeg
async def test_ffmpeg_output_must_exist(tmp_path: Path, rec):
    run = get_runner("ffmpeg")
    assert run is not None
    args = ["-f", "lavfi", "-i", "testsrc=size=32x32:duration=0.1", "-f", "null", "-"]
    with pytest.raises(CommandFailed, match="does not exist"):
        await run({"args": args, "output": str(tmp_path / "never.mp4")}, rec.context())


@pytest.mark.parametrize(
    "source",
    ["http://127.0.0.1:9/f_%04d.png", "concat:/r/a.ts|http://127.0.0.1:9/b.ts", "pipe:0", "-f"],
)
async def test_ffmpeg_is_not_started_on_an_input_that_is_not_a_file(source: str, tmp_path: Path, rec):
    """A task stored before the Server refused such paths: ffmpeg would fetch the URL (and Landlock does not
    confine the network)."""
    ran = tmp_path / "ran"
    program = tmp_path / "ffmpeg"
    program.write_text(f"#!/bin/sh\ntouch {ran}\n")
    program.chmod(0o755)
    run = get_runner("ffmpeg")
    assert run is not None
    with pytest.raises(CommandFailed, match=r"ffmpeg: the input .* is refused: a path cannot"):
        await run({"args": ["-i", source, str(tmp_path / "o.mp4")]}, rec.context(Programs(ffmpeg=str(program))))
    assert not ran.exists()


@pytest.mark.parametrize("runner", ["blender-render", "blender-bake", "merge-samples"])
async def test_blender_is_not_started_on_a_blend_file_that_reads_as_an_option(
    runner: str, tmp_path: Path, rec, monkeypatch: pytest.MonkeyPatch
):
    """`-b --enable-autoexec` would turn on the scripts the farm turns off, given a file of that name."""
    (tmp_path / "--enable-autoexec").write_bytes(b"")
    (tmp_path / "part.exr").write_bytes(b"")
    every: dict[str, dict[str, Any]] = {
        "blender-render": {"output": "/o", "format": "PNG", "frames": "1"},
        "blender-bake": {"target": "fluid", "frame_start": 1, "frame_end": 2},
        "merge-samples": {
            "inputs": [{"path": str(tmp_path / "part.exr"), "weight": 1}],
            "output": "/o.png",
            "format": "PNG",
        },
    }
    params = every[runner]
    run = get_runner(runner)
    assert run is not None
    monkeypatch.chdir(tmp_path)  # where the worker would find a file of that name
    with pytest.raises(CommandFailed, match="blend file '--enable-autoexec' is refused"):
        await run({"blendfile": "--enable-autoexec", **params}, rec.context(Programs(blender="/usr/bin/true")))


async def test_the_running_line_shows_a_scene_name_on_one_line(tmp_path: Path, rec):
    """A task stored before the Server refused such names: the line break was a second, forged line of the log."""
    blend = tmp_path / "s.blend"
    blend.write_bytes(b"")
    run = get_runner("blender-render")
    assert run is not None
    params = {"blendfile": str(blend), "output": "/o", "format": "PNG", "frames": "1", "scene": "A\ntask 9 completed"}
    with contextlib.suppress(CommandFailed):  # `true` renders nothing
        await run(params, rec.context(Programs(blender="/usr/bin/true")))
    (running,) = [line for line in rec.lines if line.startswith("running: ")]
    assert "\n" not in running and "A\\ntask 9 completed" in running
