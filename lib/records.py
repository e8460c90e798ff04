"""Stored Knack records → named, formatted values, with knackpy's formatting.

The record shaping every job shares: the snapshot, the publishers, explore and the
emulators import it; it imports only ``lib.schema`` and knackpy.

Column names (``column_names``: the snapshot's columns, Socrata's field names, ArcGIS's
attributes) follow one rule, so that every field of a container has a name of its own and
the same metadata always gives the same names:

- The label rule (``field_name``): the Knack field's label, lowercase, with spaces, dashes
  and other punctuation as ``_``; a field labelled "ID" becomes ``_id`` (``id`` holds the
  Knack record id). A label left with no letter or digit (a two-character CJK label
  becomes ``__``) is named by its field key instead (``field_12``).
- Fields take their names in field-key number order (``field_9`` before ``field_20``): the
  first keeps its name; a later field whose name is taken (or reserved: ``id``, and
  ``record`` in the snapshot) gets ``_<field key>`` appended, again until the name is free
  (``signal_id_field_9``, then ``signal_id_field_9_field_9``). Knack numbers new fields
  upwards, so adding a field never renames an existing column.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import knackpy

from lib import schema

_NOT_NAME = re.compile(r"[^0-9a-z_]")
_LETTER_OR_DIGIT = re.compile(r"[0-9a-z]")
RESERVED = ("id",)  # a destination's column of the Knack record id: never a field's name


def field_name(label: str) -> str:
    """The label rule: lowercase, anything but ``[0-9a-z_]`` as ``_``, "id" as ``_id``."""
    name = _NOT_NAME.sub("_", label.strip().lower())
    return "_id" if name == "id" else name


@dataclass(frozen=True)
class ColumnName:
    """The name one field's column gets (``column_names``), and the names it was refused."""

    key: str  # the Knack field key, field_N
    label: str
    name: str  # unique among the container's fields and the reserved names
    passed_over: tuple[str, ...] = ()  # names it would have had, taken before it, in order


def _key_order(key: str) -> tuple[int, str]:
    """``field_9`` before ``field_20`` (by number, not as text); keys with no number last."""
    number = key.rpartition("_")[2]
    return (int(number), key) if number.isdigit() else (sys.maxsize, key)


def name_fields(
    labels: Mapping[str, str], *, reserved: Collection[str] = RESERVED
) -> dict[str, ColumnName]:
    """Field key → its column name, by the rule in this module's docstring, in key order."""
    taken = set(reserved)
    out: dict[str, ColumnName] = {}
    for key in sorted(labels, key=_key_order):
        label = labels[key]
        name = field_name(label)
        if not _LETTER_OR_DIGIT.search(name):  # "__" would say nothing about the field
            name = key
        passed_over: list[str] = []
        while name in taken:
            passed_over.append(name)
            name = f"{name}_{key}"
        taken.add(name)
        out[key] = ColumnName(key, label, name, tuple(passed_over))
    return out


def column_names(
    metadata: dict[str, Any], container: str, *, reserved: Collection[str] = RESERVED
) -> dict[str, str]:
    """Field key → column name of every field of the container's object (unique, stable):
    the one naming of columns that the snapshot and every publisher use."""
    named = name_fields(schema.field_names(metadata, container), reserved=reserved)
    return {key: n.name for key, n in named.items()}


@dataclass(frozen=True)
class Collision:
    """A field whose column a destination lacks, while it has the column of an earlier field
    that took the name this one would have had: publishing would leave this field out and
    fill a column with a field its users may not expect."""

    key: str
    label: str
    name: str  # the column the field needs
    holders: tuple[tuple[str, str, str], ...]  # (key, label, name) of the fields it lost to

    def message(self, destination: str) -> str:
        refused = ", then ".join(f"{n!r} (the column of {k} {lb!r})" for k, lb, n in self.holders)
        return (
            f"{self.key} {self.label!r} cannot have column {refused}: by the column-name rule "
            f"it is {self.name!r}, which {destination} lacks. Publishing would leave "
            f"{self.key} out while a column its users may take for it holds another field, "
            "so nothing was written. Rename one of the labels in Knack (then run "
            f"upload_metadata), or add a column {self.name!r} to {destination}"
        )


def unresolved_collisions(
    metadata: dict[str, Any], container: str, columns: Collection[str]
) -> list[Collision]:
    """The fields a destination with ``columns`` cannot tell apart (``Collision``): a field
    renamed by the rule whose column it lacks, while it has a column the field was refused
    (held by an earlier field). With neither column, neither field is published (both are
    listed as dropped): nothing is mixed up."""
    named = name_fields(schema.field_names(metadata, container))
    holder = {n.name: n for n in named.values()}
    out = []
    for n in named.values():
        if not n.passed_over or n.name in columns:
            continue
        lost_to = [holder[p] for p in n.passed_over if p in columns and p in holder]
        if lost_to:
            out.append(
                Collision(n.key, n.label, n.name, tuple((h.key, h.label, h.name) for h in lost_to))
            )
    return out


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


def knackpy_records(
    metadata: dict[str, Any], container: str, records: list[dict[str, Any]]
) -> list[Any]:
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
    """Format raw records with knackpy (offline: the records are given, never fetched);
    values are keyed by ``column_names``."""
    names = column_names(metadata, container)
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
            name = names.get(key, key)
            values[name] = fld.formatted
            types[name] = fld.field_def.type
            labels[name] = fld.field_def.name
            keys[name] = key
            if key == location_field:
                location, location_name = fld.raw, name
        out.append(
            Formatted(record.raw["id"], values, types, location, location_name, labels, keys)
        )
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
