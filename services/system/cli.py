"""`tablao service install|remove server|manager|worker`: run a Tablao service at boot (or login) on this machine.

Linux: a systemd unit (/etc/systemd/system, or ~/.config/systemd/user with --user), enabled and started with
systemctl. macOS: a launchd plist (/Library/LaunchDaemons, or ~/Library/LaunchAgents with --user), loaded with
launchctl. The unit runs this same installation (the bundle's `tablao`, or this Python environment) with
`--data-dir` and the flags given after `--`, which are checked first as the service will check them at its start
(flags.py): a unit that would only crash-loop is not written. `--root DIR` writes under DIR instead and runs nothing:
for packagers and tests. Installing over an installed service restarts it with the new file (its old flags ran on
otherwise); removing stops and disables the service, `--no-start` or not, and deletes its file; its data directory
is kept.
"""

from __future__ import annotations

import argparse
import getpass
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from services.system.flags import DATA_DIR_BEFORE, flags_problem
from services.system.units import ROLES, ServiceSpec, launchd_plist_bytes, systemd_unit

PROG = "tablao service"


def tablao_program() -> list[str]:
    """The command that runs `tablao` from this very installation, as a service manager will start it."""
    if getattr(sys, "frozen", False):  # the PyInstaller bundle: the console program is `tablao` itself
        return [str(Path(sys.executable).with_name("tablao" + (".exe" if os.name == "nt" else "")))]
    script = Path(sys.executable).with_name("tablao")
    if script.exists():  # a virtual environment's entry-point script
        return [str(script)]
    return [sys.executable, "-m", "app.cli"]


def default_platform() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def default_data_dir(role: str, user_scope: bool, instance: str) -> Path:
    name = role + (f"-{instance}" if instance else "")
    if user_scope:
        from platformdirs import user_data_dir

        return Path(user_data_dir("tablao")) / name
    return Path("/Library/Application Support/tablao" if sys.platform == "darwin" else "/var/lib/tablao") / name


def service_path(spec: ServiceSpec, platform: str, root: Path | None) -> Path:
    """Where the unit or plist goes; under `root` when given."""
    home = Path.home()
    if platform == "systemd":
        folder = home / ".config/systemd/user" if spec.user_scope else Path("/etc/systemd/system")
        path = folder / f"{spec.name}.service"
    else:
        folder = home / "Library/LaunchAgents" if spec.user_scope else Path("/Library/LaunchDaemons")
        path = folder / f"{spec.label}.plist"
    if root is None:
        return path
    return root / (path.relative_to(home) if spec.user_scope else path.relative_to(path.anchor))


def _ctl(spec: ServiceSpec) -> list[str]:
    return ["systemctl", "--user"] if spec.user_scope else ["systemctl"]


def _commands(spec: ServiceSpec, platform: str, path: Path, install: bool) -> list[list[str]]:
    """The service manager's commands that enable and (re)start (or stop and disable) the service."""
    if platform == "systemd":
        ctl = _ctl(spec)
        if install:
            # restart, not `enable --now`: that leaves a running service as it is, on its old flags; restart starts
            # a stopped one too
            return [
                [*ctl, "daemon-reload"],
                [*ctl, "enable", f"{spec.name}.service"],
                [*ctl, "restart", f"{spec.name}.service"],
            ]
        return [[*ctl, "disable", "--now", f"{spec.name}.service"], [*ctl, "daemon-reload"]]
    domain = f"gui/{os.getuid()}" if spec.user_scope else "system"
    if install:
        return [["launchctl", "bootstrap", domain, str(path)]]
    return [["launchctl", "bootout", f"{domain}/{spec.label}"]]


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    flags: list[str] = []
    if "--" in argv:  # everything after `--` goes to the service itself
        cut = argv.index("--")
        argv, flags = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=["install", "remove"])
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--user", action="store_true", help="a per-user service, started at login (no root needed)")
    parser.add_argument("--instance", default="", help="a name for a second service of one role on this machine")
    parser.add_argument("--data-dir", type=Path, help="the service's data directory (default: per role)")
    parser.add_argument("--run-as", default="", help="system services: the account to run as (default: you)")
    parser.add_argument("--platform", choices=["systemd", "launchd"], default=default_platform())
    parser.add_argument("--root", type=Path, help="write under this folder and run no service manager")
    parser.add_argument(
        "--no-start",
        action="store_true",
        help="install: write the file only; enable, start or restart nothing (remove stops the service all the same)",
    )
    return parser.parse_args(argv), flags


def main(argv: list[str]) -> int:
    args, flags = parse(argv)
    if any(f == "--data-dir" or f.startswith("--data-dir=") for f in flags):  # abbreviations: flags_problem
        print(f"{PROG}: {DATA_DIR_BEFORE}", file=sys.stderr)
        return 2
    if os.name == "nt":
        print(f"{PROG}: not on Windows; run the Server or Manager with a Windows service wrapper", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or default_data_dir(args.role, args.user, args.instance)).absolute()
    run_as = "" if args.user else (args.run_as or os.environ.get("SUDO_USER") or getpass.getuser())
    if args.action == "install" and run_as == "root" and not args.run_as:
        # an admin logged in as root (no sudo, so no SUDO_USER) would get services running as root unasked
        print(
            f"{PROG}: a system service would run as root; make an account for it (e.g. `useradd --system "
            "--create-home tablao`) and give --run-as tablao, or give --run-as root if root is meant "
            "(a worker that starts tasks as other users with its own --run-as needs that)",
            file=sys.stderr,
        )
        return 2
    try:
        spec = ServiceSpec(
            role=args.role,
            argv=(*tablao_program(), args.role, "--data-dir", str(data_dir), *flags),
            data_dir=data_dir,
            user_scope=args.user,
            instance=args.instance,
            run_as=run_as,
        )
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.action == "install" and (
        problem := flags_problem(args.role, flags, data_dir=str(data_dir), check_files=args.root is None)
    ):
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    if args.action == "install" and args.root is None and (problem := _unusable(spec)):
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    path = service_path(spec, args.platform, args.root)
    # a removed unit's service must not run on: remove stops it whatever --no-start says (it ran on, unseen)
    run = args.root is None and (args.action == "remove" or not args.no_start)
    if run and shutil.which("systemctl" if args.platform == "systemd" else "launchctl") is None:
        print(f"{PROG}: {args.platform} is not available here; use --root DIR to only write the file", file=sys.stderr)
        return 1
    try:
        if args.action == "install":
            _install(spec, args.platform, path, data_dir if args.root is None else None, run)
        elif not _remove(spec, args.platform, path, run):
            return 1
    except PermissionError as exc:
        print(f"{PROG}: {exc.strerror}: {exc.filename} (system services need root; or use --user)", file=sys.stderr)
        return 1
    except OSError as exc:  # a folder on the way that is a file, a read-only disk...
        print(f"{PROG}: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1
    except LookupError as exc:  # the --run-as account went away since it was checked
        print(f"{PROG}: --run-as: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{PROG}: `{shlex.join(exc.cmd)}` failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    return 0


def _unusable(spec: ServiceSpec) -> str | None:
    """Why this machine cannot take the service as given (an account or a data directory), or None."""
    if spec.run_as and not spec.user_scope:
        import pwd

        try:
            pwd.getpwnam(spec.run_as)
        except KeyError:
            return f"--run-as: no user {spec.run_as!r} on this machine (create the account first)"
    if Path(spec.data_dir).exists() and not Path(spec.data_dir).is_dir():
        return f"--data-dir: {spec.data_dir} is not a directory"
    return None


def _install(spec: ServiceSpec, platform: str, path: Path, data_dir: Path | None, run: bool) -> None:
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not spec.user_scope and spec.run_as and os.geteuid() == 0:
            shutil.chown(data_dir, spec.run_as)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = systemd_unit(spec).encode() if platform == "systemd" else launchd_plist_bytes(spec)
    replaced = path.exists()
    if replaced and run and platform == "launchd":  # launchd refuses to bootstrap a label already loaded
        subprocess.run(_commands(spec, platform, path, install=False)[0], check=False, capture_output=True)
    path.write_bytes(content)
    path.chmod(0o644)
    print(f"{'replaced' if replaced else 'wrote'} {path}")
    for command in _commands(spec, platform, path, install=True) if run else []:
        subprocess.run(command, check=True)
    if run:
        print(f"{spec.name}: enabled and " + ("restarted with the new file" if replaced else "started"))
    elif replaced and data_dir is not None:  # not under --root: a service of the old file may be running
        print(f"{spec.name}: not restarted: if it runs, it keeps its old flags until {_restart_hint(spec, platform)}")
    else:
        print(f"{spec.name}: not started (start it with your service manager)")


def _restart_hint(spec: ServiceSpec, platform: str) -> str:
    if platform == "systemd":
        return f"`{shlex.join([*_ctl(spec), 'daemon-reload'])}` and `{shlex.join([*_ctl(spec), 'restart', spec.name])}`"
    return "unloaded and loaded again (`launchctl bootout`, then `launchctl bootstrap`)"


def _remove(spec: ServiceSpec, platform: str, path: Path, run: bool) -> bool:
    if not path.exists():
        print(f"{PROG}: no {path}: {spec.name} is not installed", file=sys.stderr)
        return False
    said: list[tuple[list[str], int]] = []
    for command in _commands(spec, platform, path, install=False) if run else []:
        # already stopped or never loaded is fine: the file goes anyway
        said.append((command, subprocess.run(command, check=False).returncode))
    data_dir = _installed_data_dir(path, platform) or spec.data_dir
    path.unlink()
    if run and platform == "systemd":
        subprocess.run(_commands(spec, platform, path, install=False)[-1], check=False)
    if failed := [(command, code) for command, code in said if code != 0]:
        command, code = failed[0]
        print(f"{spec.name}: `{shlex.join(command)}` exited with {code} (it was not running, or could not be stopped)")
    elif run:
        print(f"{spec.name}: stopped and disabled")
    print(f"removed {path}; the data directory {data_dir} is kept")
    return True


def _installed_data_dir(path: Path, platform: str) -> str | None:
    """The --data-dir the installed service runs with (it was installed with its own, perhaps), None if unread."""
    try:
        if platform == "launchd":
            argv = list(plistlib.loads(path.read_bytes()).get("ProgramArguments") or [])
        else:
            line = next(x for x in path.read_text().splitlines() if x.startswith("ExecStart="))
            # systemd's own escapes of % and $ (units.py), then the shell-like quoting
            argv = shlex.split(line.removeprefix("ExecStart=").replace("%%", "%").replace("$$", "$"))
    except (OSError, ValueError, StopIteration, plistlib.InvalidFileException):
        return None
    for i, arg in enumerate(argv):
        if arg == "--data-dir" and i + 1 < len(argv):
            return str(argv[i + 1])
        if isinstance(arg, str) and arg.startswith("--data-dir="):
            return arg.removeprefix("--data-dir=")
    return None
