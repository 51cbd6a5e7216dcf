"""The update buffer's check before a start: a first start is silent; a buffer that existed and is now missing,
empty or damaged is refused in one line, unless --fresh-buffer sets it aside (never deleted)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.protocol.worker_client import WorkerClient
from services.worker import buffer_check
from services.worker.buffer import open_buffer


def made(data_dir: Path) -> Path:
    """A buffer opened once (as a worker's first start leaves it), holding one update."""
    buf = open_buffer(data_dir, WorkerClient("http://127.0.0.1:9"))
    buf.put(1, 1, status="completed")
    buf.close()
    assert (data_dir / buffer_check.MARKER_NAME).exists()
    return buffer_check.buffer_path(data_dir)


def test_a_first_start_and_a_buffer_from_before_the_marker_pass(tmp_path: Path) -> None:
    assert buffer_check.check_buffer(tmp_path, fresh=False) is None
    assert not (tmp_path / buffer_check.MARKER_NAME).exists()  # written once the buffer exists
    path = made(tmp_path)
    (tmp_path / buffer_check.MARKER_NAME).unlink()  # an older worker's data folder
    assert buffer_check.check_buffer(tmp_path, fresh=False) is None
    assert path.exists()


@pytest.mark.parametrize(
    ("harm", "says"),
    [
        (lambda p: p.unlink(), "is missing"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"garbage, not SQLite " * 300), "is damaged (file is not a database)"),
    ],
)
def test_a_lost_or_damaged_buffer_is_refused_and_fresh_sets_it_aside(tmp_path: Path, harm, says: str) -> None:
    path = made(tmp_path)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    harm(path)
    with pytest.raises(buffer_check.BufferUnusable) as refused:
        buffer_check.check_buffer(tmp_path, fresh=False)
    line = str(refused.value)
    assert "\n" not in line and str(path) in line and says in line and "--fresh-buffer" in line, line
    aside = buffer_check.check_buffer(tmp_path, fresh=True)
    assert not path.exists()
    if says != "is missing":
        assert aside is not None and aside.exists() and aside.name.startswith("updates.sqlite.damaged-")
    assert buffer_check.check_buffer(tmp_path, fresh=False) is None  # stopped before the new one was made
    made(tmp_path)  # the next start creates an empty one, which passes from then on
    assert buffer_check.check_buffer(tmp_path, fresh=False) is None


def test_a_buffer_missing_its_tables_is_refused(tmp_path: Path) -> None:
    path = made(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE updates")
    conn.close()
    with pytest.raises(buffer_check.BufferUnusable, match=r"tables missing: updates"):
        buffer_check.check_buffer(tmp_path, fresh=False)
