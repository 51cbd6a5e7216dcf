"""`tablao server` and the Server's local admin commands (`tablao users|tokens|managers ...`).

The admin commands work on the database of a Server that has started at least once: they never make one. Their
`--data-dir` is the Server's own folder, or a local farm's folder (what `tablao all-in-one --data-dir` was given),
whose Server keeps its database in `server/`; with neither they refuse in one line (`server_database_dir`).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from services.localfarm.layout import DATA_DIR_ENV, FarmLayout
from services.localfarm.ports import busy_message
from services.protocol import cli_args, process_guard, tls
from services.protocol.admin import UserUpdate
from services.protocol.common import INT_MAX
from services.protocol.farm import NAME_PATTERN, ManagerCreate, TokenCreate, UserCreate
from services.protocol.secret_files import write_secret
from services.protocol.states import Role
from services.protocol.terminal_text import escaped
from services.server.config import ServerConfig, load_variables
from services.server.policy import FarmPolicy, PolicyError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from services.server.db.tables import UserRow

FULL_BELOW = 1024 * 1024  # bytes free under which SQLite's "disk I/O error" is put down to a full disk
ALEMBIC_TABLE = "alembic_version"  # every database a Server has started on has this table


def _storage_args(parser: argparse.ArgumentParser, data_dir_help: str) -> None:
    parser.add_argument("--data-dir", type=Path, help=data_dir_help)
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://user@host/db (env TABLAO_DATABASE_URL)")


def _config(args: argparse.Namespace, **extra: object) -> ServerConfig:
    return ServerConfig.from_env(data_dir=args.data_dir, database_url=args.database_url, **extra)


def _policy(path: Path, roots: list[str], *, required: bool) -> FarmPolicy:
    if path.is_file() or required:
        return FarmPolicy.load(path, roots)
    return FarmPolicy(output_roots=tuple(roots))


def _database_problem(exc: BaseException, cfg: ServerConfig) -> str:
    """The error in plain words when it is the database's (full disk, damaged file, unreachable), else as is."""
    from services.server.db.engine import sqlite_url
    from services.server.db.problems import describe, safe_url

    where = safe_url(cfg.database_url) if cfg.database_url else sqlite_url(cfg.data_dir).removeprefix("sqlite:///")
    found = describe(exc, where)
    if found is None and not cfg.database_url and "disk I/O error" in str(exc):
        # SQLite says only "disk I/O error" when it cannot grow its WAL or shared-memory file on a full disk
        with contextlib.suppress(OSError):
            if shutil.disk_usage(cfg.data_dir).free < FULL_BELOW:
                return f"the disk holding the database {where} is full (disk I/O error): free some space"
    return found or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _farm_folder_problem(cfg: ServerConfig) -> str | None:
    """A local farm's folder given as --data-dir: a Server there made a second, empty database beside the farm's
    (and the admin commands then found two and blamed older versions)."""
    from services.server.db.engine import SQLITE_NAME

    if cfg.database_url or (cfg.data_dir / SQLITE_NAME).exists():
        return None
    farm_server = FarmLayout(cfg.data_dir).server_dir
    if not (farm_server / SQLITE_NAME).is_file():
        return None
    return (
        f"{cfg.data_dir} is a local farm's folder, whose Server keeps its database in {farm_server}: give "
        f"--data-dir {farm_server} for that Server, or run the whole farm with tablao all-in-one --data-dir "
        f"{cfg.data_dir}"
    )


def build_parser() -> argparse.ArgumentParser:
    """`tablao server`'s arguments (`tablao service install server` checks a unit's flags with it too)."""
    parser = cli_args.Parser(prog="tablao server", description="Run the Tablao Server.")
    _storage_args(parser, "where the Server keeps its database and admin.token")
    parser.add_argument(
        "--host",
        type=cli_args.listen_host,
        default="127.0.0.1",
        help="address to listen on (0.0.0.0 or :: for the network; [::1] or ::1 for IPv6)",
    )
    parser.add_argument("--port", type=cli_args.port, default=None, help="port to listen on (default 8470)")
    parser.add_argument(
        "--lease-seconds", type=cli_args.positive_float, default=None, help="a Manager silent this long loses its tasks"
    )
    parser.add_argument(
        "--variables", type=Path, default=None,
        help='JSON file of the farm\'s path variables, published to clients (env TABLAO_VARIABLES)',
    )  # fmt: skip
    parser.add_argument(
        "--policy", type=Path, help="the farm's trust policy, TOML (default: policy.toml in the data dir)"
    )
    parser.add_argument(
        "--output-root", action="append", default=[], metavar="DIR",
        help="jobs may write only under these folders (repeatable; path variables allowed)",
    )  # fmt: skip
    tls.tls_args(parser, client=False)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if problem := tls.listen_problem(args.host, args.tls_cert, args.tls_key, insecure_http=args.insecure_http):
        print(f"tablao server: cannot start: {problem}", file=sys.stderr)
        return 2
    try:
        variables = load_variables(args.variables) if args.variables else None
        cfg = _config(args, host=args.host, port=args.port, lease_seconds=args.lease_seconds, variables=variables)
    except ValueError as exc:
        print(f"tablao server: {exc}", file=sys.stderr)
        return 2
    try:
        cfg.policy = _policy(args.policy or cfg.data_dir / "policy.toml", args.output_root, required=bool(args.policy))
    except PolicyError as exc:
        print(f"tablao server: cannot start: {exc}", file=sys.stderr)
        return 2
    if problem := _farm_folder_problem(cfg):
        print(f"tablao server: cannot start: {problem}", file=sys.stderr)
        return 2
    # before the database and the admin token are made, and the address announced: uvicorn's own words came after
    if cfg.port and (busy := busy_message(cfg.host, cfg.port, "Server", choose="--port N")):
        print(f"tablao server: cannot start: {busy}", file=sys.stderr)
        return 2
    # the admin token and a database URL's password were read; keep them from other processes of this user
    process_guard.forget_env(["TABLAO_ADMIN_TOKEN", "TABLAO_DATABASE_URL"])
    process_guard.harden()
    process_guard.private_files()  # the database, its WAL and logs: 0600
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # seven "setup plugin alembic.autogenerate.…" lines at every start said nothing to an admin; the migrations a
    # start runs ("Running upgrade …") are still said
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    from services.protocol import gc_tuning
    from services.protocol.serving import quick_server
    from services.server.app import create_app

    try:
        app = create_app(cfg)
    except Exception as exc:  # a readable line instead of a traceback: bad URL, unreachable database
        print(f"tablao server: cannot start: {_database_problem(exc, cfg)}", file=sys.stderr)
        return 1
    token_note = "preset by TABLAO_ADMIN_TOKEN" if cfg.admin_token else str(cfg.data_dir / "admin.token")
    address = f"{tls.scheme(args.tls_cert)}://{cli_args.url_host(cfg.host)}:{cfg.port}"
    print(f"Tablao Server on {address} (admin token: {token_note})", flush=True)
    try:
        server = quick_server(
            app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False,
            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
        )  # fmt: skip
    except ValueError as exc:  # TABLAO_REQUEST_IDLE_SECONDS
        print(f"tablao server: {exc}", file=sys.stderr)
        return 2
    gc_tuning.settle_long_lived()
    server.run()
    return 0


# the admin commands' arguments, by the field of the API's model they fill
_ARGUMENTS = {"name": "NAME", "user": "USER", "password": "--password", "role": "--role"}
_NAME_RULE = "1 to 64 letters, digits, '.', '_', '@' or '-', beginning with a letter or digit"


def _unencodable(args: argparse.Namespace, names: dict[str, str]) -> str | None:
    """The first argument holding bytes that are not text (a lone surrogate from the command line), if any."""
    for key, value in vars(args).items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return names.get(key, "--" + key.replace("_", "-"))
    return None


def _admin_input_problem(kind: str, args: argparse.Namespace) -> str | None:
    """What the HTTP API would refuse in these arguments, checked by the API's own models; None when fine."""
    names = dict(_ARGUMENTS)
    if kind == "tokens":
        names["name"] = "--name"
    names["password"] = getattr(args, "password_from", names["password"])
    if (bad := _unencodable(args, names)) is not None:
        return f"{bad} is not valid text (it holds bytes that are not UTF-8)"
    model: type[BaseModel] | None = None
    fields: dict[str, object] = {}
    if kind == "users" and args.verb == "add":
        model, fields = UserCreate, {"name": args.name, "role": args.role, "password": args.password}
    elif kind == "users" and args.verb == "password":
        model, fields = UserUpdate, {"password": args.password}
    elif kind == "managers" and args.verb == "add":
        model, fields = ManagerCreate, {"name": args.name}
    elif kind == "tokens" and args.verb == "create":
        model, fields = TokenCreate, {"user": args.user, "name": args.name}
    elif kind == "tokens" and args.verb == "revoke" and not 0 <= args.id <= INT_MAX:
        return f"id: no token has the id {args.id}"
    token_file = getattr(args, "token_file", None) if kind == "managers" else None
    if token_file is not None and (problem := _new_file_problem(token_file)):
        return f"--token-file {token_file}: {problem}"
    if model is None:
        return None
    try:
        model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        pattern = (error.get("ctx") or {}).get("pattern")
        why = _NAME_RULE if pattern == NAME_PATTERN else error["msg"]
        if error["type"] == "string_too_short":
            why = f"it has fewer than {(error.get('ctx') or {}).get('min_length')} characters"
        value = error.get("input")
        # the value helps find a typo; a password is never shown, nor a value too long to read
        shown = f" {value!r}" if field != "password" and isinstance(value, str) and len(value) <= 64 else ""
        return f"{names.get(field, field)}{shown} is refused: {why}"
    return None


def _new_file_problem(path: Path) -> str | None:
    """Why a new Manager's token may not be written at `path`: it was renamed over whatever was there (a device
    such as /dev/full, a symbolic link, another file) and missing folders were made (a typing error succeeded)."""
    if str(path) == "":
        return "give a file's path"
    if path.is_symlink():
        return "is a symbolic link: give the path of the file to write"
    if path.exists():
        what = "a folder" if path.is_dir() else "a file" if path.is_file() else "a device, pipe or socket"
        return f"is {what} already; give a new file's path (remove the old file first to reuse its name)"
    if not path.parent.is_dir():
        return f"its folder {path.parent} does not exist"
    return None


def _new_password() -> tuple[str, str]:
    """The password `tablao users password` sets when --password is not given, and where it came from: typed
    twice at a terminal (not shown, nor kept in the shell's history), else the first line of standard input (a
    script's pipe)."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise ValueError("no password: give --password, or one line on standard input")
        return line.rstrip("\r\n"), "the password on standard input"
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ; nothing was changed")
    return first, "the password typed"


class NoServerDatabase(ValueError):
    """The admin commands' folder holds no Server database (or two): the message says which folder to give."""


def server_database_dir(data_dir: Path, named: str) -> Path:
    """The folder of the Server's SQLite database that `data_dir` means: itself when the database is there, else
    the `server/` folder of the local farm whose folder it is. `named` says where `data_dir` came from, for the
    message of NoServerDatabase when neither holds one (or both do). Looks only: nothing is created."""
    from services.server.db.engine import SQLITE_NAME

    if data_dir.exists() and not data_dir.is_dir():
        raise NoServerDatabase(f"{data_dir} ({named}) is not a folder")
    own, farm = data_dir / SQLITE_NAME, FarmLayout(data_dir).server_dir / SQLITE_NAME
    if own.is_file() and farm.is_file():
        raise NoServerDatabase(
            f"{data_dir} ({named}) holds two Server databases, {own} and {farm} (its local farm's): give the folder "
            "of the one the Server uses (admin commands of earlier versions made a database wherever they were told)"
        )
    if own.is_file():
        return data_dir
    if farm.is_file():
        return farm.parent
    raise NoServerDatabase(
        f"no Server database in {data_dir} ({named}; nor in its server/ folder): give the --data-dir the Server "
        "runs with, or the folder given to `tablao all-in-one` (a Server on PostgreSQL: its --database-url, or "
        "TABLAO_DATABASE_URL); a Server makes its database when it first starts"
    )


LOCAL_ACTOR = "(the Server's machine)"  # who changes users here: no user's name (their pattern has no brackets)


def _user_named(session: Session, name: str) -> UserRow:
    """The user named exactly, else the one named so in other case (`bob` finds `Bob`); StoreError for none or
    several (a farm from before names had to differ by more than case), listing them."""
    from services.server.store import auth

    return auth.user_named(session, name)


def _print_tokens(session: Session, user: str | None) -> None:
    from sqlalchemy import select

    from services.server.db.tables import ApiTokenRow, UserRow

    query = select(ApiTokenRow, UserRow.name).join(UserRow, UserRow.id == ApiTokenRow.user_id).order_by(ApiTokenRow.id)
    if user is not None:
        query = query.where(ApiTokenRow.user_id == _user_named(session, user).id)
    print("id\tuser\tname\tcreated\tlast used\texpires")
    for token, name in session.execute(query):
        when = [f"{t:%Y-%m-%d %H:%M}" if t else "-" for t in (token.created, token.last_used, token.expires)]
        print("\t".join([str(token.id), name, escaped(token.name) or "-", *when]))  # a label: anyone's own words


def admin_main(kind: str, argv: list[str]) -> int:
    """Local admin commands, run on the Server's machine against its database."""
    parser = argparse.ArgumentParser(prog=f"tablao {kind}")
    verbs = {"users": "add|list|password|disable|enable", "tokens": "create|list|revoke", "managers": "add|list"}[kind]
    sub = parser.add_subparsers(dest="verb", required=True, metavar=verbs)  # named in "arguments are required"
    if kind == "users":
        p = sub.add_parser("add", help="add a user")
        p.add_argument("name")
        p.add_argument("--role", required=True, choices=[r.value for r in Role])
        p.add_argument(
            "--password",
            help="for logging in from the desktop app (optional, 8 characters or more); it shows in `ps` and the "
            "shell's history: `users password NAME` asks for it instead",
        )
        sub.add_parser("list", help="list users")
        p = sub.add_parser("password", help="set a user's password, for logging in from the desktop app")
        p.add_argument("name")
        p.add_argument(
            "--password",
            help="the new password (8 characters or more; it shows in `ps` and the shell's history); without it, "
            "asked for twice, or read from standard input",
        )
        for verb, what in (
            ("disable", "refuse a user's logins and tokens"),
            ("enable", "let a disabled user in again"),
        ):
            sub.add_parser(verb, help=what).add_argument("name")
    elif kind == "tokens":
        p = sub.add_parser("create", help="create an API token for a user and print it")
        p.add_argument("user")
        p.add_argument("--name", default="")
        p = sub.add_parser("list", help="list API tokens (never their secrets): id, user, name, last used, expiry")
        p.add_argument("user", nargs="?", help="only this user's")
        p = sub.add_parser("revoke", help="revoke an API token by its id (from `tokens list`)")
        p.add_argument("id", type=int)
    elif kind == "managers":
        p = sub.add_parser("add", help="register a Manager and print its token (shown once)")
        p.add_argument("name")
        p.add_argument("--token-file", type=Path, help="write the token to this file (mode 0600) instead")
        sub.add_parser("list", help="list Managers")
    for p in sub.choices.values():
        _storage_args(p, "the Server's data directory, or a local farm's folder (its Server's is server/ in it)")
    args = parser.parse_args(argv)
    if kind == "users" and args.verb == "password" and args.password is None:
        try:
            args.password, args.password_from = _new_password()
        except ValueError as exc:
            print(f"tablao {kind}: {exc}", file=sys.stderr)
            return 2
        except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at the prompt
            print(f"\ntablao {kind}: no password given; nothing was changed", file=sys.stderr)
            return 2
    if problem := _admin_input_problem(kind, args):
        print(f"tablao {kind}: {problem}", file=sys.stderr)
        return 2
    try:
        cfg = _config(args)
    except ValueError as exc:  # an environment variable or the TABLAO_VARIABLES file
        print(f"tablao {kind}: {exc}", file=sys.stderr)
        return 2

    from alembic.util import CommandError
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from services.server.db.engine import SQLITE_NAME, make_engine, sqlite_url
    from services.server.db.migrate import SchemaProblem, upgrade
    from services.server.db.problems import safe_url
    from services.server.store import auth, farm
    from services.server.store.errors import StoreError
    from services.server.store.sessions import open_sessions

    process_guard.private_files()  # the WAL and shared-memory files SQLite makes beside the database: 0600
    if not cfg.database_url:
        named = "--data-dir" if args.data_dir else f"the default: {DATA_DIR_ENV} or the user data folder, then server/"
        try:
            cfg.data_dir = server_database_dir(cfg.data_dir, named)
        except NoServerDatabase as exc:
            print(f"tablao {kind}: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # a folder on the way that cannot be read
            print(f"tablao {kind}: cannot use {cfg.data_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        engine = make_engine(cfg.database_url or sqlite_url(cfg.data_dir))
    except Exception as exc:  # a readable line instead of a traceback: a URL that does not parse, a missing driver
        if cfg.database_url:
            source = "--database-url" if args.database_url else "TABLAO_DATABASE_URL"
            where = f"{source} {safe_url(cfg.database_url)!r} is not usable"
        else:
            where = f"cannot open the database in {cfg.data_dir}"
        print(f"tablao {kind}: {where}: {safe_url(_database_problem(exc, cfg))}", file=sys.stderr)
        return 2
    try:
        if not inspect(engine).has_table(ALEMBIC_TABLE):  # a database no Server has started on: not ours to make
            where = safe_url(cfg.database_url) if cfg.database_url else str(cfg.data_dir / SQLITE_NAME)
            print(
                f"tablao {kind}: {where} holds no Tablao Server database: start the Server on it once first "
                "(it makes its tables), or give the database it uses",
                file=sys.stderr,
            )
            engine.dispose()
            return 2
        upgrade(engine)
    except (SQLAlchemyError, OSError, CommandError, SchemaProblem) as exc:  # SchemaProblem: a newer Tablao's
        print(f"tablao {kind}: {_database_problem(exc, cfg)}", file=sys.stderr)
        engine.dispose()
        return 1
    _, writers = open_sessions(engine)
    try:
        with writers() as session:
            if kind == "users" and args.verb == "add":
                user = auth.add_user(session, args.name, Role(args.role), args.password)
                print(f"user {user.name} ({user.role}) added")
            elif kind == "users" and args.verb == "password":
                from services.server.store.admin import change_user

                found = _user_named(session, args.name)
                # the actor matters only to a change of role (no admin demotes themselves): a password is not one
                change_user(session, found.id, UserUpdate(password=args.password), actor=auth.ADMIN_NAME)
                print(f"password of user {found.name} set: log in with it from the desktop app")
            elif kind == "users" and args.verb in ("disable", "enable"):
                from services.server.store.admin import change_user

                found = _user_named(session, args.name)
                change_user(session, found.id, UserUpdate(disabled=args.verb == "disable"), actor=LOCAL_ACTOR)
                # as for a revoked token: a running Server trusts a checked token for a few seconds more
                later = " (a Server running on this database refuses their tokens within seconds)"
                print(f"user {found.name} {args.verb}d" + (later if args.verb == "disable" else ""))
            elif kind == "users":
                from sqlalchemy import select

                from services.server.db.tables import UserRow

                for u in session.scalars(select(UserRow).order_by(UserRow.name)):
                    print(f"{u.name}\t{u.role}" + ("\tdisabled" if u.disabled else ""))
            elif kind == "tokens" and args.verb == "create":
                if args.name == auth.PRESET_NAME:  # as POST /tokens: revoking it would only expire it
                    raise StoreError(f"the name {auth.PRESET_NAME!r} is kept for TABLAO_ADMIN_TOKEN's token")
                found = _user_named(session, args.user)
                _, token = auth.create_token(session, found, args.name)
                print(token)
                if sys.stdout.isatty():  # to a person, not to `> ana.token`: where it goes next
                    print(f"(the token of {found.name}, shown once: keep it in a file for --token-file, or in "
                          "TABLAO_TOKEN)", file=sys.stderr)  # fmt: skip
            elif kind == "tokens" and args.verb == "revoke":
                auth.revoke_token(session, args.id)
                print(f"token {args.id} revoked (a Server running on this database refuses it within seconds)")
            elif kind == "tokens":
                _print_tokens(session, args.user)
            elif kind == "managers" and args.verb == "add":
                row, token = farm.create_manager(session, args.name)
                if args.token_file:
                    write_secret(args.token_file, token)
                    print(f"manager {row.name} (id {row.id}) added; token written to {args.token_file}")
                else:
                    print(token)
            else:
                for m in farm.list_managers(session, cfg.lease_seconds):
                    print(f"{m.id}\t{m.name}\t{m.status}")
            session.commit()
    except StoreError as exc:
        print(f"tablao {kind}: {exc.message}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"tablao {kind}: {_database_problem(exc, cfg)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
