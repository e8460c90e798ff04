"""Stored Knack records → named, formatted values, with knackpy's formatting.

Field names follow the destinations' rule: the Knack field's label, lowercase, with
spaces, dashes and other punctuation as ``_``; a field labelled "ID" becomes ``_id``
(``id`` holds the Knack record id).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import knackpy

from lib import schema

_NOT_NAME = re.compile(r"[^0-9a-z_]")


def field_name(label: str) -> str:
    name = _NOT_NAME.sub("_", label.strip().lower())
    return "_id" if name == "id" else name


@dataclass
class Formatted:
    """One record: ``id`` and its values by destination field name."""

    id: str
    values: dict[str, Any]
    types: dict[str, str]  # destination field name -> Knack field type
    location: Any = None  # the raw value of the location field, if one was asked for
    location_name: str | None = None  # and its destination field name
    labels: dict[str, str] = field(default_factory=dict)  # destination name -> Knack label
    keys: dict[str, str] = field(default_factory=dict)  # destination name -> Knack field key


def knackpy_records(metadata: dict[str, Any], container: str,
                    records: list[dict[str, Any]]) -> list[Any]:
    """``records`` as knackpy ``Record`` objects (``.fields``: field key -> field with its
    ``formatted`` value and ``field_def``), formatted offline: nothing is fetched."""
    if not records:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # knackpy warns that no API key was given
        app = knackpy.App(app_id=metadata["id"], metadata={"application": metadata})
    # a field added to the object after a record was fetched is absent from it: knackpy
    # would raise KeyError, so it is given as empty (on a copy: the record stays as stored)
    keys = schema.container_fields(metadata, container)
    app.data[container] = [
        r if keys.keys() <= r.keys() else {**{k: None for k in keys}, **r} for r in records
    ]  # knackpy formats these and makes no request
    return list(app.get(container))


def format_records(
    metadata: dict[str, Any],
    container: str,
    records: list[dict[str, Any]],
    *,
    location_field: str | None = None,
) -> list[Formatted]:
    """Format raw records with knackpy (offline: the records are given, never fetched)."""
    out = []
    for record in knackpy_records(metadata, container, records):
        values: dict[str, Any] = {}
        types: dict[str, str] = {}
        labels: dict[str, str] = {}
        keys: dict[str, str] = {}
        location = location_name = None
        for key, fld in record.fields.items():
            if key == "id":
                continue
            name = field_name(fld.field_def.name)
            values[name] = fld.formatted
            types[name] = fld.field_def.type
            labels[name] = fld.field_def.name
            keys[name] = key
            if key == location_field:
                location, location_name = fld.raw, name
        out.append(Formatted(record.raw["id"], values, types, location, location_name, labels,
                             keys))
    return out


def coordinates(raw: Any) -> list[tuple[float, float]]:
    """(lon, lat) pairs of a Knack address value: one, several (a list), or none."""
    items = raw if isinstance(raw, list) else [raw]
    points = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            lat, lon = float(item["latitude"]), float(item["longitude"])
        except (KeyError, TypeError, ValueError):
            continue
        points.append((lon, lat))
    return points
