"""Reading a Knack app's metadata: its containers as tables, what changed between two, and
the app's timezone.

Pure functions over the metadata dict (the ``application`` member of Knack's answer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lib.errors import KnackAPIError
from lib.table import Table


@dataclass(frozen=True)
class SchemaChange:
    container: str  # object key, or view key for a view's own change
    change: str  # "object added", "object removed", "field added", "field removed",
    #              "field renamed", "field retyped"
    field: str = ""
    before: str = ""
    after: str = ""


NOT_GIVEN = "not given"  # what a report shows for an optional member the metadata lacks


def _objects(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in metadata.get("objects") or [] if isinstance(o, dict)]


def _scenes(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in metadata.get("scenes") or [] if isinstance(s, dict)]


def _views(scene: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in scene.get("views") or [] if isinstance(v, dict)]


def _given(value: Any) -> Any:
    return NOT_GIVEN if value is None or value == "" else value


def app_name(metadata: dict[str, Any]) -> str:
    """The app's name for a report, or "name not given"."""
    return str(metadata.get("name") or f"name {NOT_GIVEN}")


def app_description(metadata: dict[str, Any]) -> str:
    """The app's name and timezone for a report, "not given" for what the metadata lacks."""
    settings = metadata.get("settings")
    timezone = settings.get("timezone") if isinstance(settings, dict) else None
    return f"{app_name(metadata)}, timezone {timezone or NOT_GIVEN}"


def app_timezone(metadata: dict[str, Any]) -> ZoneInfo:
    """The app's timezone from ``settings.timezone`` (a Knack display name or an IANA name)."""
    from knackpy.models import TIMEZONES  # knackpy is heavy: only when a timezone is read

    name = (metadata.get("settings") or {}).get("timezone") or ""
    for tz in TIMEZONES:
        if tz["common_name"].lower() == name.lower():
            name = tz["iana_name"]
            break
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise KnackAPIError(f"unknown timezone {name!r} in the app's settings.timezone") from None


def _count(counts: Any, key: Any) -> int | float | None:
    value = counts.get(key) if isinstance(counts, dict) else None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if is_number else None


def objects_table(metadata: dict[str, Any]) -> Table:
    """One row per object: key, name, number of fields and Knack's record count ("not
    given" where the metadata lacks it)."""
    counts = metadata.get("counts")
    rows = [
        {
            "object": _given(o.get("key")),
            "name": _given(o.get("name")),
            "fields": len(o["fields"]) if isinstance(o.get("fields"), list) else NOT_GIVEN,
            "records": _given(_count(counts, o.get("key"))),
        }
        for o in _objects(metadata)
    ]
    return Table(rows, ["object", "name", "fields", "records"])


@dataclass(frozen=True)
class RecordCounts:
    """Knack's record count per object, for a plot; ``note`` says what was not given."""

    counts: dict[str, int | float]  # object key -> records, only those Knack gave a count for
    note: str | None = None

    def table(self, caption: str | None = None) -> Table:
        """The counts, largest first, with a bar each (no bars when every count is 0)."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return Table.of_pairs(dict(ranked), "object", "records", caption=caption, bars="records")


def record_counts(metadata: dict[str, Any]) -> RecordCounts:
    """The objects' record counts Knack gave (``counts``; optional, may be partial)."""
    keys = [o["key"] for o in _objects(metadata) if o.get("key")]
    given = {k: _count(metadata.get("counts"), k) for k in keys}
    counts = {k: v for k, v in given.items() if v is not None}
    missing = [k for k, v in given.items() if v is None]
    if not keys:
        note = "The metadata lists no objects (not given): no record counts to show."
    elif not counts:
        note = "Knack gave no record counts (not given for any object): nothing to plot."
    elif missing:
        note = (
            f"Knack gave no record count for {', '.join(missing)} (not given): "
            "left out of the plot."
        )
    else:
        note = None
    return RecordCounts(counts, note)


def views_table(metadata: dict[str, Any]) -> Table:
    """One row per view of every scene ("not given" where the metadata lacks a member)."""
    rows = [
        {
            "view": _given(view.get("key")),
            "name": _given(view.get("name")),
            "type": _given(view.get("type")),
            "scene": _given(scene.get("key")),
            "scene slug": _given(scene.get("slug")),
            "source object": _given((view.get("source") or {}).get("object")),
        }
        for scene in _scenes(metadata)
        for view in _views(scene)
    ]
    return Table(rows, ["view", "name", "type", "scene", "scene slug", "source object"])


def views_note(metadata: dict[str, Any]) -> str | None:
    """What a report says when the metadata shows no views, or None."""
    if not isinstance(metadata.get("scenes"), list):
        return "Knack gave no scenes (not given): the app's views are unknown."
    if not any(_views(scene) for scene in _scenes(metadata)):
        return "The app's scenes have no views."
    return None


def view_scene(metadata: dict[str, Any], view_key: str) -> str | None:
    """The key of the scene that holds ``view_key``, or None."""
    for scene in _scenes(metadata):
        if any(v.get("key") == view_key for v in _views(scene)):
            return scene.get("key")
    return None


def _fields(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in obj.get("fields") or [] if isinstance(f, dict) and "key" in f}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[SchemaChange]:
    """Field-level changes per object from ``before`` to ``after``."""
    old = {o["key"]: o for o in _objects(before) if "key" in o}
    new = {o["key"]: o for o in _objects(after) if "key" in o}
    changes: list[SchemaChange] = []
    for key in sorted(old.keys() | new.keys(), key=_natural):
        if key not in old:
            changes.append(SchemaChange(key, "object added", after=new[key].get("name", "")))
            continue
        if key not in new:
            changes.append(SchemaChange(key, "object removed", before=old[key].get("name", "")))
            continue
        f_old, f_new = _fields(old[key]), _fields(new[key])
        for fk in sorted(f_old.keys() | f_new.keys(), key=_natural):
            a, b = f_old.get(fk), f_new.get(fk)
            if a is None:
                changes.append(SchemaChange(key, "field added", fk, after=_describe(b)))
            elif b is None:
                changes.append(SchemaChange(key, "field removed", fk, before=_describe(a)))
            else:
                if a.get("name") != b.get("name"):
                    changes.append(
                        SchemaChange(key, "field renamed", fk, a.get("name", ""), b.get("name", ""))
                    )
                if a.get("type") != b.get("type"):
                    changes.append(
                        SchemaChange(key, "field retyped", fk, a.get("type", ""), b.get("type", ""))
                    )
    return changes


def changes_table(changes: list[SchemaChange]) -> Table:
    return Table([asdict(c) for c in changes], ["container", "change", "field", "before", "after"])


def containers_needing_full_run(changes: list[SchemaChange], metadata: dict[str, Any]) -> list[str]:
    """Objects whose schema changed, and the views that show them."""
    objects = {c.container for c in changes}
    views = {
        view["key"]
        for scene in _scenes(metadata)
        for view in _views(scene)
        if "key" in view and (view.get("source") or {}).get("object") in objects
    }
    return sorted(objects | views, key=_natural)


def _describe(f: dict[str, Any]) -> str:
    return f"{f.get('name', '')} ({f.get('type', '')})"


def _natural(key: str) -> tuple[str, int]:
    kind, _, number = key.rpartition("_")
    return (kind, int(number)) if number.isdigit() else (key, 0)


def source_object(metadata: dict[str, Any], container: str) -> str | None:
    """The object a container's records come from: itself, or a view's source object."""
    if container.startswith("object_"):
        return container
    for scene in _scenes(metadata):
        for view in _views(scene):
            if view.get("key") == container:
                return (view.get("source") or {}).get("object")
    return None


def container_fields(metadata: dict[str, Any], container: str) -> dict[str, dict[str, Any]]:
    """Field key → field definition for the fields of a container's (source) object."""
    obj_key = source_object(metadata, container)
    for obj in _objects(metadata):
        if obj.get("key") == obj_key:
            return _fields(obj)
    return {}


def field_names(metadata: dict[str, Any], container: str) -> dict[str, str]:
    """Field key → field name for the fields of a container's (source) object."""
    return {k: f.get("name") or k for k, f in container_fields(metadata, container).items()}


def field_types(metadata: dict[str, Any], container: str) -> dict[str, str]:
    """Field key → Knack field type for the fields of a container's (source) object."""
    return {k: str(f.get("type") or "") for k, f in container_fields(metadata, container).items()}
