"""Errors the Manager's core raises; the API turns them into 4xx answers that name the field."""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    """A stale hand-out, a task that is not this worker's, a worker that has not signed on."""

    status_code = 409


class NotSignedOn(Conflict):
    """A task request from a worker this Manager has no sign-on of (restarted since): sign on first
    (worker_api.SIGN_ON_HEADER); the request's finished updates were not looked at."""


class Superseded(Conflict):
    """Another process signed on with this worker's identity since the one calling (worker_api.INSTANCE_HEADER)."""


class Invalid(ApiError):
    status_code = 422


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class Unavailable(ApiError):
    status_code = 503


class TooManyAttempts(ApiError):
    """429: too many failed attempts from this address; `retry_after` is in seconds."""

    status_code = 429

    def __init__(self, message: str, retry_after: float, field: str = "") -> None:
        super().__init__(message, field)
        self.retry_after = retry_after
