"""tablao://job/ID links and `tablao LINK` on the command line."""

from __future__ import annotations

import pytest

from app.cli import main
from app.job_links import job_link, job_of


def test_links_name_jobs() -> None:
    assert job_link(12) == "tablao://job/12"
    assert job_of("tablao://job/12") == 12
    assert job_of("TABLAO://job/7/ ") == 7
    for bad in ("tablao://job/", "tablao://job/-1", "tablao://job/1x", "tablao://jobs/1", "http://job/1",
                "tablao://job/" + "9" * 30):  # fmt: skip
        assert job_of(bad) is None, bad


def test_a_bad_link_is_one_line_not_a_window(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tablao://job/abc"]) == 2
    assert "is not a Tablao link (expected tablao://job/ID)" in capsys.readouterr().err
