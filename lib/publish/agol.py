"""S3 → an ArcGIS Online feature layer (or table), through the ArcGIS client
(``lib.clients.agol``).

Records are matched on the layer's ``upsert_matching_field`` (``id``, the Knack record id,
by default). Incremental runs upsert the records written to S3 at or after ``date``:
features whose matching value is already in the layer are updated, the others added.
Full runs make the layer equal to S3 without truncating it first: the same upsert of
every record, then the features whose records are gone from S3 (and duplicates of one
matching value) are deleted, each deletion counted. A failure half-way leaves the layer's
features in place and a rerun completes the work. Per-feature errors, which the library
does not raise, fail the run and name the records.

Attributes are filled by the binding plan (``lib.bindings``: a field of the layer keeps
the Knack field key it was bound to, whatever its label becomes; one that would go blank
fails the run before any write; an update sends only the attributes the plan fills, so a
retired field keeps its values). Before any write: each value is checked against its
field's type (``lib.publish.values``: a record with a value its field cannot take fails by
id, a retyped field fails the run), and the matching values must be unique, among the
records and among the layer's features: repeated ones would fold several records into one
feature, so they are refused unless the container's mass-delete guard allows what that
folding costs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from lib import config, schema
from lib.bindings import Destination
from lib.clients.agol import Layer
from lib.errors import ConfigError
from lib.maps import Point, PointsMap
from lib.progress import progress_bar
from lib.publish import register
from lib.publish import run as publish_run
from lib.publish.agol_match import Pairs, one_per_value
from lib.publish.agol_match import remove_gone as _remove_gone
from lib.publish.agol_values import DATE, geometry
from lib.publish.agol_values import label as label_of
from lib.publish.agol_values import value as _value
from lib.publish.run import PublishResult, grouped_table, sample_table, table
from lib.publish.values import ValueCheck
from lib.records import Formatted, coordinates, format_records
from lib.table import Note, Table

logger = logging.getLogger(__name__)

JOB = "knack_container_to_agol"
SAMPLE_ROWS = 5
LISTED = 50  # ids listed in a message


@dataclass(kw_only=True)
class AgolPublish(PublishResult):
    service_id: str
    layer_id: int
    layer_name: str = ""
    geometry_type: str | None = None  # None: a table
    added: int = 0
    updated: int = 0
    # the matching value of each deleted feature ("<value> (duplicate)" for a duplicate)
    deleted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # record id -> why
    failed: dict[str, str] = field(default_factory=dict)  # record id -> why (layer or value)
    points: list[Point] = field(default_factory=list)  # published: lon, lat, record id, label

    @property
    def destination(self) -> str:
        return f"ArcGIS item {self.service_id} layer {self.layer_id}"

    def target(self) -> dict[str, Any]:
        return {"service_id": self.service_id, "layer_id": self.layer_id}

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": len(self.deleted),
            "skipped": len(self.skipped),
        }

    def skipped_table(self) -> Table:
        return grouped_table(self.skipped, "record ids", "why")

    def failed_table(self) -> Table:
        return table(self.failed, "record id", "error")

    def map(self) -> PointsMap | Note:
        """The published points on an interactive map (popups: record id and label); for a
        table (or no point published), a line saying so."""
        if not self.points:
            return Note(
                "A table: no geometry to map."
                if not self.geometry_type
                else "No point was published: nothing to map."
            )
        return PointsMap(
            self.points, f"{len(self.points):,} points in {self.layer_name or self.service_id}"
        )


@register("agol")
def publish(*, app_name: str, container: str, env: str, date: Any = None) -> AgolPublish:
    run = publish_run.start(
        app_name=app_name, container=container, env=env, date=date, job=JOB, destination="agol"
    )
    agol = run.cfg.agol
    assert agol is not None  # start() checked it
    result = AgolPublish(**run.identity(), service_id=agol.service_id, layer_id=agol.layer_id)
    layer: Layer | None = None
    try:
        layer = Layer(service_id=agol.service_id, layer_id=agol.layer_id)
        _publish(run, agol, layer, result)
    finally:
        if layer is not None:
            result.requests, result.retries = layer.requests, layer.retries
        result.seconds = run.elapsed()
    logger.info(
        "%s → %s/%s: %s",
        run.container,
        agol.service_id,
        agol.layer_id,
        publish_run.summary_line(result.summary()),
    )
    return result


def _publish(
    run: publish_run.PublishRun, agol: config.AgolConfig, layer: Layer, result: AgolPublish
) -> None:
    """Check every value and the matching values, then (unless refused) upsert and, on a
    full run, delete what S3 no longer holds."""
    result.layer_name, result.geometry_type = layer.name, layer.geometry_type
    match = layer.names.get(agol.upsert_matching_field.lower(), "")
    if not match:
        raise ConfigError(
            f"upsert_matching_field {agol.upsert_matching_field!r} is not a field of "
            f"layer {layer.name!r} (fields: {', '.join(sorted(layer.fields))}); fix it under "
            f"containers.{run.container}.agol"
        )
    plan = run.bind(Destination.agol(agol), layer.fields, result)
    if plan is None:
        return
    sent = {layer.names[column]: f.name for column, f in plan.fill.items()}
    _geometry_notes(agol, layer, result)
    records = run.read_records()
    result.read = len(records)
    formatted = format_records(
        run.metadata, run.container, records, location_field=agol.location_field
    )
    tz = schema.app_timezone(run.metadata)
    check = ValueCheck("field {} of the layer")
    features = [
        (f.id, feature)
        for f in formatted
        if (feature := _feature(f, layer, match, tz, result, check, sent)) is not None
    ]
    retyped = check.retyped()
    if retyped:
        result.errors.append(retyped)
        result.rerun_helps = False
        return
    result.failed.update(check.failed)
    existing = layer.existing(
        match,
        None if result.mode == "full" else sorted({ft["attributes"][match] for _, ft in features}),
    )
    features = one_per_value(features, existing, match, agol, run.cfg, result)
    if features is None:
        return
    result.sample = sample_table(  # the layer's dates (epoch ms) as the app's local times
        [ft["attributes"] for _, ft in features[:SAMPLE_ROWS]],
        dates=[name for name, kind in layer.fields.items() if kind == DATE],
        tz=tz,
    )
    _upsert(layer, match, features, existing, agol.chunk_size, result)
    if result.mode == "full" and not result.failed and result.ok:
        stored = {ft["attributes"][match] for _, ft in features}
        _remove_gone(layer, existing, stored, agol.chunk_size, result, run.cfg)
    elif result.mode == "full" and result.ok:
        result.notes.append(
            "no feature was deleted: a full run deletes once every record is published"
        )
    refused = {rid: why for rid, why in result.failed.items() if rid not in check.failed}
    if check.failed:
        result.errors.append(check.failures("the layer's field types"))
    if refused:
        first = list(refused.items())[:LISTED]
        result.errors.append(
            f"the layer refused {len(refused)} features: "
            + "; ".join(f"{rid}: {why}" for rid, why in first)
            + ". It refuses them again on a rerun: fix those records in Knack or the "
            "layer's fields first"
        )
    if result.failed:
        result.rerun_helps = False
    if result.ok:
        run.succeeded(plan)


def _geometry_notes(agol: config.AgolConfig, layer: Layer, result: AgolPublish) -> None:
    if agol.location_field and not layer.geometry_type:
        result.notes.append(
            f"layer {layer.name!r} is a table: {agol.location_field} is published without geometry"
        )
    elif layer.geometry_type and not agol.location_field:
        result.notes.append(
            f"layer {layer.name!r} has {layer.geometry_type} geometry but no "
            "agol.location_field is set: features are published without it"
        )


def _feature(
    f: Formatted,
    layer: Layer,
    match: str,
    tz: dt.tzinfo,
    result: AgolPublish,
    check: ValueCheck | None = None,
    sent: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """One record as a feature of the attributes ``sent`` (the layer's field → the name of
    the value that fills it; None: the fields the label rule fills, the others dropped), or
    None: a value its field cannot take (``check`` says which), or skipped (with the reason
    in ``result.skipped``)."""
    check = check if check is not None else ValueCheck("field {} of the layer")
    if sent is None:
        sent = {layer.names[n]: n for n in f.values if n in layer.names}
        result.dropped_fields.update(
            (n, "not a field of the layer") for n in f.values if n not in layer.names
        )
    attributes: dict[str, Any] = {}
    if "id" in layer.names:
        attributes[layer.names["id"]] = f.id
    for target, name in sent.items():
        kind = layer.fields[target]
        value = check.value(f, name, target, kind, _value, kind, tz) if name in f.values else None
        attributes[target] = value
    if f.id in check.failed:
        return None
    if attributes.get(match) in (None, ""):
        result.skipped[f.id] = f"no value for the matching field {match!r}"
        return None
    feature: dict[str, Any] = {"attributes": attributes}
    if layer.geometry_type and f.location_name is not None:
        points = coordinates(f.location)
        if not points:
            result.skipped[f.id] = f"no coordinates in {f.labels.get(f.location_name)!r}"
            return None
        feature["geometry"] = geometry(
            points, as_list=isinstance(f.location, list), layer_type=layer.geometry_type
        )
        label = label_of(f)
        result.points.extend(Point(lon, lat, f.id, label) for lon, lat in points)
    return feature


def _upsert(
    layer: Layer,
    match: str,
    features: Pairs,
    existing: dict[Any, list[int]],
    chunk_size: int,
    result: AgolPublish,
) -> None:
    """Update the features whose matching value the layer holds, add the others."""
    with progress_bar(f"upsert {layer.name}", total=len(features), unit="feat") as bar:
        for start in range(0, len(features), chunk_size):
            chunk = features[start : start + chunk_size]
            what = f"applying edits to features {start + 1}-{start + len(chunk)}"
            adds, add_results = _edit(layer, match, chunk, existing, what, result)
            # An add that failed although the layer now holds its value (e.g. the library
            # re-sent a request that timed out after it was applied) becomes an update
            failed = [
                pair for pair, r in zip(adds, add_results, strict=True) if not r.get("success")
            ]
            _refresh(layer, match, failed, existing)
            now_held = [p for p in failed if existing.get(p[1]["attributes"][match])]
            held_ids = {rid for rid, _ in now_held}
            kept = [(p, r) for p, r in zip(adds, add_results, strict=True) if p[0] not in held_ids]
            result.added += _count([r for _, r in kept], [p for p, _ in kept], result)
            if now_held:
                _edit(layer, match, now_held, existing, f"{what} (as updates)", result)
            bar.update(len(chunk))


def _edit(
    layer: Layer,
    match: str,
    chunk: Pairs,
    existing: dict[Any, list[int]],
    what: str,
    result: AgolPublish,
) -> tuple[Pairs, list[dict[str, Any]]]:
    """One applyEdits of ``chunk``: updates for the values the layer holds, adds for the
    others. Counts the updates; returns the adds and their results for the caller.

    Adds are not idempotent: before a retry the layer is asked again which values it
    holds, so a request that failed after the layer applied it adds nothing twice.
    """
    sent: dict[str, Pairs] = {}

    def edit() -> Any:
        sent["adds"], sent["updates"] = [], []
        for rid, feature in chunk:
            oids = existing.get(feature["attributes"][match])
            if oids:
                feature["attributes"][layer.oid_field] = oids[0]
            else:
                feature["attributes"].pop(layer.oid_field, None)
            sent["updates" if oids else "adds"].append((rid, feature))
        return layer.layer.edit_features(
            adds=[f for _, f in sent["adds"]],
            updates=[f for _, f in sent["updates"]],
            rollback_on_failure=False,
        )

    answer = layer.call(what, edit, before_retry=lambda: _refresh(layer, match, chunk, existing))
    result.updated += _count(answer.get("updateResults"), sent["updates"], result)
    add_results = list(answer.get("addResults") or [])
    add_results += [{}] * (len(sent["adds"]) - len(add_results))  # a result for each add
    return sent["adds"], add_results[: len(sent["adds"])]


def _refresh(layer: Layer, match: str, pairs: Pairs, existing: dict[Any, list[int]]) -> None:
    """Ask the layer again which of these features' values it holds."""
    if pairs:
        values = sorted({f["attributes"][match] for _, f in pairs})
        existing.update(layer.existing(match, values))


def _count(
    results: list[dict[str, Any]] | None,
    sent: list[tuple[str, dict[str, Any]]],
    result: AgolPublish,
) -> int:
    """Successes among ``results`` (in the order sent); failures go to ``result.failed``."""
    results = results or []
    ok = 0
    for i, (rid, _) in enumerate(sent):
        answer = results[i] if i < len(results) else None
        if answer is not None and answer.get("success"):
            ok += 1
        else:
            error = (answer or {}).get("error") or {}
            result.failed[rid] = f"{error.get('description') or 'no result for this feature'}" + (
                f" (code {error['code']})" if error.get("code") else ""
            )
    return ok
