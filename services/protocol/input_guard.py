"""Values no field of the farm accepts, refused at the door of both services: a 422 naming the field, before
any route runs. They are the NUL character (U+0000) anywhere, and in a JSON body a lone surrogate
(`\\ud800`, half of a pair, which is no character and cannot be written as UTF-8) and the numbers NaN and Infinity.

No name, path, tag, message or id of the farm has a use for U+0000, and PostgreSQL cannot store it in a text
column: a job named `"a\\u0000b"` reached the database and came back as a 500 there, as did a worker id or a
search term holding `%00`. Checking each field would miss the next one added, so this middleware looks once,
where every request passes: the path, the query string and a JSON body. The common case costs a substring
search; only a request that may hold a NUL is parsed, to name the field (`settings.command.1`, `search`) the
way the services' other 422s do. A body that does not parse as JSON is left to the route (its own 422).

`NaN`, `Infinity` and `-Infinity` are not JSON (RFC 8259), but Python's parser takes them: a Manager's batch
with a worker's memory use of `Infinity` reached the Server's JSON column, which PostgreSQL refused, and the
Manager sent the batch again for ever. Checked the same way (a substring search, then a
parse that names the field). So is a number too large for a float (`1e999`, `-1E400`), which the parser
silently makes Infinity: the cheap look is for a 3-digit exponent or a run of 200 digits (fewer cannot pass
1.8e308 with an exponent under 100), then the parse says which literal was past the range.

A lone surrogate in a string the route passes on as it is (a command's argument) failed when the database
encoded it, as a 500 on SQLite and PostgreSQL alike.

Process output is not refused here: the Worker replaces NULs in what its tasks print (services/worker/buffer.py)
before anything is stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import iter_route_contexts
from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.protocol.api_contract import Location, dotted

NUL = "\x00"
_ESCAPED = b"\\u0000"  # the only way JSON writes U+0000 (a raw NUL byte is malformed JSON)

NUL_MESSAGE = "contains the NUL character (U+0000), which no field accepts"
SURROGATE_MESSAGE = "contains a lone surrogate (\\ud800 to \\udfff without its pair), which is not text"
NOT_A_NUMBER_MESSAGE = "NaN and Infinity are not JSON numbers; no field accepts them"
TOO_LARGE_MESSAGE = "numbers past a float's range (1.8e308) would be Infinity; no field accepts them"
NOT_UTF8_MESSAGE = (
    "malformed JSON: not UTF-8 (a byte-order mark, NUL bytes: UTF-16 or UTF-32, compressed, or bytes no UTF-8 "
    "text has, such as an encoded lone surrogate); a JSON body is UTF-8, uncompressed"
)
# Python's parser takes UTF-16 and UTF-32 too (it guesses from the NUL bytes that ASCII has in them, or a BOM):
# the API says UTF-8, and a raw NUL byte is in no UTF-8 JSON (inside a string it must be written \u0000)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")

# A JSON number that may overflow a float has a 3-digit exponent after a digit (`1e999`, `2.5E-400`) or 200
# digits in a row. Looked for in a copy with every digit made 0, E made e and - made +: three substring searches
# on it cost a tenth of one regular expression on the body, which every JSON request would pay.
_NUMBER_SHAPES = bytes.maketrans(b"123456789E-", b"000000000e+")
_MAYBE_TOO_LARGE = (b"0e000", b"0e+000", b"0" * 200)
OFF_LOOP_BYTES = 64 * 1024  # a suspect body larger than this is looked into in a thread


def refusal(field: str, msg: str = NUL_MESSAGE) -> bytes:
    body = json.dumps(
        {"detail": f"{field}: {msg}", "errors": [{"field": field, "message": msg}]}, separators=(",", ":")
    )
    return body.encode()


class _NotANumber(float):
    """What the parser makes of NaN and Infinity here, so the walk can find where they were."""


class _TooLarge(float):
    """What the parser makes of a number literal past a float's range, so the walk can find where it was."""


def _found(value: Any, bad: Callable[[Any], bool], at: Location = ()) -> Location | None:
    """Where the first value (or key) that is `bad` is in a parsed JSON value; None if there is none."""
    if bad(value):
        return at
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and bad(key):
            return at
        if (found := _found(item, bad, (*at, key))) is not None:
            return found
    return None


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and NUL in value


def _not_text(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def nul_in(value: Any) -> Location | None:
    """Where the first string (or key) holding a NUL is in a parsed JSON value; None if none does."""
    return _found(value, _has_nul)


def _path_field(scope: Scope) -> str | None:
    """The route parameter holding the NUL, as the route names it; None when no route's parameter holds it
    (the app answers 404 as for any path it does not know)."""
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", [])):
        template = getattr(route, "path", None)
        if not isinstance(template, str) or "{" not in template:
            continue
        regex, _format, _convertors = compile_path(template)
        if (match := regex.match(scope["path"])) is not None:
            for name, value in match.groupdict().items():
                if NUL in value:
                    return name
    return None


def _query_field(query: bytes) -> str | None:
    if b"%00" not in query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if NUL in key:
            return "query"
        if NUL in value:
            return key
    return None


def is_json(scope: Scope) -> bool:
    """The request says its body is JSON (its Content-Type); the guard looks into such bodies only."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


class InputGuard:
    """Pure ASGI middleware: 422 for a NUL in the path, the query string or a JSON body, and for NaN,
    Infinity or a number past a float's range in a JSON body."""

    def __init__(self, app: ASGIApp, name_field: Callable[[Location], str] = dotted) -> None:
        self.app = app
        self.name_field = name_field

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field = _path_field(scope) if NUL in scope["path"] else _query_field(scope.get("query_string", b""))
        if field is not None:
            await _refuse(send, field)
            return
        if scope["method"] in ("GET", "HEAD", "DELETE") or not is_json(scope):
            await self.app(scope, receive, send)
            return
        # the whole body first (the route would read it all anyway; the body limit outside counts it), then
        # the same bytes to the route, and what comes after (a disconnect) from the client as usual
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before the whole body came
                await self.app(scope, _replay(None, message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if body.startswith(_BOMS) or b"\x00" in body or not _utf8(body):
            await _refuse(send, "body", NOT_UTF8_MESSAGE)
            return
        if _suspect(body):  # else nothing to parse (nearly always)
            # a large one in a thread: the parse still holds the GIL, but the walks let the event loop run between
            # them (a 4-million-value body held it 5 s, and every worker's request with it)
            found = await run_in_threadpool(_body_refusal, body) if len(body) > OFF_LOOP_BYTES else _body_refusal(body)
            if found is not None:
                loc, msg = found
                await _refuse(send, self.name_field(loc), msg)
                return
        await self.app(scope, _replay(body, None, receive), send)


def _utf8(body: bytes) -> bool:
    """Strict UTF-8. Python's parser reads bytes with `surrogatepass`: a lone surrogate sent as bytes (ED A0 80)
    became text that no encoder writes again, stored where a field had no pattern (a worker's `software`), and a
    Manager's link died on it at every start, and GET /workers answered 500."""
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _suspect(body: bytes) -> bool:
    """The body may hold a value refused here. A surrogate pair (`\\ud83d\\ude00`, how Python's own encoder
    writes an emoji) is a false alarm the parse clears, as is `1e308` (a float) or `3e100` inside a string."""
    return (
        _ESCAPED in body
        or b"NaN" in body
        or b"Infinity" in body
        or b"\\ud" in body
        or b"\\uD" in body
        or _may_be_too_large(body)
    )


def _may_be_too_large(body: bytes) -> bool:
    shapes = body.translate(_NUMBER_SHAPES)
    return any(shape in shapes for shape in _MAYBE_TOO_LARGE)


def _body_refusal(body: bytes) -> tuple[Location, str] | None:
    """Where the body holds a NUL, a NaN or Infinity, or a number past a float's range, and what to say; None
    if it holds none (the words were inside strings) or is not JSON at all (the route says so)."""
    made: set[type] = set()  # the refused kinds of number the parse made, if any

    def not_a_number(_constant: str) -> float:
        made.add(_NotANumber)
        return _NotANumber("nan")

    def number(literal: str) -> float:
        value = float(literal)
        if math.isfinite(value):
            return value
        made.add(_TooLarge)
        return _TooLarge(value)

    try:
        value = json.loads(body, parse_constant=not_a_number, parse_float=number)
    except (ValueError, RecursionError):
        return None
    # each walk only where the parse or the bytes say it may find something: a body of millions of values with
    # "NaN" in one string took four walks of seconds each
    try:
        if _NotANumber in made and (loc := _found(value, lambda v: isinstance(v, _NotANumber))) is not None:
            return loc, NOT_A_NUMBER_MESSAGE
        if _TooLarge in made and (loc := _found(value, lambda v: isinstance(v, _TooLarge))) is not None:
            return loc, TOO_LARGE_MESSAGE
        if _ESCAPED in body and (loc := nul_in(value)) is not None:
            return loc, NUL_MESSAGE
        if (b"\\ud" in body or b"\\uD" in body) and (loc := _found(value, _not_text)) is not None:
            return loc, SURROGATE_MESSAGE
    except RecursionError:
        return (), NUL_MESSAGE
    return None


def _replay(body: bytes | None, then: Message | None, receive: Receive) -> Receive:
    """The route's receive: `body` whole (or `then`, what came instead of it) first, then the client's own."""
    first: Message | None = then if body is None else {"type": "http.request", "body": body, "more_body": False}

    async def replayed() -> Message:
        nonlocal first
        if first is not None:
            message, first = first, None
            return message
        return await receive()

    return replayed


async def _refuse(send: Send, field: str, msg: str = NUL_MESSAGE) -> None:
    body = refusal(field, msg)
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
