"""Values checked against the type of the destination column they go to.

A value its column cannot take (text like "3 cabinets" in a number column, a date that is
not one) is never sent as null: its record fails alone, by id, naming the column, the value
and the column's type. A column that takes none of its non-empty values means the field
was retyped (in Knack, or the column at the destination): the run then fails before any
write, saying so. Empty values (None, blank text, an empty list) stay null.

Each destination converts its own values (``lib.publish.socrata``, ``lib.publish.agol``)
with the parsers here, which raise :class:`Refused`; a :class:`ValueCheck` collects what
was refused. The cost is one call per value: the checks are the conversions themselves.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lib.records import Formatted

SHOWN_CHARS = 40  # of a value quoted in a message
LISTED = 50  # records listed in a message
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRUE = frozenset({"true", "yes", "on", "1"})  # Knack's boolean formats, as text
_FALSE = frozenset({"false", "no", "off", "0"})


class Refused(ValueError):
    """A value its column cannot take; the message says why, in a few words."""


FAILED = object()  # what a ValueCheck answers for a refused value (never sent)


def is_empty(value: Any) -> bool:
    """None, blank text, an empty list: a value that is published as null."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list) and all(is_empty(v) for v in value)


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` quoted for a message: one line, at most ``limit`` characters, control
    characters escaped (``repr``)."""
    text = " ".join(str(value).split()) if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text) if isinstance(value, str) else text


def _text(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def number(value: Any) -> int | float:
    """A finite number: a JSON number, a boolean as 1/0, or text of one (thousands
    separators and a ``$`` are allowed, as Knack formats currency)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Refused("not a finite number")
        return value
    text = _text(value).strip().replace(",", "").replace("$", "")
    if not _NUMBER.fullmatch(text):
        raise Refused("not a number")
    parsed = float(text)
    if not math.isfinite(parsed):
        raise Refused("not a finite number")
    return parsed


def whole_number(value: Any, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``: a fraction is refused, never truncated."""
    parsed = number(value)
    if isinstance(parsed, float):
        if not parsed.is_integer():
            raise Refused("not a whole number")
        parsed = int(parsed)
    if not low <= parsed <= high:
        raise Refused(f"outside {low}..{high}")
    return parsed


def boolean(value: Any) -> bool:
    """True or false: a JSON boolean, 1/0, or Knack's words for them (yes/no, on/off)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = _text(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise Refused("not true or false")


def instant(value: Any) -> dt.datetime:
    """An ISO-8601 date or time (knackpy's, with the app's offset, or without one)."""
    try:
        return dt.datetime.fromisoformat(_text(value).strip())
    except ValueError:
        raise Refused("not an ISO date or time") from None


def _kind(value: Any) -> str:
    """What a value is, in a word, for the message of a retyped field."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "numbers"
    return "lists" if isinstance(value, list) else "values"


@dataclass
class _Column:
    """What a check saw of one column: its field, and its first refused value."""

    field: str  # the Knack field key
    label: str
    column_type: str
    refused: int = 0
    example: Any = None


@dataclass
class ValueCheck:
    """The values of one publish checked against their columns' types.

    ``where`` names a column in messages (``"column {}"``, ``"field {} of the layer"``).
    ``failed``: record id -> why, for the records with a value their column cannot take.
    """

    where: str
    failed: dict[str, str] = field(default_factory=dict)
    _columns: dict[str, _Column] = field(default_factory=dict)
    _taken: set[str] = field(default_factory=set)  # columns that took a non-empty value

    def value(
        self,
        f: Formatted,
        name: str,
        column: str,
        column_type: str,
        convert: Callable[..., Any],
        *args: Any,
    ) -> Any:
        """``convert(f.values[name], *args)`` for ``column``, or FAILED (then ``f`` fails,
        the reason in ``failed``)."""
        value = f.values[name]
        try:
            out = convert(value, *args)
        except Refused as e:
            self._refuse(f, name, column, column_type, value, str(e))
            return FAILED
        if out is not None:
            self._taken.add(column)
        return out

    def _refuse(
        self, f: Formatted, name: str, column: str, column_type: str, value: Any, why: str
    ) -> None:
        seen = self._columns.get(column)
        if seen is None:
            seen = self._columns[column] = _Column(
                f.keys.get(name, "?"), f.labels.get(name, name), column_type, example=value
            )
        seen.refused += 1
        reason = f"{column} ({column_type}) cannot take {shown(value)}: {why}"
        self.failed[f.id] = f"{self.failed[f.id]}; {reason}" if f.id in self.failed else reason

    def retyped(self) -> str | None:
        """Why the run must fail before any write, or None: the columns none of whose
        non-empty values could be taken (a retyped field), one sentence each."""
        columns = {c: s for c, s in self._columns.items() if c not in self._taken}
        if not columns:
            return None
        return "; ".join(
            f"{s.field} {s.label!r} holds {_kind(s.example)} like {shown(s.example)} but "
            f"{self.where.format(c)} is {s.column_type} (none of its {s.refused} non-empty "
            "values fits: was the field retyped?)"
            for c, s in sorted(columns.items())
        ) + (
            ". Nothing was written. Change the destination's column type, or the field "
            "back in Knack (then sync), and rerun"
        )

    def failures(self, what: str) -> str:
        """The error of a run with failed records (``what``: where to fix the types)."""
        listed = list(self.failed.items())[:LISTED]
        more = len(self.failed) - len(listed)
        return (
            f"{len(self.failed)} records were not published, a value of theirs does not fit "
            f"its {self.where.split()[0]}: "
            + "; ".join(f"{rid}: {why}" for rid, why in listed)
            + (f"; and {more} more (the report lists them)" if more else "")
            + f". They fail again on a rerun: fix those records in Knack or {what} first"
        )
