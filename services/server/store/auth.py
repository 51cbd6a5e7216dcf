"""Users, roles and API tokens. Tokens are random 256-bit strings stored as SHA-256 hashes, with an optional
expiry; passwords are scrypt hashes, checked in the same time whether the user exists or not."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.secret_files import read_secret, write_secret
from services.protocol.states import Role
from services.server.db.tables import ApiTokenRow, UserRow
from services.server.store import id_floors
from services.server.store.convert import aware
from services.server.store.errors import Conflict, Invalid, NotFound
from services.server.store.unique import add_named

ADMIN_NAME = "admin"
TOKEN_PREFIX = "tbl_"
PRESET_NAME = "preset"  # the token TABLAO_ADMIN_TOKEN installs; revoked, its row stays (expired): see revoke_token

log = logging.getLogger(__name__)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


# Hashed in place of a missing user's or a password-less user's hash, so that the answer takes as long as for
# a real user: the time of a failed login does not tell which user names exist.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; slow by design (scrypt): call it outside any database lock."""
    real = bool(stored) and stored is not None and stored.startswith("scrypt$") and stored.count("$") == 2
    _, salt_hex, digest_hex = (stored if real and stored else _DUMMY_HASH).split("$")
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex) and real


def user_by_name(session: Session, name: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.name == name))


def _same_but_case(session: Session, name: str, limit: int) -> list[UserRow]:
    """Users whose name is `name` in any case, at most `limit`, by name. Names are ASCII (NAME_PATTERN), where
    SQLite's lower() and PostgreSQL's agree."""
    query = select(UserRow).where(func.lower(UserRow.name) == name.lower()).order_by(UserRow.name).limit(limit)
    return list(session.scalars(query))


def user_for_login(session: Session, name: str) -> UserRow | None:
    """The user a login names: user names differ by more than case, so `ana` logs in as `Ana`. (A farm with two
    names in different case from before that rule (migration 0013 kept them) matches the exact one only.)"""
    exact = user_by_name(session, name)
    if exact is not None:
        return exact
    same = _same_but_case(session, name, 2)
    return same[0] if len(same) == 1 else None


AMBIGUOUS_SHOWN = 10  # users listed when a name in other case matches several (a farm from before 0013)


def user_named(session: Session, name: str, field: str = "name") -> UserRow:
    """The user an admin names (`tablao tokens create bob`, POST /tokens): the exact name, else the one user whose
    name is it in other case (`bob` is `Bob`). Invalid naming `field` when there is none, or when a farm from before
    the rule holds several (`Bob`, `BOB`): the message lists them, to be named exactly."""
    exact = user_by_name(session, name)
    if exact is not None:
        return exact
    same = _same_but_case(session, name, AMBIGUOUS_SHOWN + 1)
    if len(same) == 1:
        return same[0]
    if not same:
        raise Invalid(f"no user named {name!r}", field=field)
    names = ", ".join(sorted(u.name for u in same)[:AMBIGUOUS_SHOWN]) + (", ..." if len(same) > AMBIGUOUS_SHOWN else "")
    message = f"{name!r} is ambiguous: it is the name of users {names} in other case; give one exactly"
    raise Invalid(message, field=field)


def add_user(session: Session, name: str, role: Role, password: str | None = None) -> UserRow:
    # names differing only in case would be two people in every list that looks the same (`ana`, `Ana`)
    same = session.scalar(select(UserRow.name).where(func.lower(UserRow.name) == name.lower()))
    if same is not None:
        case = "" if same == name else " (user names must differ by more than case)"
        raise Conflict(f"a user named {same!r} exists already{case}", field="name")
    user = UserRow(name=name, role=role, password_hash=hash_password(password) if password else None, created=utcnow())
    add_named(session, user, f"a user named {name!r}, or the same name in other case, exists already")
    return user


def create_token(
    session: Session, user: UserRow, name: str = "", token: str | None = None, expires: datetime | None = None
) -> tuple[ApiTokenRow, str]:
    """A new token of `user`; Conflict naming `user` for a disabled user (the token would be refused at once,
    and enabling the user later would bring it to life unseen)."""
    if user.disabled:
        raise Conflict(f"user {user.name} is disabled: enable it first", field="user")
    token = token or new_token()
    row = ApiTokenRow(
        id=id_floors.new_token_id(session),
        user_id=user.id,
        name=name,
        token_hash=hash_token(token),
        created=utcnow(),
        expires=expires,
    )
    session.add(row)
    session.flush()
    return row, token


def _token_row(session: Session, token: str) -> ApiTokenRow | None:
    return session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(token)))


def _expired(row: ApiTokenRow) -> bool:
    return row.expires is not None and aware(row.expires) <= utcnow()


def user_for_token(session: Session, token: str) -> tuple[UserRow, ApiTokenRow] | None:
    row = _token_row(session, token)
    if row is None or _expired(row):
        return None
    user = session.get(UserRow, row.user_id)
    return (user, row) if user is not None and not user.disabled else None


def revoke_token(session: Session, token_id: int) -> None:
    """Delete the token; TABLAO_ADMIN_TOKEN's is expired instead, so the next start, finding its hash, does not
    install it again (a leaked preset that was revoked came back as a full admin token at every restart)."""
    # locked: of two revokes at once (PostgreSQL), the second waits and then finds it gone (404), not a second 204
    row = session.get(ApiTokenRow, token_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no token with id {token_id}", field="id")
    if row.name == PRESET_NAME:
        if not _expired(row):
            row.expires = utcnow()
        return
    id_floors.note_deleted(session, id_floors.TOKENS, row.id)  # a retried revoke must not meet a newer token
    session.delete(row)


EXPIRED_TOKENS_KEPT = timedelta(days=30)  # an expired token is listed this long after (who had one, when used)
PRUNE_BATCH = 1000


def prune_expired_tokens(session: Session, kept: timedelta = EXPIRED_TOKENS_KEPT) -> bool:
    """A housekeeping sweep: delete tokens expired longer ago than `kept`, a batch at a time (True: more left).
    Every login makes a token and none was ever deleted: the token list grew by one row per login for good.
    The preset's row stays (its hash keeps TABLAO_ADMIN_TOKEN from being installed again once revoked)."""
    ids = list(
        session.scalars(
            select(ApiTokenRow.id)
            .where(ApiTokenRow.expires < utcnow() - kept, ApiTokenRow.name != PRESET_NAME)
            .order_by(ApiTokenRow.id)
            .limit(PRUNE_BATCH)
        )
    )
    if not ids:
        return False
    id_floors.note_deleted(session, id_floors.TOKENS, ids[-1])
    session.execute(delete(ApiTokenRow).where(ApiTokenRow.id.in_(ids)).execution_options(synchronize_session=False))
    return len(ids) == PRUNE_BATCH


def bootstrap_admin(session: Session, data_dir: Path, preset_token: str | None) -> None:
    """On the first start make an admin and write its token to data_dir/admin.token (mode 0600); at a later
    start, write a new one when the file's token no longer works (revoked, or the file lost or edited).

    With TABLAO_ADMIN_TOKEN set, that token is made valid for the admin instead, once: a revoked one stays
    revoked (the next start only warns), and nothing is written. A disabled or demoted admin stays so, with a
    warning: an admin may do either, and the start must not undo it (a disabled admin's preset token was
    inserted again at every start, which the unique hash refused: the Server could not start)."""
    admin = user_by_name(session, ADMIN_NAME)
    if admin is None:
        admin = add_user(session, ADMIN_NAME, Role.ADMIN)
    source = "TABLAO_ADMIN_TOKEN" if preset_token else str(data_dir / "admin.token")
    if admin.disabled:
        log.warning("the user %s is disabled: %s gives no access until an admin enables it", admin.name, source)
        return
    if admin.role != Role.ADMIN.value:
        log.warning("the user %s has the role %s now: %s gives only that", admin.name, admin.role, source)
    if preset_token:
        row = _token_row(session, preset_token)
        if row is None:
            create_token(session, admin, name=PRESET_NAME, token=preset_token)
        elif row.user_id != admin.id or _expired(row):
            log.warning("TABLAO_ADMIN_TOKEN holds a token that was revoked or expired: it gives no access; set another")
        return
    path = data_dir / "admin.token"
    try:
        existing = read_secret(path)
    except ValueError:  # not text: no token of ours; replaced as a token the database does not know is
        existing = None
    if existing and user_for_token(session, existing) is not None:
        return
    _, token = create_token(session, admin, name="admin.token")
    write_secret(path, token)
