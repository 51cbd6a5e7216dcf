"""A file named on a command line is read no further than its limit, and each failure is one line naming it."""

from __future__ import annotations

import os
import threading
import time
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


@pytest.mark.timeout(10)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_no_one_writes_to_reads_as_empty_and_one_written_to_is_read(tmp_path: Path) -> None:
    """From a CLI audit: `tablao jobs --token-file fifo` and `tablao submit fifo` waited for ever, saying nothing."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_named_text(fifo, KIB, "a token") == ""
    # `tablao submit <(make-job)`: a pipe with a writer is read as it comes
    writer = threading.Thread(target=lambda: fifo.write_text('{"name": "a"}'))
    writer.start()
    time.sleep(0.5)  # the writer is waiting at its open
    assert read_named_text(fifo, KIB, "a JSON job") == '{"name": "a"}'
    writer.join(5)
