"""Small helpers shared by the upper-platform and cascade roles."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from zoneinfo import ZoneInfo

ID_RE = re.compile(r"^\d{20}$")


class GbError(Exception):
    """A GB28181 operation failed (non-2xx answer, timeout, bad reply)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def gb_time(now: dt.datetime | None = None, millis: bool = False, zone: str | None = None) -> str:
    """ISO local time without zone, as GB28181 uses (``2026-11-21T19:30:00``; ``.000`` in Date).

    ``zone`` (IANA) is the site's zone, the one device times are read in: the current time is taken there
    (an aware ``now`` is converted to it), never in the host's zone unless ``zone`` is None."""
    if now is None:
        now = dt.datetime.now(ZoneInfo(zone)) if zone else dt.datetime.now()  # noqa: DTZ005
    elif zone and now.tzinfo is not None:
        now = now.astimezone(ZoneInfo(zone))
    text = now.strftime("%Y-%m-%dT%H:%M:%S")
    return text + f".{now.microsecond // 1000:03d}" if millis else text


class SnCounter:
    def __init__(self, start: int = 1) -> None:
        self._it = itertools.count(start)

    def next(self) -> int:
        return next(self._it) % 1_000_000_000


def is_gb_id(value: str) -> bool:
    return bool(ID_RE.match(value))
