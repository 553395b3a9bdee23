"""Times: all stored times are UTC, and a time without a zone (from SQLite, or typed by a user) is UTC."""

from __future__ import annotations

import datetime as dt
from typing import overload


@overload
def as_utc(value: dt.datetime) -> dt.datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with the zone, as the API and the uplink records write times (None stays None)."""
    value = as_utc(value)
    return value.isoformat() if value is not None else None
