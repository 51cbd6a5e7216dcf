"""move-out-of-way, copy-file, remove-path and merge-images on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from services.worker.runners import CommandFailed, get_runner


def runner(name: str):
    run = get_runner(name)
    assert run is not None, name
    return run


def _moved(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("render-")]


async def test_move_out_of_way_renames_with_the_timestamp(tmp_path: Path, rec):
    folder = tmp_path / "render"
    folder.mkdir()
    (folder / "frame.png").write_text("x")
    await runner("move-out-of-way")({"path": str(folder)}, rec.context())
    moved = _moved(tmp_path)
    assert not folder.exists() and len(moved) == 1
    assert (moved[0] / "frame.png").read_text() == "x"
    assert len(moved[0].name) == len("render-2026-01-01_000000")
    # again, in the same second: a second copy, nothing overwritten
    folder.mkdir()
    await runner("move-out-of-way")({"path": str(folder)}, rec.context())
    assert len(_moved(tmp_path)) == 2


async def test_move_out_of_way_with_nothing_there_succeeds(tmp_path: Path, rec):
    await runner("move-out-of-way")({"path": str(tmp_path / "none")}, rec.context())
    assert "nothing at" in rec.lines[0]


async def test_copy_file_creates_the_destination_folder(tmp_path: Path, rec):
    src = tmp_path / "a.txt"
    src.write_text("data")
    dest = tmp_path / "x" / "y" / "b.txt"
    await runner("copy-file")({"src": str(src), "dest": str(dest)}, rec.context())
    assert dest.read_text() == "data"
    with pytest.raises(CommandFailed, match="is not a file"):
        await runner("copy-file")({"src": str(tmp_path / "missing"), "dest": str(dest)}, rec.context())
    with pytest.raises(CommandFailed, match="'dest'"):
        await runner("copy-file")({"src": str(src)}, rec.context())


async def test_remove_path_needs_recursive_for_folders(tmp_path: Path, rec):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x").write_text("x")
    with pytest.raises(CommandFailed, match="set 'recursive'"):
        await runner("remove-path")({"path": str(folder)}, rec.context())
    assert folder.exists()
    await runner("remove-path")({"path": str(folder), "recursive": True}, rec.context())
    assert not folder.exists()
    file = tmp_path / "file"
    file.write_text("x")
    await runner("remove-path")({"path": str(file)}, rec.context())
    assert not file.exists()
    await runner("remove-path")({"path": str(file)}, rec.context())  # nothing there: fine
    with pytest.raises(CommandFailed, match="'recursive'"):
        await runner("remove-path")({"path": str(file), "recursive": "yes"}, rec.context())


async def test_merge_tiles_stitches_into_the_full_size(tmp_path: Path, rec):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    tiles = []
    for i, colour in enumerate(colours):
        path = tmp_path / f"tile{i}.png"
        Image.new("RGB", (32, 18), colour).save(path)
        tiles.append({"path": str(path), "x": 32 * (i % 2), "y": 18 * (i // 2)})
    out = tmp_path / "out" / "merged.png"
    params = {"mode": "tiles", "inputs": [t["path"] for t in tiles], "tiles": tiles, "width": 64, "height": 36,
              "output": str(out)}  # fmt: skip
    await runner("merge-images")(params, rec.context())
    with Image.open(out) as img:
        assert img.size == (64, 36)
        assert [img.getpixel((x, y)) for x, y in ((5, 5), (40, 5), (5, 25), (40, 25))] == colours
    assert rec.outputs == [str(out)]


async def test_merge_tiles_refuses_a_tile_that_does_not_fit(tmp_path: Path, rec):
    path = tmp_path / "t.png"
    Image.new("RGB", (32, 18)).save(path)
    params = {"mode": "tiles", "tiles": [{"path": str(path), "x": 40, "y": 0}], "width": 64, "height": 36,
              "output": str(tmp_path / "o.png")}  # fmt: skip
    with pytest.raises(CommandFailed, match="does not fit"):
        await runner("merge-images")(params, rec.context())


async def test_merge_average_of_seed_chunks(tmp_path: Path, rec):
    paths = []
    for i, value in enumerate((0, 60, 120, 240)):
        path = tmp_path / f"seed{i}.png"
        Image.new("RGB", (8, 8), (value, value, 0)).save(path)
        paths.append(str(path))
    out = tmp_path / "avg.png"
    await runner("merge-images")({"mode": "average", "inputs": paths, "output": str(out)}, rec.context())
    with Image.open(out) as img:
        pixel = img.getpixel((3, 3))
    assert isinstance(pixel, tuple)
    r, g, b = pixel[:3]
    assert abs(r - 105) <= 2 and abs(g - 105) <= 2 and b == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "blend", "output": "/tmp/x.png"}, "parameter 'mode': must be one of 'tiles', 'average', got 'blend'"),
        ({"output": "/tmp/x.png"}, "parameter 'mode': field required"),
        ({"mode": "average", "inputs": [], "output": "/tmp/x.png"}, "parameter 'inputs': list should have at least 1"),
        ({"mode": "average", "inputs": ["/nonexistent.png"], "output": "/tmp/x.png"}, "does not exist"),
        ({"mode": "tiles", "tiles": [], "width": 4, "height": 4, "output": "/tmp/x.png"}, "'tiles'"),
        (
            {"mode": "tiles", "tiles": [{"path": "/a.png", "x": 0}], "width": 4, "height": 4, "output": "/t.png"},
            r"parameter 'tiles\[0\]\.y': field required",
        ),
        ({"mode": "average", "inputs": ["/a.png"]}, "'output'"),
    ],
)
async def test_merge_bad_parameters(params, message, rec):
    with pytest.raises(CommandFailed, match=message):
        await runner("merge-images")(params, rec.context())


async def test_merge_average_refuses_different_sizes(tmp_path: Path, rec):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (8, 8)).save(a)
    Image.new("RGB", (4, 8)).save(b)
    with pytest.raises(CommandFailed, match="expected 8×8"):
        await runner("merge-images")(
            {"mode": "average", "inputs": [str(a), str(b)], "output": str(tmp_path / "o.png")}, rec.context()
        )
