"""Small building blocks shared by the wire models: the base model, errors and paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are refused so typos surface as 422s."""

    model_config = ConfigDict(extra="forbid", frozen=False)


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


class Page(ResponseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
