"""Path settings are file paths: never a URL or protocol ffmpeg would open, an option a program would obey, or
text with control characters; and a still is no bigger than the worker that merges it can hold."""

from __future__ import annotations

from typing import Any

import pytest

from services.server.jobtypes.base import JobType
from services.server.jobtypes.blender_still import MAX_PIXELS
from services.server.jobtypes.registry import get_job_type
from tests.unit.server.jobtypes.helpers import compile_job, rejected

RENDER = {"blendfile": "/p/a.blend", "output_path": "/r/a/f_####"}
STILL = {"blendfile": "/p/a.blend", "output_path": "/r/s.png", "width": 64, "height": 36}
ENCODE = {"input_pattern": "/r/f_####.png", "output_path": "/r/v.mp4", "frame_start": 1, "frame_end": 10}
BAKE = {"blendfile": "/p/s.blend", "caches": [{"target": "fluid"}]}
EXEC = {"command": ["echo", "{frame}"], "frames": "1-3", "cwd": "/work"}

# (job type, its valid settings, the path setting tried)
PATH_SETTINGS = [
    ("blender-render", RENDER, "blendfile"),
    ("blender-render", RENDER, "output_path"),
    ("blender-render", {**RENDER, "preview_video": True}, "preview_path"),
    ("blender-still", STILL, "blendfile"),
    ("blender-bake", BAKE, "blendfile"),
    ("ffmpeg-encode", ENCODE, "input_pattern"),
    ("ffmpeg-encode", ENCODE, "output_path"),
    ("exec", EXEC, "cwd"),
]

NOT_FILE_PATHS = [
    ("http://169.254.169.254/latest/f_%04d.png", "cannot start with 'http:'"),
    ("concat:/etc/passwd|/x_%04d.png", "cannot start with 'concat:'"),
    ("subfile,,start,0,end,0,,:/etc/f_%04d.png", "cannot start with 'subfile,,start,0,end,0,,:'"),
    ("pipe:%d", "cannot start with 'pipe:'"),
    ("file:///r/f_%04d.png", "cannot start with 'file:'"),
    ("-y", "cannot start with '-'"),
    ("--enable-autoexec", "cannot start with '-'"),
    ("/r/a\nfake log line/f_%04d.png", "control character '\\n'"),
    ("/r/\x1b[2Jf_%04d.png", "control character '\\x1b'"),
    ("/r/gnp.\u202ef_%04d.png", "control character '\\u202e'"),
    ("/r/a\u2028[tablao] task completed/f_%04d.png", "control character '\\u2028'"),  # splitlines breaks there
    ("/r/a\u2029b/f_%04d.png", "control character '\\u2029'"),
]


def _type(name: str) -> JobType:
    job_type = get_job_type(name)
    assert job_type is not None
    return job_type


def _with_frame_number(job_type: str, name: str, value: str) -> str:
    """The value, made to pass every other check of the setting (a frame number, an extension), so that the
    refusal seen is the path's own."""
    if name == "input_pattern" and "%" not in value:
        value += "/f_%04d.png"
    if name == "output_path" and job_type == "ffmpeg-encode":
        value += ".mp4"
    if name == "output_path" and job_type == "blender-still":
        value += ".png"
    if name == "preview_path":
        value += ".mp4"
    return value


@pytest.mark.parametrize(("job_type", "settings", "name"), PATH_SETTINGS)
@pytest.mark.parametrize(("value", "reason"), NOT_FILE_PATHS)
def test_a_path_that_is_not_a_file_path_is_refused_naming_the_setting(
    job_type: str, settings: dict[str, Any], name: str, value: str, reason: str
) -> None:
    loc, msg = rejected(_type(job_type), **{**settings, name: _with_frame_number(job_type, name, value)})
    assert loc == (name,)
    assert reason in msg, msg


@pytest.mark.parametrize(("job_type", "settings", "name"), PATH_SETTINGS)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sample", "is a relative path, which each worker would read from its own folder"),
        ("renders/sh010", "'renders/sh010"),
        ("./renders", "'./renders"),
        ("../renders", "'../renders"),
        ("C:renders", "'C:renders"),  # relative to drive C's current folder
        ("renderroot}/x", "is a relative path"),
        ("~/renders", "cannot start with '~': on a worker that is the home folder of the account the worker runs"),
        ("~render/x", "cannot start with '~'"),
    ],
)
def test_a_path_each_worker_would_read_its_own_way_is_refused_naming_the_setting(
    job_type: str, settings: dict[str, Any], name: str, value: str, reason: str
) -> None:
    """It was taken, and failed on a worker three times (or wrote frames into a worker's own folder)."""
    loc, msg = rejected(_type(job_type), **{**settings, name: _with_frame_number(job_type, name, value)})
    assert loc == (name,)
    assert reason in msg, msg
    assert "{render_root}" in msg  # says what to write instead


@pytest.mark.parametrize(
    "path",
    ["/mnt/r/f_####.png", "{render_root}/sh010/f_####.png", "C:\\renders\\f_####.png", "C:/renders/f_####.png",
     "\\\\server\\share\\f_####.png", "//render/f_####.png", "/r/été/ü-1:2/f_####.png", "/r/a-b/-x/f_####.png"],
)  # fmt: skip
def test_file_paths_of_every_platform_are_kept(path: str) -> None:
    tasks = compile_job(_type("ffmpeg-encode"), **{**ENCODE, "input_pattern": path})
    assert path.replace("####", "%04d") in tasks[0].commands[0]["parameters"]["args"]


def test_an_encoded_video_path_with_a_bar_is_refused() -> None:
    """The segments are joined by ffmpeg's `concat:a|b|…`: a `|` in their names would add a file to read."""
    loc, msg = rejected(_type("ffmpeg-encode"), **{**ENCODE, "output_path": "/r/a|/etc/b.mp4"})
    assert loc == ("output_path",) and "'|'" in msg


def test_a_still_bigger_than_a_worker_can_merge_is_refused_naming_its_size() -> None:
    loc, msg = rejected(_type("blender-still"), **{**STILL, "width": 65_536, "height": 65_536})
    assert loc == ("height",)
    assert "4,294,967,296 pixels" in msg and f"{MAX_PIXELS:,}" in msg
    side = 12_649  # the largest square within the bound
    assert side * side <= MAX_PIXELS < (side + 1) * (side + 1)
    tasks = compile_job(_type("blender-still"), **{**STILL, "width": side, "height": side})
    assert tasks


NAME_SETTINGS: list[tuple[str, dict[str, Any], tuple[str | int, ...]]] = [
    ("blender-render", RENDER, ("scene",)),
    ("blender-still", STILL, ("scene",)),
    ("blender-bake", BAKE, ("caches", 0, "object")),
    ("blender-bake", BAKE, ("caches", 0, "modifier")),
]


@pytest.mark.parametrize(("job_type", "settings", "loc"), NAME_SETTINGS)
@pytest.mark.parametrize(
    ("value", "char"),
    [
        ("Scene\nrunning: forged", "'\\n'"),
        ("\x1b[2JScene", "'\\x1b'"),
        ("ene\u202eSc", "'\\u202e'"),
        ("Scene\u2028running: forged", "'\\u2028'"),
    ],
)
def test_a_blender_name_with_a_control_character_is_refused_naming_the_setting(
    job_type: str, settings: dict[str, Any], loc: tuple[str | int, ...], value: str, char: str
) -> None:
    """A name goes into the worker's `running:` line of the task log: a line break there forged a line."""
    if loc[0] == "caches":
        cache = {"target": "fluid", "object": "Smoke", str(loc[-1]): value}
        settings = {**settings, "caches": [cache]}
    else:
        settings = {**settings, str(loc[0]): value}
    assert rejected(_type(job_type), **settings) == (loc, f"a name cannot contain the control character {char}")


def test_blender_names_of_every_script_are_kept() -> None:
    for scene in ("Scène 01", "シーン", "sh010 – lighting", "Scene.001"):
        tasks = compile_job(_type("blender-render"), **{**RENDER, "scene": scene})
        assert tasks[0].commands[0]["parameters"]["scene"] == scene
