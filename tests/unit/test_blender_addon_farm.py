"""The Blender add-on's plain-Python half: path rewriting with farm variables and the job it builds."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest

from resources.addon_zip import ADDON_DIR, build_zip

# the add-on package's __init__ imports bpy; its farm module is plain Python and loads on its own
_spec = importlib.util.spec_from_file_location("tablao_addon_farm", ADDON_DIR / "farm.py")
assert _spec is not None and _spec.loader is not None
farm = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = farm  # dataclasses look their module up while the class is made
_spec.loader.exec_module(farm)

VARS = {"render_root": {"linux": "/mnt/render", "windows": "R:\\"}, "project": {"all": "/mnt/render/projects"}}


@pytest.mark.parametrize(
    ("path", "platform", "expected"),
    [
        ("/mnt/render/projects/a/shot.blend", "linux", "{project}/a/shot.blend"),  # the longest root wins
        ("/mnt/render/out/f_####", "linux", "{render_root}/out/f_####"),
        ("/mnt/render", "linux", "{render_root}"),
        ("/mnt/renderfarm/x.blend", "linux", None),  # a prefix of the name is not a parent folder
        ("r:\\Shots\\f_##", "windows", "{render_root}/Shots/f_##"),
        ("{render_root}/x/f_##", "linux", "{render_root}/x/f_##"),
        ("{elsewhere}/x", "linux", None),
        ("/home/me/x.blend", "linux", None),
    ],
)
def test_paths_become_farm_variables(path: str, platform: str, expected: str | None) -> None:
    assert farm.to_farm_path(path, VARS, platform) == expected


def test_animation_job_body_adds_frame_marks_and_step() -> None:
    req = farm.JobRequest(name="shot", job_type="animation", blendfile="{p}/a.blend", output_path="{r}/out/frame",
                          frame_start=1, frame_end=9, frame_step=2, tags=farm.parse_tags("gpu, big;;"))  # fmt: skip
    body = farm.job_body(req)
    assert body["type"] == "blender-render" and body["tags"] == ["gpu", "big"]
    assert body["settings"]["frames"] == "1-9x2"
    assert body["settings"]["output_path"] == "{r}/out/frame_####"


def test_still_and_bake_bodies() -> None:
    still = farm.job_body(farm.JobRequest(name="s", job_type="still", blendfile="b", output_path="/o/img_####",
                                          still_split="samples", samples=64, sample_chunks=4))  # fmt: skip
    assert still["type"] == "blender-still"
    assert still["settings"]["output_path"] == "/o/img.png"
    assert still["settings"]["chunks"] == 4 and "tiles_x" not in still["settings"]
    bake = farm.job_body(farm.JobRequest(name="b", job_type="bake", blendfile="b", output_path="", bake_target="cloth"))
    assert bake["settings"]["caches"] == [{"target": "cloth"}] and "scene" not in bake["settings"]


def test_unreachable_or_malformed_server_is_a_farm_error() -> None:
    with pytest.raises(farm.FarmError, match="not an http"):
        farm.who_am_i(farm.Connection("farm:8470", "t"))
    with pytest.raises(farm.FarmError, match="No API token"):
        farm.who_am_i(farm.Connection("http://127.0.0.1:9", ""))


def test_zip_holds_the_package(tmp_path: Path) -> None:
    out = build_zip(tmp_path / "a" / "addon.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["tablao_submit/__init__.py", "tablao_submit/farm.py"]
        assert "bl_info" in zf.read("tablao_submit/__init__.py").decode()
