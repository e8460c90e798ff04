"""A snapshot's columns: ``id``, ``record``, then one typed column per field of the
container's object, named by the label rule (``column_names``: the publishers' names, with
``record`` reserved too), and how a formatted value becomes its column's value.

The spec is kept in the file (``knack_nb`` schema metadata): an incremental sync merges
into the previous snapshot with its columns, and says when the object's fields changed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lib import schema
from lib.clients.s3_records import dumps_stable, md5_hex
from lib.errors import KnackNbError
from lib.records import column_names

METADATA_KEY = b"knack_nb"  # the columns a snapshot was built with (its schema metadata)
FORMAT_VERSION = 1
FLOAT_TYPES = frozenset({"number", "currency", "rating", "auto_increment"})
INTEGER_TYPES = frozenset({"auto_increment"})  # float64 in the file; Int64 in read_frame
RESERVED = ("id", "record")  # never a field's column: column_names appends its key


class SnapshotError(KnackNbError):
    """A snapshot that is missing or cannot be read or written; the message says what to do."""


@dataclass(frozen=True)
class Column:
    key: str  # the Knack field key, field_N
    name: str  # the column's name, by the label rule
    type: str  # the Knack field type


@dataclass(frozen=True)
class Spec:
    """What a snapshot's columns are: the container's object's fields and the timezone."""

    container: str
    timezone: str  # IANA name: date_time columns are timestamps in it
    columns: tuple[Column, ...]
    fields_hash: str = ""  # of the object's field definitions (formats too), and the timezone

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], container: str) -> Spec:
        names = column_names(metadata, container, reserved=RESERVED)
        types = schema.field_types(metadata, container)
        columns = [
            Column(key, names[key], types.get(key, ""))  # in the metadata's order
            for key in schema.field_names(metadata, container)
        ]
        tz = schema.app_timezone(metadata).key
        defs = dumps_stable([schema.container_fields(metadata, container), tz])
        return cls(container, tz, tuple(columns), md5_hex(defs))

    @classmethod
    def from_schema(cls, arrow_schema: pa.Schema) -> Spec | None:
        """The spec kept in a snapshot's file; None when it has none (not one of ours)."""
        raw = (arrow_schema.metadata or {}).get(METADATA_KEY)
        try:
            meta = json.loads(raw)
            return cls(
                meta["container"],
                meta["timezone"],
                tuple(Column(*c) for c in meta["columns"]),
                meta.get("fields_hash", ""),
            )
        except (TypeError, ValueError, KeyError):
            return None

    def arrow_schema(self) -> pa.Schema:
        fields = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("record", pa.string(), nullable=False),
        ]
        fields += [pa.field(c.name, self._arrow_type(c.type)) for c in self.columns]
        meta = {
            "version": FORMAT_VERSION,
            "container": self.container,
            "timezone": self.timezone,
            "fields_hash": self.fields_hash,
            "columns": [[c.key, c.name, c.type] for c in self.columns],
        }
        return pa.schema(fields, metadata={METADATA_KEY: json.dumps(meta)})

    def _arrow_type(self, knack_type: str) -> pa.DataType:
        if knack_type in FLOAT_TYPES:
            return pa.float64()
        if knack_type == "boolean":
            return pa.bool_()
        if knack_type == "date_time":
            return pa.timestamp("us", tz=self.timezone)
        return pa.string()

    def differences(self, other: Spec) -> list[str]:
        """How ``other`` (the metadata's spec now) differs from this one, in words."""
        mine = {c.key: c for c in self.columns}
        theirs = {c.key: c for c in other.columns}
        out = [f"{k} added" for k in theirs if k not in mine]
        out += [f"{k} removed" for k in mine if k not in theirs]
        out += [
            f"{k} is now {theirs[k].name} ({theirs[k].type})"
            for k in mine
            if k in theirs and mine[k] != theirs[k]
        ]
        if self.timezone != other.timezone:
            out.append(f"timezone {self.timezone} is now {other.timezone}")
        return out


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").replace("$", "").strip())
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "false"):
        return False
    return None


def _instant(value: Any) -> dt.datetime | None:
    """knackpy's formatted date_time (ISO-8601 with the app's offset) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo is not None else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def converter(knack_type: str) -> Callable[[Any], Any]:
    """The function that makes knackpy's formatted value of a field of ``knack_type`` its
    column's value (None when it cannot)."""
    if knack_type in FLOAT_TYPES:
        return _float
    if knack_type == "boolean":
        return _bool
    if knack_type == "date_time":
        return _instant
    return _text
