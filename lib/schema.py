"""Reading a Knack app's metadata: its containers as tables, and what changed between two.

Pure functions over the metadata dict (the ``application`` member of Knack's answer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class SchemaChange:
    container: str  # object key, or view key for a view's own change
    change: str  # "object added", "object removed", "field added", "field removed",
    #              "field renamed", "field retyped"
    field: str = ""
    before: str = ""
    after: str = ""


def objects_table(metadata: dict[str, Any]) -> pd.DataFrame:
    counts = metadata.get("counts") or {}
    rows = [
        {
            "object": o["key"],
            "name": o.get("name", ""),
            "fields": len(o.get("fields", [])),
            "records": counts.get(o["key"]),
        }
        for o in metadata.get("objects", [])
    ]
    return pd.DataFrame(rows, columns=["object", "name", "fields", "records"])


def views_table(metadata: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {
            "view": view["key"],
            "name": view.get("name", ""),
            "type": view.get("type", ""),
            "scene": scene["key"],
            "scene slug": scene.get("slug", ""),
            "source object": (view.get("source") or {}).get("object", ""),
        }
        for scene in metadata.get("scenes", [])
        for view in scene.get("views", [])
    ]
    return pd.DataFrame(
        rows, columns=["view", "name", "type", "scene", "scene slug", "source object"]
    )


def view_scene(metadata: dict[str, Any], view_key: str) -> str | None:
    """The key of the scene that holds ``view_key``, or None."""
    for scene in metadata.get("scenes", []):
        if any(v.get("key") == view_key for v in scene.get("views", [])):
            return scene["key"]
    return None


def _fields(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in obj.get("fields", [])}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[SchemaChange]:
    """Field-level changes per object from ``before`` to ``after``."""
    old = {o["key"]: o for o in before.get("objects", [])}
    new = {o["key"]: o for o in after.get("objects", [])}
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


def changes_table(changes: list[SchemaChange]) -> pd.DataFrame:
    return pd.DataFrame(
        [asdict(c) for c in changes], columns=["container", "change", "field", "before", "after"]
    )


def containers_needing_full_run(
    changes: list[SchemaChange], metadata: dict[str, Any]
) -> list[str]:
    """Objects whose schema changed, and the views that show them."""
    objects = {c.container for c in changes}
    views = {
        view["key"]
        for scene in metadata.get("scenes", [])
        for view in scene.get("views", [])
        if (view.get("source") or {}).get("object") in objects
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
    for scene in metadata.get("scenes", []):
        for view in scene.get("views", []):
            if view.get("key") == container:
                return (view.get("source") or {}).get("object")
    return None


def field_names(metadata: dict[str, Any], container: str) -> dict[str, str]:
    """Field key → field name for the fields of a container's (source) object."""
    obj_key = source_object(metadata, container)
    for obj in metadata.get("objects", []):
        if obj["key"] == obj_key:
            return {f["key"]: f.get("name", f["key"]) for f in obj.get("fields", [])}
    return {}
