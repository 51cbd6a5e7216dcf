"""`tablao service install/remove` writes correct systemd units and launchd plists, under a temporary root only."""

from __future__ import annotations

import importlib.util
import plistlib
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import trustme

from services.system import cli
from services.system.flags import flags_problem
from services.system.units import ServiceSpec, systemd_unit
from tests.support.services import ROOT, child_env, tablao_command


@pytest.fixture(autouse=True)
def _run_by_sudo(monkeypatch: pytest.MonkeyPatch) -> None:
    """As an admin runs `sudo tablao service install`; these tests run as root, which a unit needs asked for."""
    monkeypatch.setenv("SUDO_USER", "daemon")


def _unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def _verify(unit: Path) -> None:
    """systemd's own check of a unit file: any complaint (even one systemd would ignore) fails the test."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


@pytest.mark.timeout(60)
def test_system_unit_runs_this_installation_with_its_data_and_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data dir" / "manager"
    flags = ["--server", "http://srv:8470", "--token-file", "/etc/tablao/room a.token", "--name", "50%$HOME"]
    root = str(tmp_path / "root")
    assert cli.main(["install", "manager", "--root", root, "--data-dir", str(data), "--", *flags]) == 0
    unit = tmp_path / "root" / "etc" / "systemd" / "system" / "tablao-manager.service"
    text = unit.read_text()
    [exec_start] = _unit_values(text, "ExecStart")
    unescaped = shlex.split(exec_start.replace("%%", "%").replace("$$", "$"))
    assert unescaped == [*cli.tablao_program(), "manager", "--data-dir", str(data), *flags]
    assert _unit_values(text, "WorkingDirectory") == [str(data)]
    assert _unit_values(text, "Restart") == ["on-failure"]
    assert _unit_values(text, "KillSignal") == ["SIGTERM"]
    assert _unit_values(text, "WantedBy") == ["multi-user.target"]
    assert len(_unit_values(text, "User")) == 1
    assert not data.exists(), "with --root nothing outside the root is created"
    assert "not started" in capsys.readouterr().out
    _verify(unit)

    assert cli.main(["remove", "manager", "--root", str(tmp_path / "root")]) == 0
    assert not unit.exists()
    # the folder the unit ran with, not the default one (a newcomer was told of /var/lib/tablao/manager)
    assert f"the data directory {data} is kept" in capsys.readouterr().out
    assert cli.main(["remove", "manager", "--root", str(tmp_path / "root")]) == 1
    assert "not installed" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_user_unit_goes_to_the_users_systemd_folder(tmp_path: Path) -> None:
    argv = ["install", "worker", "--user", "--instance", "gpu2", "--root", str(tmp_path), "--data-dir", "/w"]
    assert cli.main([*argv, "--", "--manager", "http://m:8471", "--tags", "gpu"]) == 0
    unit = tmp_path / ".config" / "systemd" / "user" / "tablao-worker-gpu2.service"
    text = unit.read_text()
    assert _unit_values(text, "WantedBy") == ["default.target"]
    assert _unit_values(text, "User") == []
    assert "Description=Tablao worker (gpu2)" in text
    _verify(unit)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("user", [False, True])
def test_launchd_plists(tmp_path: Path, user: bool) -> None:
    argv = ["install", "server", "--platform", "launchd", "--root", str(tmp_path), "--data-dir", "/srv/t"]
    assert cli.main([*argv, *(["--user"] if user else ["--run-as", "_tablao"]), "--", "--port", "8470"]) == 0
    folder = tmp_path / ("Library/LaunchAgents" if user else "Library/LaunchDaemons")
    with (folder / "org.tablao.server.plist").open("rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == "org.tablao.server"
    assert plist["ProgramArguments"] == [*cli.tablao_program(), "server", "--data-dir", "/srv/t", "--port", "8470"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ExitTimeOut"] == 60 and plist["WorkingDirectory"] == "/srv/t"
    assert plist["StandardErrorPath"] == "/srv/t/tablao-server.log"
    assert ("UserName" in plist) is (not user)
    if not user:
        assert plist["UserName"] == "_tablao"
    assert "TABLAO_WORKER_SUPERSEDED_EXIT" not in plist["EnvironmentVariables"]


def test_a_launchd_worker_exits_cleanly_when_another_process_took_its_identity(tmp_path: Path) -> None:
    """KeepAlive restarts after any failure and has no RestartPreventExitStatus: exit 78 would be a restart
    every few seconds for good (tests/integration/test_worker_agent.py runs the worker with this variable)."""
    argv = ["install", "worker", "--platform", "launchd", "--root", str(tmp_path), "--data-dir", "/srv/w"]
    assert cli.main([*argv, "--run-as", "_tablao", "--", "--manager", "https://m:8471"]) == 0
    with (tmp_path / "Library/LaunchDaemons/org.tablao.worker.plist").open("rb") as f:
        plist = plistlib.load(f)
    assert plist["EnvironmentVariables"]["TABLAO_WORKER_SUPERSEDED_EXIT"] == "0"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["install", "worker", "--instance", "../etc", "--root", "R"], "--instance"),
        (["install", "worker", "--root", "R", "--data-dir", "/tmp/$x"], "--data-dir"),
        (["install", "server", "--root", "R", "--", "--data-dir", "/x"], "before `--`"),
        (["install", "server", "--root", "R", "--run-as", "root\nExecStartPre=/bin/touch /tmp/pwned"], "--run-as"),
        (["install", "server", "--root", "R", "--run-as", "root\n"], "--run-as"),
        (["install", "server", "--root", "R", "--run-as", "a b"], "--run-as"),
        (["install", "server", "--root", "R", "--run-as=-rf"], "--run-as"),
        (["install", "server", "--root", "R", "--run-as", "x" * 33], "--run-as"),
        (["install", "server", "--platform", "launchd", "--root", "R", "--run-as", "r\x1bt"], "--run-as"),
        (["install", "worker", "--root", "R", "--instance", "gpu2\n"], "--instance"),
        (["install", "worker", "--root", "R", "--data-dir", "/srv/t\x1b"], "--data-dir"),
        (["install", "server", "--root", "R", "--", "--port", "8470\nExecStartPre=/bin/true"], "flags"),
        (["install", "server", "--root", "R", "--", "--name", "tab\there"], "flags"),
        (["install", "server", "--platform", "launchd", "--root", "R", "--", "--name", "a\x00b"], "flags"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [str(tmp_path) if a == "R" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.rglob("*.service")) and not any(tmp_path.rglob("*.plist"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--run-as", "nosuchuser-tablao"], "--run-as: no user 'nosuchuser-tablao'"), ([], "is not a directory")],
)
def test_installing_for_real_checks_the_account_and_the_data_dir_first(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    """No --root: the account must exist here and the data directory be one; nothing is written otherwise."""
    unit = tmp_path / "etc" / "tablao-server.service"
    monkeypatch.setattr(cli, "service_path", lambda *_args: unit)  # never the real /etc/systemd/system
    data = tmp_path / "data"
    if not extra:
        data.write_text("keep me")  # a file where the data directory should be
    assert cli.main(["install", "server", "--no-start", "--data-dir", str(data), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not unit.exists()
    assert data.read_text() == "keep me" if not extra else not data.exists()


def test_flags_after_the_double_dash_stay_one_word_each_in_the_unit() -> None:
    """The unit's text takes the flags as given (`tablao service install` checked them first), each one word."""
    flags = ("--port", "abc", "--bogus", "", "a;b", "--name=x y")
    spec = ServiceSpec("server", ("/opt/tablao/tablao", "server", *flags), PurePosixPath("/srv/t"), False)
    [exec_start] = _unit_values(systemd_unit(spec), "ExecStart")
    assert shlex.split(exec_start) == ["/opt/tablao/tablao", "server", *flags]


def test_unknown_role_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["install", "database"])
    assert exc.value.code == 2
    assert "invalid choice: 'database'" in capsys.readouterr().err


def test_spec_refuses_a_relative_data_dir() -> None:
    with pytest.raises(ValueError, match="absolute"):
        ServiceSpec("server", ("tablao", "server"), PurePosixPath("relative/dir"), user_scope=False)


def test_shipped_templates_are_what_the_code_writes() -> None:
    path = ROOT / "packaging" / "make_service_templates.py"
    spec = importlib.util.spec_from_file_location("make_service_templates", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    templates: dict[str, bytes] = module.templates()
    assert len(templates) == 6
    for name, content in templates.items():
        shipped = (ROOT / "packaging" / "services" / name).read_bytes()
        assert shipped == content, f"run packaging/make_service_templates.py: {name} differs"
    assert "User=tablao" in systemd_unit(
        ServiceSpec("server", ("/opt/tablao/tablao", "server"), PurePosixPath("/var/lib/x"), False, run_as="tablao")
    )


@pytest.mark.parametrize(
    ("role", "flags", "says"),
    [
        ("server", ["--hots", "0.0.0.0"], "`tablao server` refuses the flags after `--`: unrecognized arguments"),
        ("server", ["--port", "99999"], "`tablao server` refuses the flags after `--`: argument --port:"),
        ("server", ["--host", "0.0.0.0"], "`tablao server` would not start: listening on 0.0.0.0 without TLS"),
        ("server", ["--host", "0.0.0.0", "--tls-cert", "/c.pem"], "--tls-cert and --tls-key go together"),
        ("server", ["--help"], "they ask it for its help"),
        ("manager", ["--server", "https://s:8470"], "required: --token-file"),
        ("manager", ["--server", "https://s:8470", "--token-file", "/t", "--host", "10.0.0.5"], "without TLS"),
        ("manager", ["--server", "ftp://s", "--token-file", "/t"], "--server: 'ftp://s' is not an http"),
        ("worker", ["--registration-secret-file", "/s"], "required: --manager"),
        ("worker", [], "`tablao worker` needs flags, given after `--` (`tablao service install worker -- FLAGS`)"),
        ("worker", ["--manager", "https://m:8471", "--render-priority", "high"], "argument --render-priority"),
        ("worker", ["--manager", "m:8471"], "--manager: 'm:8471' is not an http"),
        ("worker", ["--manager", "https://w:pw@m:8471"], "must not carry a user name or password"),
        ("manager", ["--server", "https://s:8470/?x=1", "--token-file", "/t"], "must not carry a query"),
        ("server", ["--port", "0"], "--port 0 would listen on another free port at each start"),
        ("manager", ["--server", "https://s:8470", "--token-file", "/t", "--port", "0"], "--port 0 would listen"),
    ],
)
@pytest.mark.parametrize("platform", ["systemd", "launchd"])
def test_flags_the_service_would_refuse_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], role: str, flags: list[str], says: str, platform: str
) -> None:
    """A unit whose service exits at start would only crash-loop: checked with the service's own parser."""
    argv = ["install", role, "--platform", platform, "--root", str(tmp_path), "--no-start", "--data-dir", "/srv/t"]
    assert cli.main([*argv, "--", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("tablao service: ") and says in captured.err and captured.err.count("\n") == 1
    assert captured.out == "" and list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize(
    ("role", "flags"),
    [
        ("server", ["--host", "0.0.0.0", "--tls-cert", "/etc/tablao/s.pem", "--tls-key", "/etc/tablao/s-key.pem"]),
        ("server", ["--host", "0.0.0.0", "--insecure-http"]),
        ("server", []),
        ("manager", ["--server", "https://s:8470", "--ca-bundle", "/etc/tablao/ca.pem", "--token-file", "/t",
                     "--host", "0.0.0.0", "--tls-cert", "/etc/tablao/m.pem", "--tls-key", "/etc/tablao/m-key.pem"]),
        ("worker", ["--manager", "https://m:8471", "--ca-bundle", "/etc/tablao/ca.pem",
                    "--registration-secret-file", "/etc/tablao/s", "--output-root", "{render_root}"]),
    ],
)  # fmt: skip
def test_good_flags_are_written_and_another_machines_certificates_are_not_looked_for_under_root(
    tmp_path: Path, role: str, flags: list[str]
) -> None:
    assert cli.main(["install", role, "--root", str(tmp_path), "--data-dir", "/srv/t", "--", *flags]) == 0
    assert (tmp_path / "etc" / "systemd" / "system" / f"tablao-{role}.service").is_file()


def test_installing_for_real_looks_for_the_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = tmp_path / "etc" / "tablao-server.service"
    monkeypatch.setattr(cli, "service_path", lambda *_args: unit)  # never the real /etc/systemd/system
    cert, key = tmp_path / "s.pem", tmp_path / "s-key.pem"
    flags = ["--host", "0.0.0.0", "--tls-cert", str(cert), "--tls-key", str(key)]
    argv = ["install", "server", "--no-start", "--data-dir", str(tmp_path / "data"), "--", *flags]
    assert cli.main(argv) == 2
    assert f"--tls-cert: {cert} not found" in capsys.readouterr().err
    assert not unit.exists() and not (tmp_path / "data").exists()
    cert.write_text("cert")
    key.write_text("key")
    assert cli.main(argv) == 2  # files the service could not load: said now, not at its first start
    assert f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate" in capsys.readouterr().err
    issued = trustme.CA().issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    assert cli.main(argv) == 0
    assert unit.is_file()


def test_the_newcomers_typo_is_refused_by_the_real_command(tmp_path: Path) -> None:
    """`tablao service install server --root R --no-start -- --hots 0.0.0.0` used to write the unit, rc 0."""
    argv = ["service", "install", "server", "--root", str(tmp_path), "--no-start", "--", "--hots", "0.0.0.0"]
    r = subprocess.run(tablao_command(*argv), cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (
        "tablao service: `tablao server` refuses the flags after `--`: unrecognized arguments: --hots 0.0.0.0\n"
    )
    assert list(tmp_path.rglob("*")) == []


def _documented_installs() -> list[list[str]]:
    """The `tablao service install` commands of docs/operations.md's services section, as argument lists."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## The Server, Managers and Workers as services", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    found = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [words[words.index("install") :] for words in found if "install" in words]


def test_the_documented_service_examples_and_shipped_templates_would_start() -> None:
    """docs/operations.md's examples used to listen on 0.0.0.0 without TLS: units that crash-loop."""
    installs = _documented_installs()
    assert [argv[1] for argv in installs] == ["server", "manager", "worker"]
    for argv in installs:
        args, flags = cli.parse(argv)
        assert flags_problem(args.role, flags, data_dir="/srv/t", check_files=False) is None, argv
        if args.role == "worker":
            assert "--output-root" in flags and "--ca-bundle" in flags
        assert not any(f.startswith("http://") for f in flags), argv
    path = ROOT / "packaging" / "make_service_templates.py"
    spec = importlib.util.spec_from_file_location("make_service_templates", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for role, flags in module.EXAMPLE_FLAGS.items():
        assert flags_problem(role, flags, data_dir="/srv/t", check_files=False) is None, role


@pytest.mark.parametrize("again", [["--data-dir=/tmp/other"], ["--data", "/tmp/abbr"], ["--data-d=/tmp/abbr"]])
def test_the_data_directory_is_not_given_again_after_the_double_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], again: list[str]
) -> None:
    """The worker would take the last one, while the unit's working directory, the folder made for it and
    `service remove` go by the install's --data-dir."""
    argv = ["install", "worker", "--root", str(tmp_path), "--data-dir", "/srv/w", "--"]
    assert cli.main([*argv, "--manager", "https://m:8471", *again]) == 2
    err = capsys.readouterr().err
    assert "give --data-dir before `--`" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("*")) == []


def test_a_system_service_runs_as_root_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin logged in as root (no sudo): the unit said User=root without a word."""
    monkeypatch.delenv("SUDO_USER")
    monkeypatch.setattr("getpass.getuser", lambda: "root")
    argv = ["install", "server", "--root", str(tmp_path), "--data-dir", "/srv/t"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "would run as root" in err and "--run-as" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("*")) == []
    assert cli.main([*argv, "--run-as", "root"]) == 0
    unit = tmp_path / "etc/systemd/system/tablao-server.service"
    assert _unit_values(unit.read_text(), "User") == ["root"]
    assert cli.main(["install", "server", "--user", "--root", str(tmp_path), "--data-dir", "/srv/u"]) == 0
    assert cli.main(["remove", "server", "--root", str(tmp_path), "--data-dir", "/srv/t"]) == 0


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--name", "a b"], "--name: 'a b' must be"),
        (["--tags", "a;b"], "--tags"),
        (["--task-types", "Blender"], "--task-types: 'Blender' is no task type"),
        (["--render-threads", "0"], "--render-threads must be within 1..4096"),
    ],
)
def test_a_worker_unit_whose_worker_would_refuse_its_flags_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], said: str
) -> None:
    """From an admin/artist audit: `service install worker -- --name "a b"` wrote the unit (exit 0), whose worker
    then refused its flags at every start and was restarted every 5 s for ever."""
    argv = ["install", "worker", "--root", str(tmp_path), "--data-dir", "/srv/w", "--", "--manager", "https://m:8471"]
    assert cli.main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert "`tablao worker` would not start: " in err and said in err and err.count("\n") == 1, err
    assert not any(tmp_path.rglob("*.service"))
