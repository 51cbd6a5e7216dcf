"""What a client makes of a Tablao Server's answers: its errors as `ApiError` (the one-line `detail` and the
per-field errors), and anything a Tablao Server does not send (not JSON, the wrong shape, too much) as
`BadAnswer`, in a few words, never a traceback."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from services.protocol.common import FieldError

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.errors = errors or []

    def field_errors(self) -> dict[str, str]:
        return {e.field: e.message for e in self.errors}


class BadAnswer(ApiError):
    """A success (or an error) whose body is not what a Tablao Server sends: not JSON, not the expected shape, or
    over the client's size cap. An ApiError, so every caller that reports those reports this too."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(status_code, f"the Server's answer is not what a Tablao Server sends ({reason})")
        self.reason = reason


class AnswerTimeout(httpx.ReadTimeout):
    """No whole answer within the client's deadline (a Server sending a byte now and then resets the read timeout
    but not this)."""


def describe(exc: ValidationError) -> str:
    """The first problem of an answer that does not fit its model, in a few words."""
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    more = exc.error_count() - 1
    return f"{where + ': ' if where else ''}{first['msg']}{f', and {more} more' if more else ''}"


BUSY_DETAIL = "storage busy:"  # how the Server's 503 for a busy database begins (server/db/problems.py)
BUSY_WAIT_MAX = 5.0  # seconds: the most a busy Server's Retry-After holds a request back


def busy_wait(response: httpx.Response) -> float | None:
    """The wait a Server whose database gave the request up asked for (503 "storage busy" with Retry-After: a
    PostgreSQL deadlock's loser, a write that waited too long for SQLite; nothing of it was applied, and the same
    request most likely goes through in a moment), else None. Only the Server's own word: a proxy's 503 is not."""
    if response.status_code != 503 or "Retry-After" not in response.headers:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not (isinstance(body, dict) and str(body.get("detail", "")).startswith(BUSY_DETAIL)):
        return None
    try:
        wait = float(response.headers["Retry-After"])
    except ValueError:
        return BUSY_WAIT_MAX
    return min(max(wait, 0.0), BUSY_WAIT_MAX) if math.isfinite(wait) else BUSY_WAIT_MAX


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail = str(body.get("detail", response.reason_phrase))
        errors = [FieldError.model_validate(e) for e in body.get("errors", [])]
    except (ValueError, AttributeError, TypeError, RecursionError):  # not the Server's JSON: its text says more
        detail, errors = response.text[:500] or response.reason_phrase, []
    raise ApiError(response.status_code, detail, errors)


def json_of(response: httpx.Response) -> Any:
    """The answer's JSON (None for an empty body); BadAnswer when it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except RecursionError:
        raise BadAnswer(response.status_code, "JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadAnswer(response.status_code, f"not JSON: {exc}") from None


def valid(model: type[M], answer: Any, status_code: int, where: str = "") -> M:
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise BadAnswer(status_code, f"{where}{describe(exc)}") from None


def no_longer_than(answer: Any, key: str, limit: int, status_code: int) -> None:
    """BadAnswer when answer[key] is a list longer than the limit asked for."""
    items = answer.get(key) if isinstance(answer, dict) else None
    if isinstance(items, list) and len(items) > limit:
        raise BadAnswer(status_code, f"{len(items):,} {key} where at most {limit} were asked for")


def kind(answer: Any) -> str:
    kinds = {dict: "an object", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return "nothing" if answer is None else kinds.get(type(answer), type(answer).__name__)


def shown_size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n:,} bytes"
