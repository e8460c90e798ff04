"""What a publish to another Knack app writes: the field map checked against both apps'
fields (before any write), the maps of connected records, and the writes themselves (a
record created, updated or left as it is; the destination records whose source is gone).

The field map's bindings are by field key, as every destination's are: a mapped source
field gone from the container, or a destination field (or the match field) gone from the
destination object, fails the publish before any write, naming the field and its label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lib import config, schema
from lib.publish.knack_values import SUPPORTED, TEXT, Converter
from lib.publish.values import Refused

if TYPE_CHECKING:
    from lib.clients.knack_writes import KnackWriter
    from lib.publish.knack import KnackPublish


@dataclass
class Mapping:
    """One mapped field: source key → destination key, and how its values convert."""

    source: str
    target: str
    converter: Converter


@dataclass
class Writes:
    """The writes a run makes: creates (source id, body), updates (source id, destination
    id, body), and the destination records whose source is gone (``gone``; ``deletes`` those
    the run deletes)."""

    creates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    unchanged: int = 0
    matched: int = 0  # destination records holding a source id (the guard's base)

    @property
    def count(self) -> int:
        return len(self.creates) + len(self.updates) + len(self.deletes)


def object_fields(metadata: dict[str, Any], object_key: str) -> dict[str, dict[str, Any]] | None:
    """Field key → definition of an object of an app's metadata (None: no such object)."""
    for obj in metadata.get("objects") or []:
        if isinstance(obj, dict) and obj.get("key") == object_key:
            return {f["key"]: f for f in obj.get("fields") or [] if isinstance(f, dict)}
    return None


def check_fields(
    source: dict[str, Any], container: str, target: dict[str, Any], kc: config.KnackConfig
) -> tuple[list[Mapping], list[str]]:
    """The mappings of ``kc.fields`` between the source container's fields and the
    destination object's, or the problems (each naming a field) that fail the run."""
    where = f"containers.{container}.knack in the params"
    theirs = object_fields(target, kc.object)
    if theirs is None:
        return [], [
            f"Knack app {kc.app_name} has no object {kc.object}: fix knack.object ({where})"
        ]
    ours = schema.container_fields(source, container)
    problems = []
    match = theirs.get(kc.match_field)
    if match is None:
        problems.append(
            f"match_field {kc.match_field} is not a field of {kc.object} in {kc.app_name}"
        )
    elif match.get("type") not in TEXT:
        problems.append(
            f"match_field {kc.match_field} ({match.get('name')}) is a {match.get('type')} field: "
            "it must be a text field, to hold the source record id"
        )
    mappings = []
    source_tz, target_tz = schema.app_timezone(source), schema.app_timezone(target)
    for key, other in kc.fields.items():
        mine, theirs_field = ours.get(key), theirs.get(other)
        if mine is None:
            problems.append(
                f"source field {key} is gone from {container}: it fills {other} of {kc.object}; "
                f"remove it from knack.fields ({where}) or restore it"
            )
        if theirs_field is None:
            problems.append(
                f"destination field {other} (filled by {key}"
                + (f", {mine.get('name')!r}" if mine else "")
                + f") is gone from {kc.object} in {kc.app_name}: fix knack.fields ({where})"
            )
        elif theirs_field.get("type") not in SUPPORTED:
            problems.append(
                f"destination field {other} ({theirs_field.get('name')!r}) is a "
                f"{theirs_field.get('type')} field, which the API does not write"
            )
        if mine is not None and theirs_field is not None:
            mappings.append(
                Mapping(key, other, Converter(mine, theirs_field, source_tz, target_tz))
            )
    return mappings, problems


def connection_maps(
    writer: KnackWriter, app: config.AppConfig, kc: config.KnackConfig, mappings: list[Mapping]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """For each mapped connection field (by destination key): source record id →
    destination record id of the connected object, read from that object by the match field
    of the container of this app that publishes to it (one listing per object)."""
    maps: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    listed: dict[str, dict[str, str]] = {}
    for m in mappings:
        if m.converter.kind != "connection":
            continue
        other = (m.converter.target.get("relationship") or {}).get("object")
        feeders = [
            c.knack.match_field
            for c in app.containers.values()
            if c.knack and c.knack.app_name == kc.app_name and c.knack.object == other
        ]
        if not feeders:
            problems.append(
                f"destination field {m.target} connects to {other} of {kc.app_name}, which no "
                f"container of {app.name}.yaml publishes to (knack.object: {other}): its "
                "records cannot be matched to the source's"
            )
            continue
        if other not in listed:
            rows = writer.list_records(str(other)).records
            listed[other] = {
                str(r.get(f"{feeders[0]}_raw")): r["id"]
                for r in rows
                if r.get(f"{feeders[0]}_raw") not in (None, "")
            }
        maps[m.target] = listed[other]
    return maps, problems


def plan_writes(
    records: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    mappings: list[Mapping],
    kc: config.KnackConfig,
    result: KnackPublish,
) -> Writes:
    """Each source record as a create, an update (only its changed fields) or nothing;
    a value that cannot be converted fails that record (``result.failed``). ``gone``: the
    destination records holding a source id S3 no longer has, and the extra records of one
    source id."""
    writes = Writes()
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in existing:
        value = row.get(f"{kc.match_field}_raw")
        if isinstance(value, str) and value:
            by_source.setdefault(value, []).append(row)
    writes.matched = sum(len(rows) for rows in by_source.values())
    for record in records:
        rid = record["id"]
        try:
            values = {m.target: m.converter.write(record.get(f"{m.source}_raw")) for m in mappings}
        except Refused as e:
            result.failed[rid] = str(e)
            continue
        except Exception as e:  # noqa: BLE001 - one record's odd value never stops the others
            result.failed[rid] = f"{type(e).__name__}: {e}"
            continue
        held = by_source.get(rid)
        if not held:
            writes.creates.append((rid, _body(values, mappings)))
            continue
        changed = {
            m.target: values[m.target]
            for m in mappings
            if values[m.target] != m.converter.stored(held[0].get(f"{m.target}_raw"))
        }
        if changed:
            writes.updates.append((rid, held[0]["id"], _body(changed, mappings)))
        else:
            writes.unchanged += 1
    stored = {r["id"] for r in records}
    for value, rows in sorted(by_source.items()):
        extra = rows if value not in stored else rows[1:]
        writes.gone += [r["id"] for r in extra]
    return writes


def _body(values: dict[str, Any], mappings: list[Mapping]) -> dict[str, Any]:
    converters = {m.target: m.converter for m in mappings}
    return {key: converters[key].body(value) for key, value in values.items()}
