"""Frame ranges: parsing, formatting, Blender's -f text and chunking, by examples and by properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.server.jobtypes.frames import (
    MAX_FRAMES,
    blender_frames,
    chunk_frames,
    format_frames,
    parse_frames,
)

frame_sets = st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=300, unique=True).map(sorted)


@pytest.mark.parametrize(
    ("text", "frames"),
    [
        ("7", [7]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-9,20,30-40x2", [*range(1, 10), 20, 30, 32, 34, 36, 38, 40]),
        (" 3 - 5 , 1 ,  10-14 x 3 ", [1, 3, 4, 5, 10, 13]),
        ("5-5", [5]),
        ("1-4,2-6", [1, 2, 3, 4, 5, 6]),
        ("0", [0]),
        ("1-10X5", [1, 6]),
    ],
)
def test_parse(text: str, frames: list[int]) -> None:
    assert parse_frames(text) == frames


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5-1", "range 5-1 ends before it starts"),
        ("1-10x0", "step must be ≥ 1"),
        ("", "frame range is empty"),
        ("  ,  ", "frame range is empty"),
        ("1,,3", "empty item"),
        ("a-b", "is not a frame range"),
        ("-5", "is not a frame range"),
        ("1.5", "is not a frame range"),
        ("1-3000000", "more than 1,000,000 frames"),
        ("1-600000,700000-1300000", "more than 1,000,000 frames"),
        ("99999999", "beyond the largest frame number"),
        # Python will not read an integer of over 4,300 digits, and its error says to call sys.set_int_max_str_digits
        ("1" * 5000, r"111111111111… \(5,000 digits\) is beyond the largest frame number 9999999$"),
        ("1-" + "9" * 5000, r"\(5,000 digits\) is beyond the largest frame number"),
        ("1-10x" + "9" * 5000, r"\(5,000 digits\) is beyond the largest frame number"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_frames(text)


def test_parse_allows_exactly_the_maximum() -> None:
    assert len(parse_frames(f"1-{MAX_FRAMES}")) == MAX_FRAMES


def test_format_and_blender_text() -> None:
    frames = [1, 2, 3, 4, 7, 10, 12, 14, 15]
    assert format_frames(frames) == "1-4,7,10-14x2,15"
    assert blender_frames(frames) == "1..4,7,10,12,14..15"
    assert blender_frames([5]) == "5"
    assert blender_frames([5, 6]) == "5..6"


def test_chunks_by_example() -> None:
    chunks = chunk_frames(parse_frames("1-8"), 2)
    assert [c.blender for c in chunks] == ["1..2", "3..4", "5..6", "7..8"]
    assert [c.name for c in chunks] == ["frames 1-2", "frames 3-4", "frames 5-6", "frames 7-8"]
    gappy = chunk_frames(parse_frames("1-3,5,9-10"), 4)
    assert [c.blender for c in gappy] == ["1..3,5", "9..10"]
    assert gappy[0].name == "frames 1-3,5"
    assert chunk_frames([7], 1)[0].name == "frame 7"


def test_chunks_split_at_gaps() -> None:
    chunks = chunk_frames(parse_frames("1-5,8,10-11"), 3, split_at_gaps=True)
    assert [(c.start, c.end) for c in chunks] == [(1, 3), (4, 5), (8, 8), (10, 11)]
    assert all(c.contiguous for c in chunks)


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk size must be ≥ 1"):
        chunk_frames([1, 2], 0)


@given(frame_sets)
def test_format_round_trips(frames: list[int]) -> None:
    assert parse_frames(format_frames(frames)) == frames


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 60), st.integers(1, 7)), min_size=1, max_size=8))
def test_parse_matches_the_set_it_describes(parts: list[tuple[int, int, int]]) -> None:
    text = ",".join(f"{a}-{a + n}x{step}" for a, n, step in parts)
    expected = sorted({f for a, n, step in parts for f in range(a, a + n + 1, step)})
    assert parse_frames(text) == expected


@given(frame_sets, st.integers(min_value=1, max_value=50), st.booleans())
def test_chunks_cover_every_frame_once_in_order(frames: list[int], size: int, split_at_gaps: bool) -> None:
    chunks = chunk_frames(frames, size, split_at_gaps=split_at_gaps)
    assert [f for c in chunks for f in c.frames] == frames
    assert all(1 <= len(c.frames) <= size for c in chunks)
    if not split_at_gaps:
        # Only the last chunk may be short.
        assert all(len(c.frames) == size for c in chunks[:-1])
    else:
        assert all(list(c.frames) == list(range(c.start, c.end + 1)) for c in chunks)


def _expand_blender(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("..")
        out.extend(range(int(first), int(last or first) + 1))
    return out


@given(frame_sets, st.integers(min_value=1, max_value=50))
def test_blender_text_names_exactly_the_chunk(frames: list[int], size: int) -> None:
    for chunk in chunk_frames(frames, size):
        assert _expand_blender(chunk.blender) == list(chunk.frames)
        assert parse_frames(chunk.name.split(" ", 1)[1]) == list(chunk.frames)
