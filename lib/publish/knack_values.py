"""A source record's value as another Knack app's field takes it, and that field's stored
value in the same form, so that an unchanged record compares equal and is never written.

:class:`Converter` (one per mapped field) turns the source's raw value (``field_N_raw`` as
stored in S3) into Knack's write format for the destination field's type (DESIGN.md:
Knack's value formats), in a canonical form that is also what :meth:`Converter.stored`
makes of the destination's raw value. Date/times keep their instant: a source wall time
in the source app's timezone is written as the same instant's wall time in the destination
app's timezone (a date-only field keeps its calendar date). Connections go through a map of
connected records (source record id → destination record id). A value that cannot be
written raises :class:`~lib.publish.values.Refused` (that record alone fails).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from lib.publish.values import Refused, shown

TEXT = frozenset({"short_text", "paragraph_text", "rich_text"})
NUMBERS = frozenset({"number", "currency", "rating"})
ADDRESS_KEYS = ("street", "street2", "city", "state", "zip", "country", "latitude", "longitude")
NAME_KEYS = ("title", "first", "middle", "last")
SUPPORTED = (
    TEXT
    | NUMBERS
    | {
        "boolean",
        "date_time",
        "multiple_choice",
        "address",
        "name",
        "email",
        "phone",
        "link",
        "connection",
    }
)
_EPOCH = dt.datetime(1970, 1, 1)
QUOTED = 60  # characters of a source value quoted in a refusal (dates, addresses: long)


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _date_only(f: dict[str, Any]) -> bool:
    return (f.get("format") or {}).get("time_format") == "Ignore Time"


@dataclass
class Converter:
    """One mapped field: the source field's and the destination field's definitions (from
    each app's metadata), each app's timezone, and for a connection the map of connected
    records (source id → destination id)."""

    source: dict[str, Any]
    target: dict[str, Any]
    source_tz: dt.tzinfo
    target_tz: dt.tzinfo
    connected: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.target.get("type"))

    def write(self, raw: Any) -> Any:
        """The source's raw value in the destination field's canonical write form (None:
        empty); Refused when the field cannot take it."""
        if _blank(raw):
            return False if self.kind == "boolean" else None
        return getattr(self, "_w_" + _family(self.kind))(raw)

    def stored(self, raw: Any) -> Any:
        """The destination's raw value in the same canonical form (None: empty)."""
        if _blank(raw):
            return False if self.kind == "boolean" else None
        try:
            return getattr(self, "_s_" + _family(self.kind))(raw)
        except (Refused, ValueError, TypeError, KeyError):
            return ("unreadable", repr(raw))  # never equal to a written value: rewritten

    def body(self, canonical: Any) -> Any:
        """What is sent for a canonical value (Knack empties a field with ``""``)."""
        if canonical is None:
            return [] if self.kind == "connection" else ""
        return canonical

    # --- by family: write (source raw → canonical) and stored (destination raw → same)

    def _w_text(self, raw: Any) -> str:
        if isinstance(raw, bool):
            return "Yes" if raw else "No"
        if isinstance(raw, str | int | float):
            return str(raw)
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            return ", ".join(raw)
        raise Refused(f"a {self.source.get('type')} value does not fit a text field")

    _s_text = _w_text

    def _w_number(self, raw: Any) -> float:
        if isinstance(raw, bool):
            raise Refused("true/false is not a number")
        try:
            return float(str(raw).replace(",", "").replace("$", "").strip())
        except ValueError:
            raise Refused(f"{shown(raw, QUOTED)} is not a number") from None

    _s_number = _w_number

    def _w_boolean(self, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("yes", "true"):
            return True
        if text in ("no", "false"):
            return False
        raise Refused(f"{shown(raw, QUOTED)} is not yes/no")

    _s_boolean = _w_boolean

    def _w_date(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise Refused(f"{shown(raw, QUOTED)} is not a Knack date")
        out = self._moment(raw, _date_only(self.source))
        if isinstance(raw.get("to"), dict) and raw["to"].get("date"):
            out["to"] = self._moment(raw["to"], _date_only(self.source))
        return out

    def _moment(self, raw: dict[str, Any], date_only: bool) -> dict[str, Any]:
        """One date/time: the same instant in the destination's timezone, or (a date-only
        source) the same calendar date."""
        wall = _wall(raw)
        if not date_only:
            instant = wall.replace(tzinfo=self.source_tz)
            wall = instant.astimezone(self.target_tz).replace(tzinfo=None)
        return _canonical_date(wall, date_only or _date_only(self.target))

    def _s_date(self, raw: Any) -> dict[str, Any]:
        out = _canonical_date(_wall(raw), _date_only(self.target))
        if isinstance(raw.get("to"), dict) and raw["to"].get("date"):
            out["to"] = _canonical_date(_wall(raw["to"]), _date_only(self.target))
        return out

    def _w_choice(self, raw: Any) -> str | list[str]:
        chosen = raw if isinstance(raw, list) else [raw]
        chosen = [str(v) for v in chosen if not _blank(v)]
        fmt = self.target.get("format") or {}
        if fmt.get("type") in ("multi", "checkboxes"):
            return chosen
        if len(chosen) > 1:
            raise Refused(f"{len(chosen)} options for a field that takes one")
        return chosen[0]

    _s_choice = _w_choice

    def _w_address(self, raw: Any) -> dict[str, Any]:
        return _parts(raw, ADDRESS_KEYS, numbers=("latitude", "longitude"))

    _s_address = _w_address

    def _w_name(self, raw: Any) -> dict[str, Any]:
        return _parts(raw, NAME_KEYS)

    _s_name = _w_name

    def _w_email(self, raw: Any) -> dict[str, Any]:
        return _parts(raw if isinstance(raw, dict) else {"email": raw}, ("email", "label"))

    _s_email = _w_email

    def _w_link(self, raw: Any) -> dict[str, Any]:
        return _parts(raw if isinstance(raw, dict) else {"url": raw}, ("url", "label"))

    _s_link = _w_link

    def _w_phone(self, raw: Any) -> dict[str, str]:
        full = raw.get("full") if isinstance(raw, dict) else raw
        digits = re.sub(r"\D", "", str(full or ""))
        if not digits:
            raise Refused(f"{shown(raw, QUOTED)} holds no phone number")
        return {"full": digits}

    _s_phone = _w_phone

    def _w_connection(self, raw: Any) -> list[str]:
        ids = _connection_ids(raw)
        missing = [rid for rid in ids if rid not in self.connected]
        if missing:
            raise Refused(
                f"connected record {', '.join(missing[:3])} is not in "
                f"{(self.target.get('relationship') or {}).get('object')} of the destination "
                "app yet (publish the connected container first)"
            )
        return sorted(self.connected[rid] for rid in ids)

    def _s_connection(self, raw: Any) -> list[str]:
        return sorted(_connection_ids(raw))


def _family(kind: str) -> str:
    if kind in TEXT:
        return "text"
    if kind in NUMBERS:
        return "number"
    return {"date_time": "date", "multiple_choice": "choice"}.get(kind, kind)


def _wall(raw: dict[str, Any]) -> dt.datetime:
    """A Knack date's local wall time: ``unix_timestamp`` (local time written as UTC, in
    ms), else its date, hours, minutes and am_pm."""
    stamp = raw.get("unix_timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return _EPOCH + dt.timedelta(milliseconds=stamp)
    try:
        day = dt.datetime.strptime(str(raw["date"]), "%m/%d/%Y")
    except (KeyError, ValueError):
        raise Refused(f"{shown(raw, QUOTED)} is not a Knack date") from None
    hours = int(raw.get("hours") or 12) % 12
    hours += 12 if str(raw.get("am_pm", "AM")).upper() == "PM" else 0
    return day.replace(hour=hours, minute=int(raw.get("minutes") or 0))


def _canonical_date(wall: dt.datetime, date_only: bool) -> dict[str, Any]:
    if date_only:
        return {"date": wall.strftime("%m/%d/%Y")}
    return {
        "date": wall.strftime("%m/%d/%Y"),
        "hours": wall.hour % 12 or 12,
        "minutes": wall.minute,
        "am_pm": "AM" if wall.hour < 12 else "PM",
    }


def _parts(raw: Any, keys: tuple[str, ...], numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Refused(f"{shown(raw, QUOTED)} is not an object of {', '.join(keys)}")
    out: dict[str, Any] = {}
    for key in keys:
        value = raw.get(key)
        if _blank(value):
            continue
        if key in numbers:
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                raise Refused(f"{key} {shown(value, QUOTED)} is not a number") from None
        else:
            out[key] = str(value)
    return out or _none()


def _none() -> Any:
    return None


def _connection_ids(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    ids = []
    for item in items:
        rid = item.get("id") if isinstance(item, dict) else item
        if not isinstance(rid, str) or not rid:
            raise Refused(f"{shown(item, QUOTED)} is not a connected record")
        ids.append(rid)
    return ids
