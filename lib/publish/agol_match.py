"""ArcGIS's matching field (``upsert_matching_field``): one feature per value.

A value repeated among the records, or among the layer's features, would fold several
records into one feature. :func:`one_per_value` finds that before any write and refuses it
unless the container's mass-delete guard allows what the folding costs (records left out,
features deleted); :func:`not_unique` says why and what to do. A full run then deletes the
features whose value is gone from S3, and all but the first feature of a value
(:func:`remove_gone`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib import config
from lib.publish.values import shown

if TYPE_CHECKING:
    from lib.clients.agol import Layer
    from lib.publish.agol import AgolPublish

Pairs = list[tuple[str, dict[str, Any]]]  # (record id, feature)
SHOWN_VALUES = 5  # repeated matching values a message lists (with SHOWN_IDS ids each)
SHOWN_IDS = 3


def one_per_value(
    features: Pairs,
    existing: dict[Any, list[int]],
    match: str,
    agol: config.AgolConfig,
    cfg: config.ContainerConfig,
    result: AgolPublish,
) -> Pairs | None:
    """The features to upsert: one per matching value. A value repeated among the records
    (or among the layer's features, which a full run then deletes but one) folds them into
    one feature: refused before any write (None, ``result.errors`` says why) unless the
    mass-delete guard allows the records left out and the features deleted; allowed, the
    first record of a value (by id) is published, the others are skipped, by id."""
    by_value: dict[Any, list[str]] = {}
    for rid, feature in features:
        by_value.setdefault(feature["attributes"][match], []).append(rid)
    shared = {v: rids for v, rids in by_value.items() if len(rids) > 1}
    doubled = {v: oids for v, oids in existing.items() if len(oids) > 1 and v in by_value}
    if not shared and not doubled:
        return features
    folded = sum(len(rids) - 1 for rids in shared.values())
    extra = sum(len(oids) - 1 for oids in doubled.values())
    full = result.mode == "full"
    held = sum(len(oids) for oids in existing.values())
    if cfg.refuses_mass_delete(folded, len(features), len(by_value)) or (
        full and cfg.refuses_mass_delete(extra, held, len(by_value))
    ):
        result.errors.append(
            not_unique(
                agol,
                len(features),
                by_value,
                shared,
                doubled,
                folded,
                extra if full else 0,
                cfg,
                result,
            )
        )
        result.rerun_helps = False
        return None
    name = agol.upsert_matching_field
    if shared:
        result.notes.append(
            f"upsert_matching_field {name!r} is not unique: {folded} records "
            "share a value with another record and were skipped (listed)"
        )
    if doubled:
        result.notes.append(
            f"the layer holds {extra} more features than values of {name!r} "
            + (
                "(the full run deletes them)"
                if full
                else "(an incremental run updates one "
                "feature of a value; a full run deletes the others)"
            )
        )
    keep: Pairs = []
    for rid, feature in features:
        value = feature["attributes"][match]
        first = by_value[value][0]
        if rid == first:
            keep.append((rid, feature))
        else:
            result.skipped[rid] = (
                f"its {match} {shown(value)} is also record {first}'s (one feature per value)"
            )
    published = {rid for rid, _ in keep}
    result.points = [p for p in result.points if p.id in published]
    return keep


def not_unique(
    agol: config.AgolConfig,
    records: int,
    by_value: dict[Any, list[str]],
    shared: dict[Any, list[str]],
    doubled: dict[Any, list[int]],
    folded: int,
    extra: int,
    cfg: config.ContainerConfig,
    result: AgolPublish,
) -> str:
    """Why a publish with repeated matching values is refused, and what to do."""

    def listed(repeated: dict[Any, list[Any]], what: str, ids_are: str) -> str:
        top = sorted(repeated.items(), key=lambda item: (-len(item[1]), str(item[0])))
        text = "; ".join(
            f"{shown(value)}: {len(ids)} {what}, e.g. {ids_are}"
            + ", ".join(map(str, ids[:SHOWN_IDS]))
            for value, ids in top[:SHOWN_VALUES]
        )
        return text + (
            f"; and {len(top) - SHOWN_VALUES} more values" if len(top) > SHOWN_VALUES else ""
        )

    parts = []
    if shared:
        parts.append(
            f"{records} records hold {len(by_value)} values of it ({listed(shared, 'records', '')})"
        )
    if doubled:
        parts.append(
            f"the layer holds several features for {len(doubled)} of its values "
            f"({listed(doubled, 'features', 'object ids ')})"
        )
    cost = [f"{folded} records left out"] if folded else []
    cost += [f"{extra} features deleted"] if extra else []
    return (
        f"upsert_matching_field {agol.upsert_matching_field!r} is not unique: "
        + "; ".join(parts)
        + f". One feature per value would mean {' and '.join(cost)}, more than "
        f"mass_delete_threshold ({cfg.mass_delete_threshold:.0%}) allows. Nothing was "
        f"written. Set agol.upsert_matching_field under containers.{result.container} in "
        f"{result.app_name}.yaml to a field whose values are unique (usually `id`, the Knack "
        "record id); if one feature per value is really what you want, set "
        f"`allow_mass_delete: true` under containers.{result.container}, rerun, and set it "
        "back"
    )


def remove_gone(
    layer: Layer,
    existing: dict[Any, list[int]],
    stored: set[Any],
    chunk_size: int,
    result: AgolPublish,
    cfg: config.ContainerConfig,
) -> None:
    """Delete the features whose matching value is gone from S3, and duplicates (all but
    the first feature of a value), under the mass-delete guard; every deletion is counted
    in ``result.deleted`` (a duplicate as ``<value> (duplicate)``)."""
    doomed = {
        oid: str(value) for value, oids in existing.items() if value not in stored for oid in oids
    }
    doomed |= {
        oid: f"{value} (duplicate)"
        for value, oids in existing.items()
        if value in stored
        for oid in oids[1:]
    }
    if not doomed:
        return
    held = sum(len(oids) for oids in existing.values())
    if result.refused_mass_delete(
        len(doomed), held, len(stored), cfg, what="features of the layer"
    ):
        return
    oids = sorted(doomed)
    for start in range(0, len(oids), chunk_size):
        chunk = oids[start : start + chunk_size]
        answer = layer.delete(chunk)
        answered = set()
        for entry in answer.get("deleteResults") or []:
            oid = entry.get("objectId")
            answered.add(oid)
            if entry.get("success") and oid in doomed:
                result.deleted.append(doomed[oid])
            elif not entry.get("success"):
                error = (entry.get("error") or {}).get("description", "no reason given")
                result.errors.append(f"the layer refused to delete feature {oid}: {error}")
        # no result for a feature (e.g. a retried request the layer had applied): the
        # layer says whether it is still there
        unanswered = [oid for oid in chunk if oid not in answered]
        if unanswered:
            present = layer.present(unanswered)
            result.deleted += [doomed[oid] for oid in unanswered if oid not in present]
