"""The client commands (`tablao jobs|submit|demo`) refuse a bad --server URL or a job with NaN in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services import client_cli, demo


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_TOKEN", "tbl_test")
    monkeypatch.delenv("TABLAO_SERVER", raising=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "ftp://h", "http://127.0.0.1:1,http://h:x"])
def test_bad_server_url_is_named(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command, argv in (("jobs", ["--server", url]), ("demo", ["--server", url])):
        with pytest.raises(SystemExit) as exited:
            client_cli.main(command, argv) if command == "jobs" else demo.main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "argument --server:" in err.splitlines()[-1]


def test_bad_server_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TABLAO_SERVER", "http://h:abc")
    with pytest.raises(SystemExit):
        client_cli.main("jobs", [])
    assert "'http://h:abc' is not a Server URL" in capsys.readouterr().err


def test_good_server_urls_pass() -> None:
    for url in ("http://127.0.0.1:8470", "https://farm.example", "http://a:1, http://b:2"):
        assert client_cli.server_url(url) == url


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_submit_refuses_numbers_json_cannot_carry(
    number: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "j.json"
    job.write_text(f'{{"name": "a", "type": "exec", "settings": {{"x": [{number}]}}, "priority": 50}}')
    # port 9 (discard): nothing is sent, the file is refused first
    assert client_cli.main("submit", [str(job), "--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(job) in err and "NaN or infinite" in err
    assert len(err.strip().splitlines()) == 1
