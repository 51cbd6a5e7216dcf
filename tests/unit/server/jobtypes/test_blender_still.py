"""blender-still: tiles with exact pixel rectangles, sample chunks with seeds, the merge, and bad settings."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.server.jobtypes.blender_still import MERGE_TASK, BlenderStill, tile_rects
from tests.unit.server.jobtypes.helpers import compile_job, params, rejected

JOB = BlenderStill()
BASE = {"blendfile": "/p/a.blend", "output_path": "{render_root}/still/poster.png", "frame": 12}


def _expr_values(expr: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+(?:\.\w+)*) = ([^;]+)", expr))


def test_tiles_by_example() -> None:
    tasks = compile_job(JOB, **BASE, width=100, height=50, tiles_x=2, tiles_y=2)
    assert len(tasks) == 5
    parts, merge = tasks[:4], tasks[4]
    for n, task in enumerate(parts):
        p = params(task)
        assert task.type == "blender" and task.commands[0]["name"] == "blender-render"
        assert p["output"] == f"{{render_root}}/still/poster_part_{n}_####"
        assert p["frames"] == "12" and p["format"] == "PNG" and p["blendfile"] == "/p/a.blend"
        values = _expr_values(p["python_expr"])
        assert values["r.resolution_x"] == "100" and values["r.resolution_y"] == "50"
        assert values["r.resolution_percentage"] == "100"
        assert values["r.use_border"] == "True" and values["r.use_crop_to_border"] == "True"
    # Tile 1 is the top right one: x 50..100, y 0..25 from the top, i.e. 25..50 from the bottom.
    v = _expr_values(params(parts[1])["python_expr"])
    assert int(float(v["r.border_min_x"]) * 100) == 50 and float(v["r.border_max_x"]) == 1.0
    assert int(float(v["r.border_min_y"]) * 50) == 25 and float(v["r.border_max_y"]) == 1.0
    # Tile 2 is bottom left: x 0..50, y 25..50 from the top, i.e. 0..25 from the bottom.
    v = _expr_values(params(parts[2])["python_expr"])
    assert int(float(v["r.border_min_x"]) * 100) == 0 and int(float(v["r.border_max_x"]) * 100) == 50
    assert int(float(v["r.border_min_y"]) * 50) == 0 and int(float(v["r.border_max_y"]) * 50) == 25

    assert merge.name == MERGE_TASK and merge.type == "image" and merge.depends_on == [0, 1, 2, 3]
    files = [f"{{render_root}}/still/poster_part_{n}_0012.png" for n in range(4)]
    assert merge.commands == [
        {
            "name": "merge-images",
            "parameters": {
                "mode": "tiles",
                "inputs": files,
                "output": "{render_root}/still/poster.png",
                "tiles": [
                    {"path": files[0], "x": 0, "y": 0},
                    {"path": files[1], "x": 50, "y": 0},
                    {"path": files[2], "x": 0, "y": 25},
                    {"path": files[3], "x": 50, "y": 25},
                ],
                "width": 100,
                "height": 50,
            },
        }
    ]


@given(
    st.integers(1, 4000),
    st.integers(1, 4000),
    st.integers(1, 16),
    st.integers(1, 16),
)
def test_tiles_abut_and_cover_the_image(width: int, height: int, across: int, down: int) -> None:
    across, down = min(across, width), min(down, height)
    rects = tile_rects(width, height, across, down)
    assert len(rects) == across * down
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in rects) == width * height
    assert all(x1 > x0 and y1 > y0 for x0, y0, x1, y1 in rects)
    for i, (x0, y0, _, _) in enumerate(rects):
        if i % across:  # the left neighbour ends where this one starts
            assert rects[i - 1][2] == x0 and rects[i - 1][1] == y0
        if i >= across:  # so does the one above
            assert rects[i - across][3] == y0 and rects[i - across][0] == x0


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 8), st.integers(1, 8))
def test_borders_land_on_the_pixel_edges(width: int, height: int, across: int, down: int) -> None:
    across, down = min(across, width), min(down, height)
    tasks = compile_job(JOB, **BASE, width=width, height=height, tiles_x=across, tiles_y=down)
    tiles = params(tasks[-1])["tiles"]
    rects = tile_rects(width, height, across, down)
    for task, tile, (x0, y0, x1, y1) in zip(tasks[:-1], tiles, rects, strict=True):
        assert (tile["x"], tile["y"]) == (x0, y0)
        v = {k: float(s) for k, s in _expr_values(params(task)["python_expr"]).items() if "border_" in k}
        # Blender truncates border × size to whole pixels (a round would land on the same pixel).
        assert int(v["r.border_min_x"] * width) == x0 == round(v["r.border_min_x"] * width)
        assert int(v["r.border_max_x"] * width) == x1
        assert int(v["r.border_min_y"] * height) == height - y1
        assert int(v["r.border_max_y"] * height) == height - y0


def test_sample_chunks_by_example() -> None:
    settings = {**BASE, "output_path": "/r/p.tif", "format": "TIFF", "scene": "Sc"}
    tasks = compile_job(JOB, **settings, split="samples", samples=10, chunks=3)
    parts, merge = tasks[:3], tasks[3]
    seeds = [_expr_values(params(t)["python_expr"]) for t in parts]
    assert [v["s.cycles.seed"] for v in seeds] == ["0", "1", "2"]
    assert [int(v["s.cycles.samples"]) for v in seeds] == [4, 3, 3]
    assert all(v["r.use_border"] == "False" for v in seeds)
    assert all("bpy.data.scenes['Sc']" in params(t)["python_expr"] for t in parts)
    # the parts are scene-linear, full-float OpenEXR, whatever the final format
    assert all(params(t)["scene"] == "Sc" and params(t)["format"] == "OPEN_EXR" for t in parts)
    assert all("'color_depth', '32'" in params(t)["python_expr"] for t in parts)
    assert merge.depends_on == [0, 1, 2]
    assert merge.type == "blender" and merge.commands[0]["name"] == "merge-samples"
    assert params(merge) == {
        "blendfile": BASE["blendfile"],
        "scene": "Sc",
        # weighted by each chunk's samples: the mean of all 10 samples
        "inputs": [
            {"path": "/r/p_part_0_0012.exr", "weight": 4},
            {"path": "/r/p_part_1_0012.exr", "weight": 3},
            {"path": "/r/p_part_2_0012.exr", "weight": 3},
        ],
        "output": "/r/p.tif",
        "format": "TIFF",
    }


def test_jpeg_output_merges_lossless_parts() -> None:
    tasks = compile_job(JOB, **{**BASE, "output_path": "/r/p.jpeg"}, format="JPEG", tiles_x=1, tiles_y=2)
    assert all(params(t)["format"] == "PNG" for t in tasks[:-1])
    assert params(tasks[-1])["inputs"] == ["/r/p_part_0_0012.png", "/r/p_part_1_0012.png"]
    assert params(tasks[-1])["output"] == "/r/p.jpeg"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tiles_x": 20, "tiles_y": 20}, "tiles_y", "20×20 tiles are more than 256"),
        ({"tiles_x": 0}, "tiles_x", "greater than or equal to 1"),
        ({"width": 3, "tiles_x": 4}, "tiles_x", "4 tiles across do not fit in 3 pixels"),
        ({"height": 2, "tiles_y": 3}, "tiles_y", "3 tiles down do not fit in 2 pixels"),
        ({"split": "samples", "samples": 2, "chunks": 3}, "chunks", "3 chunks cannot share 2 samples"),
        ({"split": "halves"}, "split", "'tiles' or 'samples'"),
        ({"format": "JPEG"}, "format", "must end in .jpg or .jpeg"),
        ({"format": "OPEN_EXR"}, "format", "'PNG', 'JPEG' or 'TIFF'"),
        ({"frame": -1}, "frame", "greater than or equal to 0"),
        ({"output_path": ""}, "output_path", "a path is required"),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, object], field: str, message: str) -> None:
    loc, msg = rejected(JOB, **{**BASE, **change})
    assert loc == (field,)
    assert message in msg


def test_tile_limits_do_not_apply_to_sample_chunks() -> None:
    tasks = compile_job(JOB, **BASE, split="samples", tiles_x=20, tiles_y=20, width=4, samples=8, chunks=8)
    assert len(tasks) == 9
