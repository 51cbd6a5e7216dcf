"""The client commands (`tablao jobs|submit|demo`) refuse bad input in one line: a bad --server URL, a job with
NaN, a token file that is missing or empty; and say so when https meets a plain-HTTP Server."""

from __future__ import annotations

import http.server
import io
import threading
from pathlib import Path

import pytest

from app import cli
from services import client_cli, demo


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLAO_TOKEN", "tbl_test")
    monkeypatch.delenv("TABLAO_SERVER", raising=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:abc",
        "ftp://h",
        "http://127.0.0.1:1,http://h:x",
        "http://admin:secret@h:8470",
        "http://h:8470?token=x",
        "http://h:8470/#top",
        "http://h:0",
    ],
)
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
    err = capsys.readouterr().err
    assert "not a Server URL" in err and "'http://h:abc'" in err


def test_good_server_urls_pass() -> None:
    for url in ("http://127.0.0.1:8470", "https://farm.example", "http://a:1, http://b:2", "https://proxy/tablao/"):
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


def test_an_empty_token_file_is_named_before_any_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    # port 9 (discard): a request would end in "cannot reach the Server"
    assert client_cli.main("jobs", ["--token-file", str(empty), "--server", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err == f"tablao jobs: the API token file {empty} is empty\n"


def test_a_missing_token_file_is_one_prefixed_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.token"
    assert client_cli.main("jobs", ["--token-file", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"tablao jobs: cannot read the API token from {missing}: No such file or directory\n"


def test_a_missing_local_farm_token_says_how_to_start_the_farm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TABLAO_TOKEN")
    monkeypatch.setenv("TABLAO_DATA_DIR", str(tmp_path))
    assert client_cli.main("job", ["13"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tablao job: cannot read the API token from {tmp_path / 'server' / 'admin.token'}: ")
    assert f"is the local farm running? {client_cli.LOCAL_FARM_DOWN.split('? ')[1]} and --token-file" in err
    assert "start it with `tablao all-in-one` (`make run` in a source checkout)" in err
    assert len(err.splitlines()) == 1


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_https_to_a_plain_http_server_hints_at_http(capsys: pytest.CaptureFixture[str]) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)  # answers a TLS hello with a plain-HTTP 400
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert client_cli.main("jobs", ["--server", f"https://127.0.0.1:{port}"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert err.startswith("tablao jobs: cannot reach the Server: ")
    assert err.rstrip().endswith(f"; this Server may not use TLS (try http://127.0.0.1:{port})")


def test_the_help_lists_every_admin_command_the_readme_does() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for command in ("users add", "users list", "tokens create", "managers add", "managers list"):
        assert f"  {command}" in cli.USAGE
        assert f"`tablao {command}" in readme


def test_without_a_running_local_farm_the_default_server_is_8470(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLAO_TOKEN")
    monkeypatch.setenv("TABLAO_DATA_DIR", str(tmp_path))
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "admin.token").write_text("tbl_local\n")
    args = client_cli.build_parser("jobs").parse_args([])
    assert client_cli.connection(args) == ("http://127.0.0.1:8470", "tbl_local")


@pytest.mark.parametrize(("flags", "wanted"), [([], 50), (["--priority", "90"], 90)])
def test_submit_priority_is_the_command_lines_over_a_json_jobs_own(
    flags: list[str], wanted: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tablao submit job.json --priority 90` submitted the file's priority, saying nothing."""
    sent: list[object] = []

    async def submit(_self: object, body: dict[str, object], _key: str | None = None) -> object:
        sent.append(body)
        raise SystemExit("sent")  # nothing to answer with: what was sent is what counts

    monkeypatch.setattr("services.protocol.server_client.ServerClient.submit", submit)
    job = tmp_path / "j.json"
    job.write_text('{"name": "a", "type": "exec", "settings": {"command": ["true"]}, "priority": 50}')
    client_cli.main("submit", [str(job), "--server", "http://127.0.0.1:9", *flags])
    assert [b["priority"] for b in sent] == [wanted]  # type: ignore[index]


def test_a_refusal_names_its_field_and_a_bad_token_how_to_get_one() -> None:
    from services.protocol.common import FieldError
    from services.protocol.server_answers import ApiError

    roots = ApiError(
        422, "'/tmp/x' is outside the farm's output roots (/r)", [FieldError(field="settings.output_path", message="…")]
    )
    assert client_cli._refusal(roots) == "settings.output_path: '/tmp/x' is outside the farm's output roots (/r)"
    named = ApiError(
        422, "settings.frames: range 5-1 ends before it starts", [FieldError(field="settings.frames", message="…")]
    )
    assert client_cli._refusal(named) == "settings.frames: range 5-1 ends before it starts"  # not twice
    assert "`tablao tokens create USER`" in client_cli._refusal(ApiError(401, "the API token is not valid"))


def test_submit_of_a_blend_or_a_huge_file_is_one_line_naming_what_a_job_file_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .blend given by mistake was read whole (4 GB for a big scene) before failing with a decoder's message;
    `/dev/zero` was read until memory ran out."""
    scene = tmp_path / "shot.blend"
    scene.write_bytes(b"BLENDER-v300REND\xff\x00\x10" * 100)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(client_cli.JOB_FILE_BYTES + 1)  # sparse: no disk used
    wanted = "so not a JSON job or an Open Job Description template"
    for path, reason in [(scene, "it is not text (UTF-8)"), (huge, "it is over 64 MiB")]:
        assert client_cli.main("submit", [str(path), "--server", "http://127.0.0.1:9"]) == 1
        err = capsys.readouterr().err
        assert err == f"tablao submit: cannot read {path}: {reason}, {wanted}\n"


def test_a_token_file_that_is_no_token_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.token"
    big.write_text("a" * 70_000)  # was sent as the token; /dev/zero was read until memory ran out
    assert client_cli.main("jobs", ["--token-file", str(big), "--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err == f"tablao jobs: cannot read the API token from {big}: it is over 64 KiB, so not an API token file\n"


SECRET = "tbl_Zq8secretpart"  # what an error line must never show
UNSENDABLE_TOKENS = [
    (f"# the render farm's token\n{SECRET}\n", "more than one line"),  # was "Illegal header value b'Bearer …'"
    (f"{SECRET}é\n", "not ASCII"),  # was a UnicodeEncodeError traceback
    (f"{SECRET} {SECRET}\n", "white space"),
    (f"{SECRET}\x1b\n", "control character"),  # (no environment variable can hold a NUL)
]


@pytest.mark.parametrize(("text", "why"), UNSENDABLE_TOKENS)
def test_a_token_no_header_can_carry_is_named_without_showing_it(
    text: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "api.token"
    path.write_text(text, encoding="utf-8")
    assert client_cli.main("jobs", ["--token-file", str(path), "--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tablao jobs: the API token file {path} is not usable: ") and why in err
    assert err.count("\n") == 1 and "Zq8secret" not in err
    monkeypatch.setenv("TABLAO_TOKEN", text)
    assert client_cli.main("jobs", ["--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tablao jobs: TABLAO_TOKEN is not a usable API token: ") and why in err
    assert err.count("\n") == 1 and "Zq8secret" not in err


@pytest.mark.parametrize(
    ("depth", "why"),
    [(40, "nested more than 32 levels deep"), (950, "nested"), (50_000, "nested too deeply")],
)
def test_submit_of_a_deeply_nested_job_is_one_line(
    depth: int, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 950 levels were a RecursionError traceback in _finite, 50,000 one in json's parser
    job = tmp_path / "deep.json"
    job.write_text('{"name": "a", "type": "exec", "settings": {"x": ' + "[" * depth + "]" * depth + "}}")
    assert client_cli.main("submit", [str(job), "--server", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tablao submit: {job}") and why in err and err.count("\n") == 1


def test_the_local_farms_admin_token_is_never_sent_to_another_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tablao jobs --server http://other:8470` without a token of its own sent that Server the workstation's
    admin token (a mistyped address too). Only a Server on this machine gets it; another asks for its token."""
    monkeypatch.delenv("TABLAO_TOKEN")
    monkeypatch.setenv("TABLAO_DATA_DIR", str(tmp_path / "farm"))
    token_file = tmp_path / "farm" / "server" / "admin.token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("tbl_" + "a" * 43 + "\n")
    seen: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        port = httpd.server_address[1]
        for host in ("10.255.255.1", "farm.example.org", "[2001:db8::1]"):
            assert client_cli.main("jobs", ["--server", f"http://{host}:{port}"]) == 1
            err = capsys.readouterr().err
            assert "is another machine's: give a token of that Server with --token-file or TABLAO_TOKEN" in err
            assert err.count("\n") == 1
        for host in ("127.0.0.1", "localhost"):  # this machine's Server: the local token goes, as before
            assert client_cli.main("jobs", ["--server", f"http://{host}:{port}"]) == 1
        httpd.shutdown()
    assert seen == ["Bearer tbl_" + "a" * 43] * 2


def test_a_refused_token_is_named_by_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stale TABLAO_TOKEN exported long ago was refused with advice to give --token-file or TABLAO_TOKEN, and
    nothing said it was the one in use."""

    class Refuser(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"detail": "the API token is not valid", "errors": [{"field": "token", "message": "x"}]}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    token_file = tmp_path / "mine.token"
    token_file.write_text("tbl_stale\n")
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuser) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        assert client_cli.main("jobs", ["--server", url]) == 1
        assert "(this one is from TABLAO_TOKEN)" in capsys.readouterr().err
        assert client_cli.main("jobs", ["--server", url, "--token-file", str(token_file)]) == 1
        assert f"(this one is from {token_file})" in capsys.readouterr().err
        httpd.shutdown()


@pytest.mark.parametrize(
    ("text", "wanted_type"),
    [
        ('{"name": "a", "type": "exec", "settings": {"command": ["true"]}}', "exec"),
        (
            "specificationVersion: 'jobtemplate-2023-09'\nname: from a pipe\nsteps:\n- name: s\n  script:\n"
            "    actions:\n      onRun:\n        command: 'true'\n",
            "openjd",
        ),
        (  # YAML with its keys quoted: no suffix to go by, and not JSON
            '"specificationVersion": "jobtemplate-2023-09"\n"name": quoted\nsteps:\n- name: s\n  script:\n'
            "    actions:\n      onRun:\n        command: 'true'\n",
            "openjd",
        ),
    ],
)
def test_submit_dash_reads_the_job_or_template_from_standard_input(
    text: str, wanted_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline writes the job and pipes it in (`make-job | tablao submit -`), as kubectl -f - takes one."""
    sent: list[dict[str, object]] = []

    async def submit(_self: object, body: dict[str, object], _key: str | None = None) -> object:
        sent.append(body)
        raise SystemExit("sent")

    async def farm_variables(_self: object) -> dict[str, dict[str, str]]:
        return {}

    monkeypatch.setattr("services.protocol.server_client.ServerClient.submit", submit)
    monkeypatch.setattr("services.protocol.server_client.ServerClient.farm_variables", farm_variables)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    client_cli.main("submit", ["-", "--server", "http://127.0.0.1:9"])
    assert [b["type"] for b in sent] == [wanted_type]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"not json", "standard input is not valid JSON"),
        (b"\xff\xfe", "cannot read standard input: it is not text"),
        (b"{" * 10 + b" " * 2000, "cannot read standard input: it is over 1 KiB"),
    ],
)
def test_submit_dash_names_standard_input_in_its_refusals(
    data: bytes, said: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(client_cli, "JOB_FILE_BYTES", 1024)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert client_cli.main("submit", ["-", "--server", "http://127.0.0.1:9"]) != 0
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "argv", "named"),
    [
        ("jobs", ["--limit", "0"], "--limit"),
        ("jobs", ["--limit", "-1"], "--limit"),
        ("jobs", ["--limit", "1001"], "--limit"),
        ("jobs", ["--status", "bogus"], "--status"),
        ("job", ["-1"], "id"),
        ("job", ["99999999999999999999999"], "id"),
        ("task", ["0"], "id"),
        ("log", ["-3"], "id"),
        ("submit", ["job.json", "--priority", "-5"], "--priority"),
    ],
)
def test_arguments_out_of_range_are_usage_errors_before_any_request(
    command: str, argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a CLI audit: they went to the Server and came back as exit 1 in its words (`job_id: a whole number is
    written in digits only`), naming its field rather than the argument."""
    with pytest.raises(SystemExit) as exited:
        client_cli.main(command, [*argv, "--server", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert f"argument {named}" in last and "Traceback" not in last, last


@pytest.mark.parametrize(
    ("command", "argv", "said"),
    [
        ("workers", ["--action", "sleep"], "need a worker"),
        ("workers", ["--now"], "need a worker"),
        ("workers", ["render-07", "--now"], "--now goes with --action"),
        ("task", ["7", "--reason", "wrong camera"], "--reason goes with --action"),
    ],
)
def test_arguments_that_do_not_go_together_are_usage_errors_before_any_request(
    command: str, argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a CLI audit: exit 1, and `workers x --now` with the Server down said "connection refused" instead."""
    with pytest.raises(SystemExit) as exited:
        client_cli.main(command, [*argv, "--server", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    assert said in capsys.readouterr().err.splitlines()[-1]


def test_help_with_a_command_is_that_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    """From a CLI audit: `tablao help jobs` printed the general help."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["help", "jobs"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: tablao jobs ")


@pytest.mark.parametrize(("command", "argv"), [("jobs", ["--token-file", ""]), ("submit", [""])])
def test_an_empty_file_argument_is_named_as_empty(
    command: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """From a CLI audit: `--token-file ""` said "cannot read the API token from .: Is a directory"."""
    with pytest.raises(SystemExit) as exited:
        client_cli.main(command, [*argv, "--server", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    assert "give a file's path (it is empty)" in capsys.readouterr().err.splitlines()[-1]
