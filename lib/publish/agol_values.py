"""Knack values as an ArcGIS layer's fields take them: attribute values by esri field type
(checked with ``lib.publish.values``: a value a field cannot take is refused, never
nulled), point or multipoint geometry, and a map popup's label."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lib.publish import values
from lib.publish.values import is_empty
from lib.records import Formatted

WKID = 4326  # WGS 84: Knack stores latitude/longitude
DATE = "esriFieldTypeDate"
INTEGER = {  # the range of each integer type (BigInteger: what JSON holds exactly)
    "esriFieldTypeSmallInteger": (-(2**15), 2**15 - 1),
    "esriFieldTypeInteger": (-(2**31), 2**31 - 1),
    "esriFieldTypeBigInteger": (-(2**53), 2**53),
}
REAL = {"esriFieldTypeDouble", "esriFieldTypeSingle"}
LABEL_TYPES = ("short_text", "name")  # the first such field labels the map's points


def label(f: Formatted) -> str:
    """A map popup's label: the record's value of the first text field (``LABEL_TYPES``),
    "" when it has none."""
    name = next((n for n, t in f.types.items() if t in LABEL_TYPES), None)
    value = f.values.get(name) if name is not None else None
    return value.strip() if isinstance(value, str) else ""


def geometry(
    points: list[tuple[float, float]], *, as_list: bool, layer_type: str
) -> dict[str, Any]:
    """A point, or a multipoint when the value is a list (or the layer holds multipoints)."""
    reference = {"wkid": WKID}
    if layer_type == "esriGeometryMultipoint" or (as_list and len(points) > 1):
        return {"points": [[lon, lat] for lon, lat in points], "spatialReference": reference}
    lon, lat = points[0]
    return {"x": lon, "y": lat, "spatialReference": reference}


def value(value: Any, field_type: str, tz: dt.tzinfo) -> Any:
    """``value`` as a field of ``field_type`` takes it (empty: null); Refused when it cannot
    take it (a fraction for an integer field is refused, never truncated)."""
    if value is None or value == "":
        return None
    if field_type == DATE:
        return None if is_empty(value) else epoch_ms(value, tz)
    if field_type in INTEGER:
        return None if is_empty(value) else values.whole_number(value, *INTEGER[field_type])
    if field_type in REAL:
        return None if is_empty(value) else float(values.number(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def epoch_ms(value: Any, tz: dt.tzinfo) -> int:
    """An ISO time (knackpy's, with the app's offset) as UTC epoch milliseconds."""
    parsed = values.instant(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)  # a wall time in the app's timezone
    return int(parsed.timestamp() * 1000)
