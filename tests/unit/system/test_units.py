"""`tablao service install/remove` writes correct systemd units and launchd plists, under a temporary root only."""

from __future__ import annotations

import importlib.util
import plistlib
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from services.system import cli
from services.system.units import ServiceSpec, systemd_unit
from tests.support.services import ROOT


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

    assert cli.main(["remove", "manager", "--root", str(tmp_path / "root"), "--data-dir", str(data)]) == 0
    assert not unit.exists()
    assert "is kept" in capsys.readouterr().out
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
    """The service's own flags are not checked here (the service refuses bad ones), but each stays one word."""
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
