"""The map of the explore report: a location (address) field's points, from the records'
raw latitude and longitude, on ``lib.maps``' Leaflet map."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib import maps, snapshot
from lib.clients.s3_records import escape_surrogates
from lib.explore.render import escape
from lib.records import coordinates

LOCATION_TYPE = "address"  # the Knack field type that holds latitude/longitude
LABEL_TYPES = ("short_text", "name")  # the first such column labels the map's points


@dataclass
class PointMap:
    """The points of one location (address) field, from the records' raw latitude and
    longitude (``field_N_raw``); a record with several (a list) gives several points."""

    field: str | None  # the field key mapped (None: no field has coordinates)
    column: str | None = None
    points: list[maps.Point] = field(default_factory=list)  # lon, lat, record id, label
    located: int = 0  # records with at least one point
    rows: int = 0
    others: dict[str, int] = field(default_factory=dict)  # other address columns -> located
    note: str = ""

    @property
    def unlocated(self) -> int:
        return self.rows - self.located

    def describe(self) -> str:
        if self.note:
            return self.note
        text = (
            f"{len(self.points):,} points of {self.column} ({self.field}) from "
            f"{self.located:,} of {self.rows:,} records; {self.unlocated:,} without "
            "coordinates"
        )
        if len(self.points) > maps.MAX_POINTS:
            text += f"; {maps.MAX_POINTS:,} of them drawn, evenly picked"
        if self.others:
            text += ". Other address columns with coordinates: " + ", ".join(
                f"{name} ({n:,} records)" for name, n in self.others.items()
            )
        return text

    def __repr__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        if not self.points:
            return f"<p>{escape(self.describe())}</p>"
        return maps.map_html(self.points, escape_surrogates(self.describe()))


def location_columns(spec: snapshot.Spec, preferred: Iterable[str | None] = ()) -> list[str]:
    """The keys of the snapshot's address fields, the ``preferred`` ones (params'
    ``location_field``\\ s) first."""
    keys = [c.key for c in spec.columns if c.type == LOCATION_TYPE]
    first = [k for k in dict.fromkeys(preferred) if k in keys]
    return first + [k for k in keys if k not in first]


def point_map(records: Sequence[str], spec: snapshot.Spec, keys: Sequence[str]) -> PointMap:
    """Map the first of ``keys`` whose raw values hold coordinates; count the others. A
    point's popup has its record's id and the record's first text (``LABEL_TYPES``) value."""
    names = {c.key: c.name for c in spec.columns}
    label_key = next((c.key for c in spec.columns if c.type in LABEL_TYPES), None)
    rows = len(records)
    if not keys:
        return PointMap(
            None, rows=rows, note="The container has no location (address) field: no map."
        )
    per_key: dict[str, list[list[tuple[float, float]]]] = {k: [] for k in keys}
    ids: list[tuple[str, str]] = []  # per record: its id and label
    for text in records:
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        ids.append((_text(raw.get("id")), _label(raw, label_key)))
        for k in keys:
            per_key[k].append(coordinates(raw.get(f"{k}_raw")))
    chosen = next((k for k in keys if any(per_key[k])), None)
    if chosen is None:
        listed = ", ".join(f"{names[k]} ({k})" for k in keys)
        return PointMap(
            None,
            rows=rows,
            note=f"No record has coordinates in its address fields ({listed}): no map.",
        )
    found = per_key[chosen]
    others = {names[k]: sum(1 for p in per_key[k] if p) for k in keys if k != chosen}
    return PointMap(
        chosen,
        names[chosen],
        [maps.Point(lon, lat, *ids[i]) for i, pts in enumerate(found) for lon, lat in pts],
        located=sum(1 for p in found if p),
        rows=rows,
        others={n: c for n, c in others.items() if c},
    )


def _label(raw: dict[str, Any], key: str | None) -> str:
    """A record's text value of ``key`` (raw, else Knack's formatted), "" when none."""
    if key is None:
        return ""
    for value in (raw.get(f"{key}_raw"), raw.get(key)):
        if isinstance(value, str) and value.strip():
            return escape_surrogates(value.strip())
    return ""


def _text(value: Any) -> str:
    return escape_surrogates(str(value)) if value not in (None, "") else ""
