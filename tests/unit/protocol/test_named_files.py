"""A file named on a command line is read no further than its limit, and each failure is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.protocol.named_files import KIB, UnreadableFile, read_named_text


def test_text_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    f = tmp_path / "job.json"
    f.write_text("é" * 512, encoding="utf-8")  # 1024 bytes: exactly the limit
    assert read_named_text(f, KIB, "a job") == "é" * 512


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_file_is_refused_at_the_limit() -> None:
    """`/dev/zero` was read until memory ran out; its size (0) says nothing."""
    with pytest.raises(UnreadableFile) as caught:
        read_named_text(Path("/dev/zero"), 64 * KIB, "an API token file")
    assert str(caught.value) == "cannot read /dev/zero: it is over 64 KiB, so not an API token file"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"a" * (KIB + 1), "it is over 1 KiB, so not a job"),
        (b"BLENDER-v300\xff\xfe\x00", "it is not text (UTF-8), so not a job"),
    ],
)
def test_a_file_too_big_or_not_text_is_named(tmp_path: Path, content: bytes, reason: str) -> None:
    f = tmp_path / "scene.blend"
    f.write_bytes(content)
    with pytest.raises(UnreadableFile) as caught:
        read_named_text(f, KIB, "a job")
    assert caught.value.reason == reason and str(caught.value) == f"cannot read {f}: {reason}"


def test_a_missing_file_or_a_folder_says_why(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="No such file or directory"):
        read_named_text(tmp_path / "nope", KIB, "a job")
    with pytest.raises(UnreadableFile, match="Is a directory"):
        read_named_text(tmp_path, KIB, "a job")
