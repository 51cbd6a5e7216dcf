"""Errors the store raises; the API turns each into an HTTP answer naming the field at fault."""

from __future__ import annotations


class StoreError(Exception):
    status_code = 400
    retry_after: float | None = None  # seconds, sent as Retry-After: the request may succeed if asked again then

    def __init__(self, message: str, *, field: str | None = None, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors if errors is not None else ([(field, message)] if field else [])


class NotFound(StoreError):
    status_code = 404


class Invalid(StoreError):
    status_code = 422


class Conflict(StoreError):
    status_code = 409


class Forbidden(StoreError):
    status_code = 403


class TooManyAttempts(StoreError):
    """429: too many failed attempts from this client or for this user; `retry_after` is in seconds."""

    status_code = 429
    retry_after: float

    def __init__(self, message: str, retry_after: float, *, field: str | None = None):
        super().__init__(message, field=field)
        self.retry_after = retry_after
