"""Small building blocks shared by the wire models: the base model, errors and paging."""

from __future__ import annotations

import contextlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

T = TypeVar("T")


_DIGITS = re.compile(r"0|[1-9][0-9]*")


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        # a path's or a query's number: Python's int() took "2_0" for 20, and " 2", "+2", "2.0" and "02" for 2
        raise ValueError("a whole number is written in digits only (no sign, point, space or leading zero)")
    return value


WHOLE = BeforeValidator(_whole)
"""On an int of a wire model (strict): JSON Schema counts 14.0 as an integer, and a client's float arithmetic may
send one; a float with nothing after the point is read as its int, any other still refused (as are "14" and
true). In a path or a query (text) a number is its digits, one spelling per number."""
Int = Annotated[int, WHOLE]

ID_MAX = 2**63 - 1  # the largest id a database integer key holds; larger ones are refused with 422, not a 500
Id = Annotated[int, Ge(0), Le(ID_MAX), WHOLE]
"""A database id in a path, query or body: range-checked so no id reaches a query it would overflow."""
INT_MAX = 2**31 - 1  # the largest value of a 32-bit database integer (PostgreSQL's `integer`)
SmallId = Annotated[int, Ge(0), Le(INT_MAX), WHOLE]
"""The id of a user, token, Manager or webhook: 32-bit keys, so a larger one is a 422, not PostgreSQL's
"integer out of range" as a 500."""
Count = Annotated[int, Ge(0), Le(INT_MAX), WHOLE]
"""A count a client reports that the Server keeps in a 32-bit column (steps, failures, request numbers)."""

# Every string and list a client sends is bounded, so the body limit is not the only thing between a
# hostile request and the database; a field over its bound is a 422 naming it.
ShortText = Annotated[str, StringConstraints(max_length=200)]
"""Names, tags, platforms, worker ids: one short line."""
WorkerKey = Annotated[str, StringConstraints(max_length=64)]
"""A worker's id or name: 64 characters, as the Manager registers them and the Server's tables hold them."""
WORKER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
WorkerIdText = Annotated[str, StringConstraints(pattern=WORKER_ID_PATTERN, max_length=64)]
"""A worker's id as a Manager reports it (a UUID from the Managers that make them): one path segment in every
client's URLs. Any text was taken, and an id such as `x/../../tokens/1` sent a wrangler's `DELETE /workers/{id}`
to another route (clients' HTTP libraries fold `..`)."""
PlatformText = Annotated[str, StringConstraints(max_length=32)]
"""An operating system's name as a worker reports it."""
PathText = Annotated[str, StringConstraints(max_length=4096)]
"""A file path."""
LongText = Annotated[str, StringConstraints(max_length=10_000)]
"""A log line or a message."""
JSON_MAX_DEPTH = 32


def json_depth(value: Any, level: int = 0) -> int:
    """How deep `value` nests, counted up to one past JSON_MAX_DEPTH (deeper is not looked at)."""
    if level > JSON_MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((json_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((json_depth(v, level + 1) for v in value), default=level + 1)
    return level


# orjson's text of a JSON value is at most this many times as long as json.dumps' (bounded_json)
QUICK_MARGIN = 1.5


def bounded_json(max_bytes: int) -> AfterValidator:
    """A free-form JSON value (settings, software versions) of at most `max_bytes` and nesting 32 deep."""

    def check(value: Any) -> Any:
        # orjson's text is written 15 times faster than json.dumps', and is at most 1.4 times as long (json.dumps
        # escapes every non-ASCII character, so text is never longer; a float may be 2 bytes longer: 1e-05 is
        # `0.00001`): a value past 3/2 of the limit by orjson's measure (an 8 MB body of numbers: 0.6 s of the
        # checks below, on the event loop) is refused for that. It refuses what it cannot write (nested past 255
        # levels, an integer past 64 bits): the checks below see to those.
        with contextlib.suppress(TypeError, orjson.JSONEncodeError):
            if (written := len(orjson.dumps(value, default=str))) > max_bytes * QUICK_MARGIN:
                at_least = math.ceil(written / QUICK_MARGIN)
                raise ValueError(f"at least {at_least} bytes of JSON, over the limit of {max_bytes}")
        if json_depth(value) > JSON_MAX_DEPTH:
            raise ValueError(f"nested more than {JSON_MAX_DEPTH} levels deep")
        size = len(json.dumps(value, separators=(",", ":"), default=str))
        if size > max_bytes:
            raise ValueError(f"{size} bytes of JSON, over the limit of {max_bytes}")
        return value

    return AfterValidator(check)


def _in_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)  # naive times on the wire are UTC
    try:
        return t.astimezone(UTC)
    except OverflowError:  # year 1 at +05:00, year 9999 at -05:00: no such time in UTC
        raise ValueError("a time with no UTC equivalent (its offset takes it out of years 1 to 9999)") from None


JSON_TEXT = Strict(False)
"""On a field of a wire model (strict: `"5"` is no number, `0` no boolean): what JSON can only carry as text, an
enum's value or a time, is read from its text."""


def _iso_time(value: object) -> datetime:
    """A time on the wire is ISO 8601 text (or a datetime, made here), parsed by Python's own ISO parser, which
    takes no number: pydantic read `0.5` or `1733400000` (or either as a string) as seconds since 1970, which the
    document (a date-time) does not offer and nobody means."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a time in ISO 8601 (2026-12-05T10:00:00Z): {value[:40]!r}") from None
    if isinstance(value, datetime):
        return value
    raise ValueError("a time is written as in ISO 8601 (2026-12-05T10:00:00Z), not as a number")


def _reported_time(value: object) -> datetime:
    # the one call into Python a time costs (an AfterValidator made it UTC): a check of the text before pydantic's
    # own parser made a batch's validation 60 % slower, and times are in every update
    return _in_utc(_iso_time(value))


ReportedTime = Annotated[datetime, JSON_TEXT, BeforeValidator(_reported_time)]
"""A time a worker or a Manager reports (when a task started or ended, when a worker was seen): ISO 8601 text,
made UTC on arrival: one whose offset takes it out of datetime's range is a 422 naming it, not a 500 where it is
stored or compared, which would also stop every later batch behind it."""

QueryTime = Annotated[datetime, BeforeValidator(_iso_time)]
"""A time in a query string (`since`): ISO 8601 text, as on the wire (the route makes it UTC)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def plural(n: int, word: str) -> str:
    """`1 task`, `2 tasks`: counts in messages people read."""
    return f"{n} {word}{'' if n == 1 else 's'}"


UNKNOWN_FIELDS_NAMED = 50  # unknown fields of one object an error answer names one by one


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused so typos surface as 422s, and a value must have the
    JSON type the document gives it (strict): `"5"` is not taken for 5, nor `0` for false, nor `true` for 1.0, as a
    client keeping to the document would never send them and one that does has a bug to hear of. Enums and times
    are read from their text (`JSON_TEXT`)."""

    model_config = ConfigDict(extra="forbid", frozen=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        # pydantic makes an error of each unknown key and FastAPI a dictionary of each error: 600,000 keys in an
        # 8 MB body took 1.1 s and 500 MB on the event loop, for an answer that names 50 of them. Past that many,
        # one error says how many (a length compared on every object; the keys looked at only then).
        # (`__pydantic_fields__`: `model_fields` is a deprecation-checking descriptor, a cost on every object)
        fields = cls.__pydantic_fields__
        if (
            type(data) is dict
            and len(data) > len(fields) + UNKNOWN_FIELDS_NAMED
            and cls.model_config.get("extra") == "forbid"
        ):
            unknown = [key for key in data if key not in fields]
            if len(unknown) > UNKNOWN_FIELDS_NAMED:
                first = ", ".join(repr(key)[:40] for key in unknown[:3])
                taken = ", ".join(fields)
                raise ValueError(f"{len(unknown)} unknown fields ({first}, ...); this takes only: {taken}")
        return data


class ResponseModel(BaseModel):
    """Base of answers: lenient, so an older client can read a newer server's answer."""

    model_config = ConfigDict(extra="ignore")


class FieldError(ResponseModel):
    field: str
    message: str


class ErrorResponse(ResponseModel):
    """Every 4xx/5xx body: one readable line in `detail`, and per-field errors where they apply."""

    detail: str
    errors: list[FieldError] = Field(default_factory=list)


# a list answered as a JSON list (older clients read it so) carries its next page's `cursor` in this header
NEXT_CURSOR_HEADER = "X-Next-Cursor"
# the event stream's promise: a line at least this often (seconds), a comment when there is no event, so a client
# can take a longer silence for a Server that hangs (a Server from before it sends none)
KEEPALIVE_HEADER = "X-Keepalive-Seconds"


class Page(ResponseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
