"""The records stored for a container, read with the snapshot's help: S3's listing says
which records there are and their ETags, the snapshot gives those whose text has that MD5
with one GET, and only the others are read one by one (the publishers' full runs); or all
of them, concurrently and in batches (a snapshot rebuilt from the stored records).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lib.clients.app_store import AppStore
from lib.clients.s3 import UPLOAD_WORKERS
from lib.clients.s3_records import ForeignRecordError, Strays, check_record, md5_hex
from lib.snapshot.io import read_table, snapshot_key
from lib.snapshot.spec import SnapshotError

READ_BATCH = 1_000  # stored records read at once when a snapshot is rebuilt from them


def read_stored(
    store: AppStore, container: str, strays: Strays | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every record stored for ``container``, sorted by id, and a note saying how they were
    read: S3's listing says which records there are and their ETags (the MD5 of each
    object); the snapshot gives every record whose text has that MD5, with one GET, and
    only the others (not in it, or changed since it was written) are read one by one. So
    the records are S3's exactly, whatever happened to the snapshot, and a store changed
    outside a sync costs only the changed records' reads.

    Objects that are not records are left out (``strays`` counts them); a record object
    holding another record raises :class:`ForeignRecordError`, naming it."""
    listing = store.list_records(container, strays=strays)
    records: dict[str, dict[str, Any]] = {}
    why = ""
    if listing:
        try:
            table = read_table(store, container, columns=["id", "record"])
        except SnapshotError as e:
            why = str(e)
        else:
            for rid, text in zip(
                table.column("id").to_pylist(), table.column("record").to_pylist(), strict=True
            ):
                if listing.get(rid) == md5_hex(text.encode()):
                    record = json.loads(text)
                    if isinstance(record, dict) and record.get("id") == rid:
                        records[rid] = record
            del table
    from_snapshot = len(records)
    missing = sorted(listing.keys() - records.keys())
    keys = listed_keys(store, container, missing)
    for batch in read_bodies(store, container, keys):
        records.update((r["id"], r) for r, _ in batch)
    note = (
        f"read {len(records)} records: {from_snapshot} from the snapshot "
        f"{store.url(snapshot_key(store, container))} (one object), {len(missing)} one "
        "by one"
        + (" (not in the snapshot, or changed since it was written)" if missing and not why else "")
    )
    if why:
        note += f"; the snapshot could not serve: {why}"
    return [records[rid] for rid in sorted(records)], note


def stored_records(
    store: AppStore,
    container: str,
    strays: Strays | None = None,
) -> Iterator[list[tuple[dict[str, Any], str]]]:
    """Every record stored for ``container``, in batches of (record, object text), read
    concurrently; bounded memory (one batch at a time). Objects that are not records are
    left out (``strays`` counts them); a record object holding another record raises
    :class:`ForeignRecordError` after the last batch."""
    names = sorted(store.list_records(container, strays=strays))
    return read_bodies(store, container, listed_keys(store, container, names))


def listed_keys(store: AppStore, container: str, names: Iterable[str]) -> list[str]:
    """The keys of the records S3's listing named (``AppStore.list_records``)."""
    prefix = store.container_prefix(container)
    return [f"{prefix}{name}.json" for name in names]


def read_bodies(
    store: AppStore, container: str, keys: list[str]
) -> Iterator[list[tuple[dict[str, Any], str]]]:
    """The record objects at ``keys``, in batches of (record, object text). One holding
    another record (its ``id`` is not the key's) is left out of its batch, and once every
    batch was given :class:`ForeignRecordError` names them all."""
    foreign: dict[str, str] = {}

    def read(key: str) -> tuple[dict[str, Any], str] | None:
        body = store.get_body(key)
        if body is None:  # deleted since the listing
            return None
        try:
            record = json.loads(body)
        except ValueError as e:
            raise SnapshotError(
                f"{store.url(key)} is not a JSON record ({' '.join(str(e).split())[:120]}): "
                "delete it or restore a good version, then rerun"
            ) from None
        return (record, body.decode()) if check_record(key, record, foreign) else None

    with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="s3-get") as pool:
        for start in range(0, len(keys), READ_BATCH):
            batch = pool.map(read, keys[start : start + READ_BATCH])
            yield [item for item in batch if item is not None]
    if foreign:
        raise ForeignRecordError(store, container, foreign)
