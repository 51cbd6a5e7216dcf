"""What a token or secret read from a file or the environment must hold, checked as it is read.

An API token travels in an `Authorization` header, so it must be printable ASCII without spaces: a token file
with a comment line above the token made `tablao jobs` print the whole header (token included) as the reason it
could not reach the Server, a non-ASCII one was a traceback, and a Manager sent a line break into its header and
met a 400 for ever. A worker's registration secret travels in a JSON body instead: any printable text the
Manager's register route takes (`worker_api.RegisterRequest`). The messages never quote the value.
"""

from __future__ import annotations

from services.protocol.terminal_text import first_control

ADMIN_TOKEN_MIN = 16  # characters of a preset admin token; the Server makes 47 ("tbl_" and 256 random bits)
REGISTRATION_SECRET_MAX = 200  # what worker_api.RegisterRequest takes


def _char(c: str) -> str:
    return f"U+{ord(c):04X}"


def token_problem(token: str) -> str | None:
    """Why `token` (already stripped of surrounding white space) cannot be sent as a token, else None."""
    if not token:
        return "it is empty"
    if "\n" in token or "\r" in token:  # said first: a comment line above the token holds spaces too
        return "it has more than one line: put the token alone in it, with no comment"
    for i, c in enumerate(token):
        if "!" <= c <= "~":
            continue
        if c.isspace():
            return "it holds white space: a token is one word"
        if not c.isascii():
            return f"character {i + 1} ({_char(c)}) is not ASCII: a token is printable ASCII"
        return f"character {i + 1} ({_char(c)}) is a control character: a token is printable ASCII"
    return None


def admin_token_problem(token: str) -> str | None:
    """As token_problem, and long enough to be no guess (at least ADMIN_TOKEN_MIN characters)."""
    if problem := token_problem(token):
        return problem
    if len(token) < ADMIN_TOKEN_MIN:
        return (
            f"it has {len(token)} characters, fewer than {ADMIN_TOKEN_MIN}: use a long random one, "
            "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return None


def registration_secret_problem(secret: str) -> str | None:
    """Why a worker registration secret (already stripped) cannot be sent to a Manager, else None."""
    if not secret:
        return "it is empty"
    if len(secret) > REGISTRATION_SECRET_MAX:
        return f"it has {len(secret)} characters, more than the {REGISTRATION_SECRET_MAX} a Manager takes"
    if "\n" in secret or "\r" in secret:
        return "it has more than one line: put the secret alone in it, with no comment"
    if (i := first_control(secret)) is not None:  # NUL: the Manager refuses it; a lone surrogate: not UTF-8
        return f"character {i + 1} ({_char(secret[i])}) is a control character or not text"
    return None
