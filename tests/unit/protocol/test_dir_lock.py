"""One process per data folder: the lock names its holder, survives a probe, and goes with a killed holder."""

from __future__ import annotations

import contextlib
import errno
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.protocol import dir_lock
from services.protocol.dir_lock import DirLock, InUse, holder_pid

_HOLD = """
import sys, time
from collections.abc import Iterator
from pathlib import Path
from services.protocol.dir_lock import DirLock
DirLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


@contextlib.contextmanager
def _holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock until the block ends (or it is killed inside it)."""
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            yield proc
        finally:
            proc.kill()


def test_one_holder_at_a_time_and_the_refusal_names_it(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with _holder(path) as proc:
        with pytest.raises(InUse) as refused:
            DirLock(path).acquire(patience=0.1)
        assert refused.value.pid == proc.pid
        assert f"process {proc.pid}" in str(refused.value)
        assert DirLock(path).held_elsewhere()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    with _holder(path) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lock = DirLock(path)
    assert not lock.held_elsewhere()
    lock.acquire(patience=0)
    assert lock.held and holder_pid(path) is not None
    lock.release()


def test_a_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = DirLock(path)
    first.acquire()
    try:
        with pytest.raises(InUse):
            DirLock(path).acquire(patience=0.05)
    finally:
        first.release()
    again = DirLock(path)
    again.acquire(patience=0)
    again.release()


def test_a_file_system_without_locks_is_used_unguarded_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # NFS without its lock service answers ENOLCK: that is not "another process runs here"
    def no_locks(fd: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(dir_lock, "_lock", no_locks)
    lock = DirLock(tmp_path / "x.lock")
    assert not lock.held_elsewhere()
    lock.acquire(patience=0)
    assert lock.held
    assert "cannot lock" in caplog.text and "would not be refused" in caplog.text
    lock.release()
