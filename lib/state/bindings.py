"""Which Knack field fills which column of a destination, as the last successful publish left
it (the binding rule: ``lib.bindings``).

```
s3://<bucket>/_state/bindings/socrata/<resource_id>.json
s3://<bucket>/_state/bindings/agol/<service_id>-<layer_id>.json
```
Kept by the destination, not by app-env: the same dataset published from ``dev`` and then
``prod`` keeps its bindings, and a full run or a rebuilt snapshot never touches them. Each
holds, per column, the field key that fills it with the label and type it had then, and the
destination's columns as that publish read them (so the ``upload_metadata`` report can
show what a schema change does without asking the destination). Written only by a publish
that succeeded.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from lib import bindings
from lib.bindings import Binding, Destination
from lib.clients.s3 import STATE_PREFIX, Bucket
from lib.errors import ConfigError, StoreError

PREFIX = f"{STATE_PREFIX}/bindings"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Stored:
    """A destination's stored bindings: column → Binding, and its columns (name → type)."""

    bindings: dict[str, Binding]
    columns: dict[str, str]
    container: str = ""
    published: str = ""  # when the publish that wrote them started (ISO 8601, UTC)


def key(destination: Destination) -> str:
    if not _SAFE.match(destination.id):
        raise ConfigError(
            f"{destination.what}: {destination.id!r} cannot be part of an S3 key; fix its "
            "id in the params file"
        )
    return f"{PREFIX}/{destination.kind}/{destination.id}.json"


def load(bucket: Bucket, destination: Destination) -> Stored | None:
    """The stored bindings of ``destination``, or None before its first successful publish.
    An object that cannot be read as bindings raises StoreError naming it and what to do."""
    where = key(destination)
    fix = (
        f"delete it (aws s3 rm {bucket.url(where)}): the next publish then binds the "
        "columns by their labels again (check the bindings in its report)"
    )
    state = bucket.get_json(where, fix=fix)
    if state is None:
        return None
    try:
        if not isinstance(state, dict):
            raise ValueError(f"a JSON {type(state).__name__}, not a JSON object")
        found = state.get("bindings")
        columns = state.get("columns")
        if not isinstance(found, dict) or not isinstance(columns, list):
            raise ValueError("no bindings or columns")
        return Stored(
            {str(c): Binding.from_json(b) for c, b in found.items()},
            {str(c): str(t) for c, t in columns},
            str(state.get("container") or ""),
            str(state.get("published") or ""),
        )
    except (TypeError, ValueError) as e:  # a column that is not a [name, type] pair
        raise StoreError(f"the bindings {bucket.url(where)} are corrupt ({e}): {fix}") from None


def save(
    bucket: Bucket,
    plan: bindings.Plan,
    *,
    app_name: str,
    env: str,
    started: dt.datetime,
) -> None:
    """Store what ``plan`` filled, after the publish that followed it succeeded."""
    body: dict[str, Any] = {
        "destination": plan.destination.what,
        "app_name": app_name,
        "env": env,
        "container": plan.container,
        "published": started.astimezone(dt.UTC).isoformat(),
        "bindings": {c: b.to_json() for c, b in plan.bindings().items()},
        "columns": [[c, t] for c, t in plan.columns.items()],  # in the destination's order
    }
    bucket.put_json(key(plan.destination), body)
