"""The worker registration secret file (services/manager/app.py, services/protocol/secret_files.py)."""

from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"# the farm's secret\nabc\n", "more than one line"),
        (b"abc\x07def\n", "control character"),
        ("é".encode() * 300, "more than the 200"),
        (b"\xff\xfe\x00a", "not UTF-8 text"),
    ],
)
def test_a_hand_edited_secret_no_worker_could_send_stops_the_start(tmp_path: Path, content: bytes, said: str) -> None:
    """Kept, not replaced (every worker of the farm was given it): the admin mends it, told which file."""
    cfg = ManagerConfig(server_url="http://s", token="t", data_dir=tmp_path)
    cfg.registration_secret_file().write_bytes(content)
    with pytest.raises(ValueError, match=said) as caught:
        registration_secret(cfg)
    assert str(cfg.registration_secret_file()) in str(caught.value)
    assert cfg.registration_secret_file().read_bytes() == content


def test_the_manager_command_says_so_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "m"
    data.mkdir()
    (data / "worker-registration.secret").write_bytes(b"\xff\xfe")
    token = tmp_path / "token"
    token.write_text("t" * 20)
    args = ["--server", "http://127.0.0.1:9", "--token-file", str(token), "--data-dir", str(data), "--port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "services.manager.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("tablao manager: cannot start: ") and "not UTF-8 text" in done.stderr
    assert done.stderr.count("\n") == 1
