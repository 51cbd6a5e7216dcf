"""Opaque keyset cursors: a page continues after the (sort value, id) of the last row shown.

A cursor comes back from the client, who may have forged it, so `decode` takes only what `encode` could have
written for the sort column: a value the database would refuse (an id past 64 bits, a string for a date
column) would otherwise fail the query itself, a 500 instead of a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String
from sqlalchemy.orm import QueryableAttribute

from services.protocol.common import ID_MAX
from services.server.store.errors import Invalid

_DATE_TEXT_MAX = 64  # longer than any isoformat() of a datetime ("...T00:00:00.000000+00:00" is 32 characters)


def encode(sort_value: Any, row_id: int | str) -> str:
    if isinstance(sort_value, datetime):
        sort_value = {"t": sort_value.isoformat()}
    raw = json.dumps([sort_value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, column: QueryableAttribute[Any]) -> tuple[Any, int]:
    """The (sort value, id) of a cursor `encode` made for rows sorted by `column`; Invalid for anything else."""
    value, row_id = _pair(cursor)
    if not _is_int(row_id, 0, ID_MAX):
        raise _not_ours()
    return _sort_value(value, column), row_id


def decode_keyed(cursor: str, column: QueryableAttribute[Any], key: QueryableAttribute[Any]) -> tuple[Any, Any]:
    """`decode` for rows whose unique key is `key`, not an integer id (a worker's id is its Manager's text)."""
    value, row_key = _pair(cursor)
    return _sort_value(value, column), _sort_value(row_key, key)


def _pair(cursor: str) -> tuple[Any, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        pair = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad base64, bytes or JSON are all ValueErrors
        raise _not_ours() from exc
    if not (isinstance(pair, list) and len(pair) == 2):
        raise _not_ours()
    return pair[0], pair[1]


def _sort_value(value: Any, column: QueryableAttribute[Any]) -> Any:
    # Every sortable column is NOT NULL, so encode never writes null and a null here is refused like any other
    # value of the wrong kind.
    sql_type = column.type
    if isinstance(sql_type, DateTime):
        return _datetime(value)
    if isinstance(sql_type, Integer):
        # PostgreSQL's integer is 32 bits, its bigint 64; a number past the column's range is a DataError there
        bound = 2**63 if isinstance(sql_type, BigInteger) else 2**31
        if _is_int(value, -bound, bound - 1):
            return value
        raise _not_ours()
    if isinstance(sql_type, String) and sql_type.length is not None:
        if isinstance(value, str) and len(value) <= sql_type.length and _storable(value):
            return value
        raise _not_ours()
    raise TypeError(f"rows sorted by {column} (a {sql_type} column) have no cursors")


def _datetime(value: Any) -> datetime:
    """The datetime encode wrote as {"t": isoformat}; in UTC when it carries an offset."""
    if not (isinstance(value, dict) and value.keys() == {"t"}):
        raise _not_ours()
    text = value["t"]
    if not (isinstance(text, str) and len(text) <= _DATE_TEXT_MAX):
        raise _not_ours()
    try:
        when = datetime.fromisoformat(text)
        # the same instant; an offset that carries it past year 1 or 9999 is an OverflowError here, not in the
        # database driver
        return when.astimezone(UTC) if when.tzinfo is not None else when
    except (ValueError, OverflowError) as exc:
        raise _not_ours() from exc


def _is_int(value: Any, low: int, high: int) -> bool:
    # bool is an int to Python, but not to the database
    return type(value) is int and low <= value <= high


def _storable(text: str) -> bool:
    # PostgreSQL refuses NUL in text, and a lone surrogate (JSON's "\ud800") has no UTF-8 for either database
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _not_ours() -> Invalid:
    return Invalid("not a cursor this server made", field="cursor")
