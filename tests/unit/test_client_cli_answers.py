"""The client commands (`tablao jobs|job|submit`) against a Server whose answers are wrong: not JSON, not the
expected shape, too big, too slow, or carrying terminal control characters. Each ends in one line, exit 1, soon."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from services import client_cli

ESCAPES = "\u001b]0;pwned\u0007\u001b[2J\u001b[31mred\nsecond line"
JOB = {
    "id": 1, "name": "shot", "type": "exec", "settings": {}, "priority": 50, "submitter": "ana", "tags": [],
    "manager_id": None, "depends_on": [], "max_task_failures": 3, "on_task_failure": "fail-job",
    "status": "queued", "activity": "", "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
    "tasks_total": 1, "tasks_completed": 0, "tasks_failed": 0, "tasks_active": 0,
}  # fmt: skip
TASK = {
    "id": 7, "job_id": 1, "index": 0, "name": ESCAPES, "type": "exec", "status": "queued", "attempt": 0,
    "failure_count": 0, "manager_id": None, "worker_id": "w", "worker_name": ESCAPES, "activity": ESCAPES,
    "steps_done": 0, "steps_total": 1, "updated": "2024-01-01T00:00:00Z",
}  # fmt: skip


class _Fake(http.server.BaseHTTPRequestHandler):
    """Answers every request with `answer` (status, body); `drip` sends the body a byte at a time."""

    answer: ClassVar[tuple[int, bytes]] = (200, b"")
    drip: ClassVar[float] = 0.0
    length: ClassVar[int | None] = None  # Content-Length to announce; None: the body's own, -1: none (close)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.length != -1:
            self.send_header("Content-Length", str(len(body) if self.length is None else self.length))
        self.end_headers()
        try:
            if not self.drip:
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.drip)
        except OSError:
            pass  # the client gave up: what the test wants

    do_GET = do_POST = _answer


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TABLAO_TOKEN", "tbl_test")
    monkeypatch.delenv("TABLAO_SERVER", raising=False)
    monkeypatch.setenv("TABLAO_CLIENT_DEADLINE", "2")
    monkeypatch.setattr(_Fake, "answer", (200, b""))
    monkeypatch.setattr(_Fake, "drip", 0.0)
    monkeypatch.setattr(_Fake, "length", None)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _run(command: str, argv: list[str], server: str, tmp_path: Path) -> int:
    if command == "submit":
        job = tmp_path / "job.json"
        job.write_text(json.dumps({"name": "a", "type": "exec", "settings": {}, "priority": 50}))
        argv = [str(job), *argv]
    return client_cli.main(command, [*argv, "--server", server])


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err[:2000]
    assert "\x1b" not in err and "\x07" not in err
    return lines[0]


COMMANDS = [("jobs", []), ("job", ["1"]), ("submit", [])]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("command", "argv"), COMMANDS)
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"<html><body>a proxy's page</body></html>", "not JSON"),
        (200, b"\x00\xff{{", "not JSON"),
        (200, b"null", "valid dictionary"),
        (200, b"[1,2,3]", "valid dictionary"),
        (200, b'{"items":[{"id":"x","name":null,"status":5}],"next_cursor":null}', "more"),
        (200, b"[" * 100_000, "nested too deeply"),
        (201, b'{"id":"x"}', "items: Field required"),
    ],
)
def test_an_answer_that_is_not_a_servers_is_one_line(
    command: str,
    argv: list[str],
    status: int,
    body: bytes,
    reason: str,
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_Fake, "answer", (status, body))
    assert _run(command, argv, server, tmp_path) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"tablao {command}: the Server's answer is not what a Tablao Server sends (")
    assert reason in line or command != "jobs"


@pytest.mark.timeout(30)
def test_more_jobs_than_asked_for_are_refused_before_validation(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # validating 300,000 bad items would take gigabytes (pydantic lists every problem of every one)
    monkeypatch.setattr(_Fake, "answer", (200, json.dumps({"items": [{"id": 1}] * 300_000}).encode()))
    started = time.monotonic()
    assert _run("jobs", ["--limit", "50"], server, tmp_path) == 1
    line = _one_line(capsys.readouterr().err)
    assert "300,000 items where at most 50 were asked for" in line
    assert time.monotonic() - started < 10


@pytest.mark.timeout(30)
@pytest.mark.parametrize("length", [None, -1], ids=["announced", "unannounced"])
def test_an_answer_over_the_cap_is_refused(
    length: int | None,
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(client_cli, "MAX_ANSWER", 2**20)
    monkeypatch.setattr(_Fake, "answer", (200, b'{"items":[' + b'{"id":1},' * 300_000 + b"{}]}"))
    monkeypatch.setattr(_Fake, "length", length)
    assert _run("jobs", [], server, tmp_path) == 1
    line = _one_line(capsys.readouterr().err)
    assert "the Server's answer is not what a Tablao Server sends" in line and "1 MiB" in line


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("command", "argv"), COMMANDS)
def test_a_dripping_answer_ends_at_the_deadline(
    command: str,
    argv: list[str],
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a byte every 0.2 s resets httpx's read timeout each time; the deadline (2 s here) holds
    monkeypatch.setattr(_Fake, "answer", (200, b" " * 1000))
    monkeypatch.setattr(_Fake, "drip", 0.2)
    started = time.monotonic()
    assert _run(command, argv, server, tmp_path) == 1
    assert time.monotonic() - started < 6
    line = _one_line(capsys.readouterr().err)
    assert "did not come in whole within 2 s" in line


def test_the_deadline_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLAO_CLIENT_DEADLINE", raising=False)
    assert client_cli.deadline("jobs") == client_cli.DEADLINE
    assert client_cli.deadline("submit") == client_cli.SUBMIT_DEADLINE
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv("TABLAO_CLIENT_DEADLINE", bad)
        with pytest.raises(SystemExit, match="TABLAO_CLIENT_DEADLINE"):
            client_cli.deadline("jobs")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("command", "argv"), COMMANDS)
def test_control_characters_in_an_error_are_escaped(
    command: str,
    argv: list[str],
    server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_Fake, "answer", (400, json.dumps({"detail": ESCAPES, "errors": []}).encode()))
    assert _run(command, argv, server, tmp_path) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == f"tablao {command}: \\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\nsecond line (HTTP 400)"


@pytest.mark.timeout(30)
def test_control_characters_in_a_job_list_are_escaped(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job = {**JOB, "name": ESCAPES, "submitter": "ana\u202e", "type": "ex\rec"}
    monkeypatch.setattr(_Fake, "answer", (200, json.dumps({"items": [job], "next_cursor": None}).encode()))
    assert _run("jobs", [], server, tmp_path) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\nsecond line" in out and "ana\\u202e" in out


@pytest.mark.timeout(30)
def test_control_characters_in_a_job_are_escaped(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    detail = {
        **JOB, "name": ESCAPES, "activity": ESCAPES, "tasks": [TASK], "tasks_next_cursor": None,
        "log": [{"time": "2024-01-01T00:00:00Z", "user": ESCAPES, "message": ESCAPES}],
    }  # fmt: skip
    monkeypatch.setattr(_Fake, "answer", (200, json.dumps(detail).encode()))
    assert _run("job", ["1"], server, tmp_path) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "second line" not in out.replace("\\nsecond line", "")
    # the name, the activity, the task's name, worker and activity, the log entry's user and message
    assert out.count("\\x1b]0;pwned") == 7


def test_a_job_shows_where_its_output_goes(capsys: pytest.CaptureFixture[str]) -> None:
    """A newcomer looked for where `tablao job N` said the frames go: its output settings, as submitted."""
    from services.protocol.jobs import JobDetail

    settings = {"blendfile": "/p/a.blend", "output_path": "{render_root}/sh010/frame_####", "chunk_size": 2}
    detail = {**JOB, "settings": settings, "tasks": [], "tasks_next_cursor": None, "log": []}
    client_cli.print_job(JobDetail.model_validate(detail))
    out = capsys.readouterr().out
    assert "  output_path: {render_root}/sh010/frame_####\n" in out and "blendfile" not in out


def test_a_job_shows_the_tags_and_jobs_it_waits_for(capsys: pytest.CaptureFixture[str]) -> None:
    """A newcomer's job asking for a tag no worker had stayed queued, and `tablao job N` showed nothing of why."""
    from services.protocol.jobs import JobDetail

    waiting = {"tags": ["gpu", "rtx-4090"], "depends_on": [16, 17], "manager_id": 2}
    detail = {**JOB, **waiting, "tasks": [], "tasks_next_cursor": None, "log": []}
    client_cli.print_job(JobDetail.model_validate(detail))
    out = capsys.readouterr().out
    assert "  needs tags: gpu, rtx-4090\n" in out and "  waits for jobs: 16, 17\n" in out
    assert "  only on Manager 2\n" in out
    client_cli.print_job(JobDetail.model_validate({**JOB, "tasks": [], "tasks_next_cursor": None, "log": []}))
    assert "needs tags" not in capsys.readouterr().out


@pytest.mark.timeout(30)
def test_a_job_list_cut_at_its_limit_says_more_jobs_match(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a CLI audit: 50 jobs shown of more, and nothing said; a wrangler took them for all."""
    monkeypatch.setattr(_Fake, "answer", (200, json.dumps({"items": [JOB], "next_cursor": "abc"}).encode()))
    assert _run("jobs", ["--limit", "1"], server, tmp_path) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2  # the table alone, for a script
    assert (
        captured.err == "(the newest 1 shown; more jobs match: --limit up to 1000 or --status / --search to narrow)\n"
    )
    monkeypatch.setattr(_Fake, "answer", (200, json.dumps({"items": [JOB], "next_cursor": None}).encode()))
    assert _run("jobs", [], server, tmp_path) == 0
    assert capsys.readouterr().err == ""


def test_a_job_with_more_tasks_than_shown_says_how_many(capsys: pytest.CaptureFixture[str]) -> None:
    from services.protocol.jobs import JobDetail

    task = {**TASK, "name": "frame 1", "worker_name": "w", "activity": ""}
    detail = {**JOB, "tasks_total": 100_000, "tasks": [task], "tasks_next_cursor": "c", "log": []}
    client_cli.print_job(JobDetail.model_validate(detail))
    assert "    … 99,999 more (`tablao task ID` shows one; the desktop app lists them all)\n" in capsys.readouterr().out
