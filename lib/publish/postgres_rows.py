"""The rows a PostgreSQL publish loads: the stored records with their snapshot-typed values
(``lib.snapshot``: floats, booleans, instants in the app's timezone, text), as one Arrow
table of ``id``, ``record`` (the stored JSON text) and one column per field (the
snapshot's names).

A full run reads the container's snapshot (one GET): when it is not marked stale it holds
exactly the stored records (``lib.snapshot``: every successful sync leaves it so, and
clears its marks only then), so its rows are taken as they are, typed values included.
When it is marked stale (a sync failed, is running or overlapped another) or missing, S3's
listing decides: each snapshot row whose record text has its object's MD5 (the ETag) is
taken, and the records the snapshot lacks or holds in another version are read one by one
and typed as a sync types them (``lib.snapshot.Builder``). A snapshot built with other
fields than the metadata's now is typed again from its record texts. An incremental run
reads the records written since ``since`` and types them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lib import snapshot
from lib.clients.app_store import AppStore
from lib.clients.s3_records import Strays, dumps_stable
from lib.snapshot.stored import listed_keys, read_bodies
from lib.state.stale_marks import is_stale


def typed_records(
    store: AppStore,
    container: str,
    metadata: dict[str, Any],
    since: dt.datetime | None,
    strays: Strays,
) -> tuple[pa.Table, snapshot.Spec, str]:
    """The stored records of ``container`` (all; or written at or after ``since``) as a
    table (see the module), the spec of its typed columns, and a note saying how they
    were read."""
    spec = snapshot.Spec.from_metadata(metadata, container)
    if since is not None:
        records = store.read_records(container, since=since, strays=strays)
        texts = [dumps_stable(r).decode() for r in records]
        table = _typed(spec, metadata, records, texts)
        return table, spec, f"read {len(records)} records written since {since.isoformat()}"
    if not is_stale(store, container):
        whole, why = _from_snapshot(store, container, spec, metadata, None)
        if whole is not None:
            note = (
                f"read {whole.num_rows} records from the snapshot "
                f"{store.url(snapshot.snapshot_key(store, container))} (not marked stale: it "
                "holds exactly the stored records)"
            )
            return _concat(spec, [whole]), spec, note + (f" ({why})" if why else "")
    listing = store.list_records(container, strays=strays)
    kept, why = _from_snapshot(store, container, spec, metadata, listing)
    have = set(kept.column("id").to_pylist()) if kept is not None else set()
    missing = sorted(set(listing) - have)
    parts = [kept] if kept is not None else []
    for batch in read_bodies(store, container, listed_keys(store, container, missing)):
        parts.append(_typed(spec, metadata, [r for r, _ in batch], [t for _, t in batch]))
    table = _concat(spec, parts)
    note = (
        f"read {table.num_rows} records: {len(have)} from the snapshot "
        f"{store.url(snapshot.snapshot_key(store, container))}, {len(missing)} one by one"
    )
    return table, spec, note + (f" ({why})" if why else "")


def _from_snapshot(
    store: AppStore,
    container: str,
    spec: snapshot.Spec,
    metadata: dict[str, Any],
    listing: Mapping[str, str] | None,
) -> tuple[pa.Table | None, str]:
    """The snapshot's rows (``listing``: those whose record is the stored one), typed again
    when the snapshot was built with other fields; or None and why it could not serve."""
    if listing is not None and not listing:
        return None, ""
    path = snapshot.download(store, container)
    if path is None:
        return None, "no snapshot: run knack_container_to_s3"
    try:
        try:
            pf, file_spec = snapshot.open_snapshot(path)
            table = pf.read()
        except (ValueError, pa.ArrowException, OSError) as e:
            return None, f"the snapshot cannot be read: {e}"
    finally:
        os.remove(path)
    if listing is not None:  # the rows whose record is the stored one
        ids = table.column("id").to_pylist()
        md5s = snapshot.record_md5s(table.column("record").combine_chunks())
        keep = [listing.get(rid) == m for rid, m in zip(ids, md5s, strict=True)]
        table = table.filter(pa.array(keep, pa.bool_()))
    if file_spec.columns == spec.columns and file_spec.timezone == spec.timezone:
        return table.select(_names(spec)), ""
    texts = table.column("record").to_pylist()
    retyped = _typed(spec, metadata, [json.loads(t) for t in texts], texts)
    return retyped, "the snapshot was built with other fields: its records typed again"


def _typed(
    spec: snapshot.Spec, metadata: dict[str, Any], records: list[dict[str, Any]], texts: list[str]
) -> pa.Table:
    """Raw records typed as the snapshot types them (``lib.snapshot.Builder``)."""
    builder = snapshot.Builder(spec, metadata)
    try:
        builder.add_records(records, texts)
        table = pq.read_table(builder.close())
    finally:
        builder.discard()
    return table.select(_names(spec))


def _names(spec: snapshot.Spec) -> list[str]:
    return ["id", "record", *(c.name for c in spec.columns)]


def _concat(spec: snapshot.Spec, parts: list[pa.Table]) -> pa.Table:
    schema = spec.arrow_schema()
    schema = pa.schema([schema.field(n) for n in _names(spec)])
    if not parts:
        return schema.empty_table()
    if len(parts) == 1 and parts[0].schema.equals(schema):
        return parts[0]  # the snapshot's rows as they are (the table's order does not matter)
    return pa.concat_tables([p.cast(schema) for p in parts])
