"""`tablao all-in-one --headless` refuses a data directory it cannot use in one line, before starting anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.localfarm import cli


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)  # the command makes its files private (umask 077) before it looks at the data directory


@pytest.mark.parametrize("env", [False, True])
def test_a_data_dir_that_is_a_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: bool
) -> None:
    data = tmp_path / "data"
    data.write_text("keep me")
    if env:
        monkeypatch.setenv("TABLAO_DATA_DIR", str(data))
    argv = ["--headless", "--workers", "0", *([] if env else ["--data-dir", str(data)])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(data) in err and "not a directory" in err
    assert ("TABLAO_DATA_DIR" if env else "--data-dir") in err
    assert data.read_text() == "keep me"


def test_a_data_dir_below_a_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("keep me")
    assert cli.main(["--headless", "--workers", "0", "--data-dir", str(blocker / "farm")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot use the data directory {blocker / 'farm'}" in err
    assert blocker.read_text() == "keep me"


def test_a_data_dir_that_takes_no_farm_folder_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing folder where the farm's own cannot be made (here a file holds its name; a read-only or system
    folder the same): it was `cannot start the farm: [Errno 17] File exists: '…/farm'`."""
    (tmp_path / "farm").write_text("keep me")
    assert cli.main(["--headless", "--workers", "0", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot use the data directory {tmp_path}: File exists" in err, err
    assert "Errno" not in err and "--data-dir" in err
    assert (tmp_path / "farm").read_text() == "keep me"
