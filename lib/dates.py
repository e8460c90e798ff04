"""The ``date`` parameter: which records a run processes.

POSIX seconds (UTC) or an ISO-8601 string (no offset means UTC) → an aware UTC datetime;
``None``, ``0`` or ``""`` → a full run; ``"auto"`` → resume from the last successful run.
The machine's own timezone never matters. Also: a span of time as a person says it
(:func:`duration`, in alerts and the health check).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal

from lib.errors import ConfigError

AUTO = "auto"
ACCEPTED = (
    "POSIX seconds (e.g. 1764374400), an ISO-8601 date or time (e.g. 2026-11-29, "
    "2026-11-29T03:00:00Z or 2026-11-28T21:00:00-06:00; no offset means UTC), "
    'None or 0 for a full run, or "auto" to resume from the last successful run'
)
_MAX_POSIX_SECONDS = 1e11  # year 5138: larger values are milliseconds by mistake
# A date this close to datetime's ends cannot be shown in every timezone (the app's, the
# machine's): refuse it up front rather than fail later with a bare OverflowError.
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC) + dt.timedelta(days=2)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC) - dt.timedelta(days=2)


def parse_date(value: Any) -> dt.datetime | None | Literal["auto"]:
    """Parse a ``date`` parameter; raises ConfigError naming the value and the accepted
    formats."""
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"date {value!r} is not a date: give {ACCEPTED}")
    given = value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == AUTO:
            return AUTO
        if text.lower() in ("", "none", "null"):
            return None
        try:
            number: float | None = float(text)
        except ValueError:
            number = None
        if number is None:
            return _parse_iso(text)
        value = number
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"date {given!r} is not a number of seconds: give {ACCEPTED}")
        if value == 0:  # 0.0, "0", "-0", "0.0": a full run like 0
            return None
        if value < 0 or value > _MAX_POSIX_SECONDS:
            hint = " (milliseconds? give seconds)" if value > _MAX_POSIX_SECONDS else ""
            raise ConfigError(f"date {given!r} is out of range{hint}: give {ACCEPTED}")
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, dt.datetime):
        return _in_range(value, given)
    if isinstance(value, dt.date):
        return _in_range(dt.datetime(value.year, value.month, value.day), given)
    raise ConfigError(f"date {given!r} does not parse: give {ACCEPTED}")


def _parse_iso(text: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"date {text!r} does not parse: give {ACCEPTED}") from None
    return _in_range(parsed, text)


def _in_range(when: dt.datetime, given: Any) -> dt.datetime:
    """``when`` (naive means UTC) in UTC, if every timezone can show it."""
    try:
        utc = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise ConfigError(
            f"date {given!r} is out of range (it must fall between {_EARLIEST:%Y-%m-%d} and "
            f"{_LATEST:%Y-%m-%d} in UTC): give {ACCEPTED}"
        )
    return utc


def duration(span: dt.timedelta) -> str:
    """A span as a person says it: "45 s", "12 min", "3 h 5 min", "9 days"."""
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"
