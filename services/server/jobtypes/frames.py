"""Frame ranges: parse `1-9,20,30-40x2`, format frame sets back, and cut them into chunks for tasks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

MAX_FRAMES = 1_000_000
# A frame number fits Blender's limit (MAXFRAME is 1,048,574) with room to spare.
MAX_FRAME_NUMBER = 9_999_999

_PART = re.compile(r"^([0-9]+)(?:\s*-\s*([0-9]+)(?:\s*[xX]\s*([0-9]+))?)?$")


def parse_frames(text: str) -> list[int]:
    """The sorted unique frames of `text`, e.g. `1-9, 20, 30-40x2`; ValueError says what is wrong."""
    return list(frame_sequence(text))


def _number(digits: str) -> int:
    """A frame number or step; one far past any frame is refused by its length (Python will not read an integer of
    over 4,300 digits, and says so in words meant for programmers)."""
    if len(digits.lstrip("0")) > 18:
        raise ValueError(
            f"{digits[:12]}… ({len(digits):,} digits) is beyond the largest frame number {MAX_FRAME_NUMBER}"
        )
    return int(digits)


def frame_sequence(text: str) -> Sequence[int]:
    """`parse_frames` without building a list for one plain range (a million frames are then a `range`, not
    36 MB of ints): what compilers use."""
    parts = [p.strip() for p in text.split(",")]
    if all(p == "" for p in parts):
        raise ValueError("frame range is empty")
    ranges: list[range] = []
    count = 0
    for part in parts:
        if part == "":
            raise ValueError(f"{text.strip()!r} has an empty item between commas")
        match = _PART.match(part)
        if match is None:
            raise ValueError(
                f"{part!r} is not a frame range; write frames as 7, 1-250 or 1-250x2 (x is the step), "
                "separated by commas"
            )
        first = _number(match.group(1))
        last = _number(match.group(2)) if match.group(2) is not None else first
        step = _number(match.group(3)) if match.group(3) is not None else 1
        if step < 1:
            raise ValueError(f"in {part!r}: step must be ≥ 1")
        if last < first:
            raise ValueError(f"range {first}-{last} ends before it starts")
        if last > MAX_FRAME_NUMBER:
            raise ValueError(f"frame {last} is beyond the largest frame number {MAX_FRAME_NUMBER}")
        span = range(first, last + 1, step)
        # Count before expanding, so `1-9999999` is refused without building a list.
        count += len(span)
        if count > MAX_FRAMES:
            raise ValueError(f"more than {MAX_FRAMES:,} frames")
        ranges.append(span)
    if len(ranges) == 1 and ranges[0].step == 1:
        return ranges[0]  # the common case, already sorted and unique
    unique: set[int] = set()
    for span in ranges:
        unique.update(span)
    return sorted(unique)


def format_frames(frames: Sequence[int]) -> str:
    """The shortest-ish text that `parse_frames` reads back as `frames` (sorted, unique)."""
    out: list[str] = []
    n = len(frames)
    i = 0
    while i < n:
        first = frames[i]
        if i + 2 < n and frames[i + 1] - first == frames[i + 2] - frames[i + 1]:
            step = frames[i + 1] - first
            j = i + 2
            while j + 1 < n and frames[j + 1] - frames[j] == step:
                j += 1
            out.append(f"{first}-{frames[j]}" if step == 1 else f"{first}-{frames[j]}x{step}")
            i = j + 1
        elif i + 1 < n and frames[i + 1] == first + 1:
            out.append(f"{first}-{first + 1}")
            i += 2
        else:
            out.append(str(first))
            i += 1
    return ",".join(out)


def blender_frames(frames: Sequence[int]) -> str:
    """Blender's `-f` text for sorted unique frames: runs as `a..b`, the rest comma-separated."""
    if frames and frames[-1] - frames[0] == len(frames) - 1:
        return f"{frames[0]}..{frames[-1]}" if len(frames) > 1 else str(frames[0])
    out: list[str] = []
    for first, last in runs(frames):
        out.append(f"{first}..{last}" if last > first else str(first))
    return ",".join(out)


def runs(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted unique frames as (first, last) pairs."""
    out: list[tuple[int, int]] = []
    if not frames:
        return out
    start = prev = frames[0]
    for f in frames[1:]:
        if f != prev + 1:
            out.append((start, prev))
            start = f
        prev = f
    out.append((start, prev))
    return out


@dataclass(frozen=True, slots=True)
class Chunk:
    """Frames rendered by one task."""

    frames: Sequence[int]

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    @property
    def contiguous(self) -> bool:
        return self.frames[-1] - self.frames[0] == len(self.frames) - 1

    @property
    def blender(self) -> str:
        return blender_frames(self.frames)

    @property
    def name(self) -> str:
        if len(self.frames) == 1:
            return f"frame {self.frames[0]}"
        return f"frames {format_frames(self.frames)}"


def chunk_frames(frames: Sequence[int], chunk_size: int, *, split_at_gaps: bool = False) -> list[Chunk]:
    """Consecutive slices of at most `chunk_size` frames, in order.

    With `split_at_gaps`, a chunk never spans a missing frame, so its first..last range holds exactly its
    frames (what a program given only `{start}` and `{end}` needs).
    """
    return list(iter_chunks(frames, chunk_size, split_at_gaps=split_at_gaps))


def iter_chunks(frames: Sequence[int], chunk_size: int, *, split_at_gaps: bool = False) -> Iterator[Chunk]:
    """`chunk_frames` one chunk at a time, so a compiler never holds a million of them."""
    if chunk_size < 1:
        raise ValueError("chunk size must be ≥ 1")
    if chunk_size == 1:
        yield from (Chunk((f,)) for f in frames)
    elif not split_at_gaps:
        yield from (Chunk(frames[i : i + chunk_size]) for i in range(0, len(frames), chunk_size))
    elif isinstance(frames, range) and frames.step == 1:  # one run: no need to look for gaps
        for start in range(frames.start, frames.stop, chunk_size):
            yield Chunk(range(start, min(start + chunk_size, frames.stop)))
    else:
        for first, last in runs(frames):
            for start in range(first, last + 1, chunk_size):
                yield Chunk(range(start, min(start + chunk_size - 1, last) + 1))


def chunk_bounds(frames: Sequence[int], chunk_size: int, *, split_at_gaps: bool = False) -> tuple[int, Chunk, Chunk]:
    """How many chunks `iter_chunks` cuts, with its first and last, without cutting them all (what a job type's
    size estimate needs): arithmetic for one run, one pass over the runs otherwise. `frames` is not empty."""
    first = next(iter_chunks(frames, chunk_size, split_at_gaps=split_at_gaps))
    if chunk_size == 1:
        return len(frames), first, Chunk((frames[-1],))
    if not split_at_gaps or (isinstance(frames, range) and frames.step == 1):
        count = -(-len(frames) // chunk_size)
        return count, first, Chunk(frames[(count - 1) * chunk_size :])
    spans = runs(frames)
    count = sum(-(-(last - start + 1) // chunk_size) for start, last in spans)
    start, last = spans[-1]
    return count, first, Chunk(range(start + (last - start) // chunk_size * chunk_size, last + 1))
