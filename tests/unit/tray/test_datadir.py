"""The tray's data folder: folders it creates are 0700, an existing (shared) folder keeps its mode, the log is 0600."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.tray.datadir import DataDirError, prepare_data_dir, private_log
from tests.support.file_modes import mode

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def _umask(session_umask: None) -> None:
    """Every test here in a desktop session's umask."""


def test_folders_the_tray_creates_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "share" / "tray"
    prepare_data_dir(folder)
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    assert list(folder.iterdir()) == []  # the write check leaves nothing behind


def test_an_existing_shared_folder_keeps_its_mode(tmp_path: Path) -> None:
    """From an audit: an admin's shared --data-dir (0775) was made 0700 by the tray."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    prepare_data_dir(shared)
    private_log(shared / "worker.log")
    assert mode(shared) == 0o775
    assert mode(shared / "worker.log") == 0o600  # what holds secrets is still private


def test_a_file_is_not_a_data_folder(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(DataDirError, match="it is a file, not a folder"):
        prepare_data_dir(path)
