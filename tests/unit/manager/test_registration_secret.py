"""The worker registration secret file (services/manager/app.py, services/protocol/secret_files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.manager.app import registration_secret
from services.manager.config import ManagerConfig


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    cfg = ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path / "m")
    first = registration_secret(cfg)
    path = cfg.registration_secret_file()
    assert len(first) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert registration_secret(cfg) == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left beside it


@pytest.mark.parametrize("left", ["", "\n", "  \n"])
def test_an_empty_secret_file_a_crash_left_is_replaced(
    tmp_path: Path, left: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An older Manager made the file and died before writing it: no worker could ever register."""
    cfg = ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path)
    cfg.registration_secret_file().write_text(left)
    secret = registration_secret(cfg)
    assert len(secret) >= 32
    assert cfg.registration_secret_file().read_text().strip() == secret
    assert "was empty" in caplog.text
    assert registration_secret(cfg) == secret
