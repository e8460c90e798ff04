"""The container as one table: ``s3://<bucket>/_snapshots/<app>-<env>/<container>.parquet``.

After every successful sync it holds exactly the records stored under
``<app>-<env>/<container>/``, one row each (DESIGN.md, S3 layout): ``id``, ``record`` (the
record's JSON, byte-equal to its object), then one typed column per field of the
container's object, named by ``column_names`` (the label rule, one name per field: the
publishers' names, ``lib.records``, with ``record`` reserved too).

How it stays exact:

- Each sync marks the snapshot stale with a mark of its own (``lib.stale_marks``:
  ``_state/<app>-<env>/<container>/snapshot-stale/<run id>.json``) when it starts, and clears
  it only once its snapshot is in S3 and no other sync ran at the same time. A failed or
  killed run, or two that overlapped, leave marks: the next sync rebuilds the snapshot from
  the stored records instead of merging into one that may not hold them, and clears them;
  explore and ``read_frame`` say the snapshot is marked stale meanwhile. The publishers
  check every row against S3's listing whatever the marks say.
- It is built in a temporary file, row group by row group (memory stays bounded at any
  size), then written whole with one PUT: a reader never sees half of one.
- The columns it was built with are kept in the file (``knack_nb`` schema metadata). An
  incremental sync merges into the previous snapshot with those columns; when the object's
  fields have changed since, its report says a full run is needed, which rebuilds the
  snapshot with the new ones.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lib import schema
from lib.errors import KnackNbError
from lib.ids import IdSet
from lib.records import column_names, knackpy_records
from lib.stale_marks import RunMark, is_stale
from lib.store import (
    UPLOAD_WORKERS,
    ForeignRecordError,
    Store,
    Strays,
    WriteResult,
    check_record,
    dumps_stable,
    md5_hex,
    translate_s3_error,
)

logger = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "_snapshots"
METADATA_KEY = b"knack_nb"  # the columns a snapshot was built with (its schema metadata)
FORMAT_VERSION = 1
ROW_GROUP_ROWS = 5_000  # rows kept in memory before they go to the file as one row group
FORMAT_ROWS = 1_000  # raw records formatted with knackpy at a time (into the row group)
DOWNLOAD_CHUNK = 1 << 20  # bytes of a snapshot read from S3 at once
# Reading a snapshot back (the checks and merges of a sync): a buffered stream and batches of
# this many rows, one thread. Whole column chunks of 5,000 rows, pyarrow's default, made its
# allocator hold ~5x a row group (40-90 MiB of 2 KB records); this way it holds ~12 MiB.
READ_BATCH_ROWS = 1_000
READ_BATCH = 1_000  # stored records read at once when a snapshot is rebuilt from them
FLOAT_TYPES = frozenset({"number", "currency", "rating", "auto_increment"})
RESERVED = ("id", "record")  # never a field's column: column_names appends its key


class SnapshotError(KnackNbError):
    """A snapshot that is missing or cannot be read or written; the message says what to do."""


# --- the columns -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str  # the Knack field key, field_N
    name: str  # the column's name, by the label rule
    type: str  # the Knack field type


@dataclass(frozen=True)
class Spec:
    """What a snapshot's columns are: the container's object's fields and the timezone."""

    container: str
    timezone: str  # IANA name: date_time columns are timestamps in it
    columns: tuple[Column, ...]
    fields_hash: str = ""  # of the object's field definitions (formats too), and the timezone

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], container: str) -> Spec:
        names = column_names(metadata, container, reserved=RESERVED)
        types = schema.field_types(metadata, container)
        columns = [Column(key, names[key], types.get(key, ""))  # in the metadata's order
                   for key in schema.field_names(metadata, container)]
        tz = schema.app_timezone(metadata).key
        defs = dumps_stable([schema.container_fields(metadata, container), tz])
        return cls(container, tz, tuple(columns), md5_hex(defs))

    @classmethod
    def from_schema(cls, arrow_schema: pa.Schema) -> Spec | None:
        """The spec kept in a snapshot's file; None when it has none (not one of ours)."""
        raw = (arrow_schema.metadata or {}).get(METADATA_KEY)
        try:
            meta = json.loads(raw)
            return cls(meta["container"], meta["timezone"],
                       tuple(Column(*c) for c in meta["columns"]), meta.get("fields_hash", ""))
        except (TypeError, ValueError, KeyError):
            return None

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field("id", pa.string(), nullable=False),
                  pa.field("record", pa.string(), nullable=False)]
        fields += [pa.field(c.name, self._arrow_type(c.type)) for c in self.columns]
        meta = {"version": FORMAT_VERSION, "container": self.container,
                "timezone": self.timezone, "fields_hash": self.fields_hash,
                "columns": [[c.key, c.name, c.type] for c in self.columns]}
        return pa.schema(fields, metadata={METADATA_KEY: json.dumps(meta)})

    def _arrow_type(self, knack_type: str) -> pa.DataType:
        if knack_type in FLOAT_TYPES:
            return pa.float64()
        if knack_type == "boolean":
            return pa.bool_()
        if knack_type == "date_time":
            return pa.timestamp("us", tz=self.timezone)
        return pa.string()

    def differences(self, other: Spec) -> list[str]:
        """How ``other`` (the metadata's spec now) differs from this one, in words."""
        mine = {c.key: c for c in self.columns}
        theirs = {c.key: c for c in other.columns}
        out = [f"{k} added" for k in theirs if k not in mine]
        out += [f"{k} removed" for k in mine if k not in theirs]
        out += [f"{k} is now {theirs[k].name} ({theirs[k].type})" for k in mine
                if k in theirs and mine[k] != theirs[k]]
        if self.timezone != other.timezone:
            out.append(f"timezone {self.timezone} is now {other.timezone}")
        return out


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").replace("$", "").strip())
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("no", "false"):
        return False
    return None


def _instant(value: Any) -> dt.datetime | None:
    """knackpy's formatted date_time (ISO-8601 with the app's offset) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo is not None else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _typed(knack_type: str) -> Callable[[Any], Any]:
    if knack_type in FLOAT_TYPES:
        return _float
    if knack_type == "boolean":
        return _bool
    if knack_type == "date_time":
        return _instant
    return _text


# --- building one ------------------------------------------------------------------------


class Builder:
    """A snapshot being written to a temporary file, row group by row group."""

    def __init__(self, spec: Spec, metadata: dict[str, Any]) -> None:
        self.spec = spec
        self.metadata = metadata
        self.schema = spec.arrow_schema()
        fd, self.path = tempfile.mkstemp(prefix="knack-snapshot-", suffix=".parquet")
        os.close(fd)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.path, self.schema, compression="zstd")
        self._pending: list[tuple[dict[str, Any], str]] = []
        self._tables: list[pa.Table] = []  # rows not yet written (a row group's worth)
        self._table_rows = 0
        self.rows = 0
        self.formatted = 0  # rows made from raw records (the others: copied from a snapshot)

    def add_records(self, records: Iterable[dict[str, Any]],
                    bodies: Iterable[str] | None = None) -> None:
        """Add raw records; ``bodies`` are their stored objects' text (by default the
        stable JSON the store writes)."""
        records = list(records)
        texts = list(bodies) if bodies is not None else [
            dumps_stable(r).decode() for r in records]
        self._pending.extend(zip(records, texts, strict=True))
        self.formatted += len(records)
        if len(self._pending) >= FORMAT_ROWS:
            self._format()

    def add_table(self, table: pa.Table) -> None:
        """Add rows of another snapshot; columns this one has and that one lacks (or
        holds with another type) are empty."""
        self._format()  # the rows keep the order they were added in
        arrays = []
        for f in self.schema:
            if f.name in table.column_names and table.schema.field(f.name).type == f.type:
                arrays.append(table.column(f.name))
            else:
                arrays.append(pa.nulls(table.num_rows, f.type))
        self._buffer(pa.Table.from_arrays(arrays, schema=self.schema))

    def _buffer(self, table: pa.Table) -> None:
        self._tables.append(table)
        self._table_rows += table.num_rows
        if self._table_rows >= ROW_GROUP_ROWS:
            self._flush_tables()

    def _flush_tables(self) -> None:
        """The rows buffered since the last write, as one row group."""
        if self._tables:
            tables, self._tables, self._table_rows = self._tables, [], 0
            self._write(pa.concat_tables(tables))

    def _format(self) -> None:
        """The raw records added since the last call, formatted (knackpy) into Arrow rows:
        a knackpy record of a wide container is ~10 KB, so at most ~FORMAT_ROWS of them
        are alive, not a row group's worth (an incremental run of 4,000 changed records
        formatted them at once: ~40 MiB)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        records = [r for r, _ in pending]
        formatted = [
            {k: f.formatted for k, f in rec.fields.items()}
            for rec in knackpy_records(self.metadata, self.spec.container, records)
        ]
        columns: dict[str, list[Any]] = {"id": [r["id"] for r in records],
                                         "record": [t for _, t in pending]}
        del pending, records
        for c in self.spec.columns:
            typed = _typed(c.type)
            columns[c.name] = [typed(values.get(c.key)) for values in formatted]
        del formatted
        self._buffer(pa.Table.from_pydict(columns, schema=self.schema))

    def _write(self, table: pa.Table) -> None:
        assert self._writer is not None, "the snapshot was already closed"
        if table.num_rows:
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.rows += table.num_rows

    def close(self) -> str:
        """Finish the file; returns its path."""
        self._format()
        self._flush_tables()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        with _suppress_missing():
            os.remove(self.path)


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, etype: Any, value: Any, tb: Any) -> bool:
        return etype is FileNotFoundError


# --- S3 ----------------------------------------------------------------------------------


def snapshot_key(store: Store, container: str) -> str:
    store.container_prefix(container)  # validates the key
    return f"{SNAPSHOT_PREFIX}/{store.prefix}/{container}.parquet"


def upload(store: Store, container: str, path: str) -> str:
    """Write the file at ``path`` as the container's snapshot, with one PUT."""
    key = snapshot_key(store, container)
    try:
        with open(path, "rb") as body:
            store.client.put_object(Bucket=store.bucket, Key=key, Body=body,
                                    ContentType="application/vnd.apache.parquet")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate_s3_error(e, f"cannot write {store.url(key)}") from None
    return store.url(key)


def download(store: Store, container: str) -> str | None:
    """The snapshot in a temporary file (the caller removes it); None when there is none."""
    key = snapshot_key(store, container)
    fd, path = tempfile.mkstemp(prefix="knack-snapshot-prev-", suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as out:
            # one GET, streamed to the file a MiB at a time: boto3's download_fileobj would
            # hold up to 10 ranged parts of 8 MiB at once, memory that grows with the file
            body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                out.write(chunk)
    except botocore.exceptions.ClientError as e:
        os.remove(path)
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise translate_s3_error(e, f"cannot read {store.url(key)}") from None
    except botocore.exceptions.BotoCoreError as e:
        os.remove(path)
        raise translate_s3_error(e, f"cannot read {store.url(key)}") from None
    except BaseException:
        os.remove(path)
        raise
    return path


def _parquet_file(path: str) -> pq.ParquetFile:
    """A downloaded snapshot to read with ``_batches`` (READ_BATCH_ROWS)."""
    return pq.ParquetFile(path, buffer_size=DOWNLOAD_CHUNK, pre_buffer=False)


def _batches(pf: pq.ParquetFile, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    return pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns, use_threads=False)


def _ids_unique(pf: pq.ParquetFile) -> bool:
    """Whether no two rows of a snapshot have one id (and none lacks one), read in batches:
    the whole column and pyarrow's hash of it held ~40 MiB at 100,000 rows."""
    seen, rows = IdSet(), 0
    for batch in _batches(pf, ["id"]):
        column = batch.column(0)
        if column.null_count:
            return False
        for rid in column.to_pylist():
            seen.add(rid)
        rows += batch.num_rows
    return len(seen) == rows


def record_md5s(column: pa.Array) -> list[str | None]:
    """The MD5 (hex) of each cell of a ``record`` column: its UTF-8 bytes hashed in Arrow's
    buffer, with no Python string made per cell. None for an empty (null) cell."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())
    _, offsets, data = column.buffers()
    width = 8 if pa.types.is_large_string(column.type) else 4
    bounds = np.frombuffer(offsets, dtype=f"<i{width}", count=len(column) + 1,
                           offset=column.offset * width).tolist()
    text = memoryview(data) if data is not None else memoryview(b"")
    nulls = column.is_null().to_pylist() if column.null_count else [False] * len(column)
    return [None if null else md5_hex(text[a:b])
            for a, b, null in zip(bounds, bounds[1:], nulls, strict=False)]


def open_snapshot(path: str) -> tuple[pq.ParquetFile, Spec]:
    """A downloaded snapshot and its spec; ValueError saying why it cannot be used."""
    try:
        pf = _parquet_file(path)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"not a Parquet file ({e})") from None
    arrow_schema = pf.schema_arrow
    spec = Spec.from_schema(arrow_schema)
    if spec is None or arrow_schema.names[:2] != list(RESERVED):
        raise ValueError("not a snapshot of knack-notebooks (no id and record columns)")
    twice = sorted({n for n in arrow_schema.names if arrow_schema.names.count(n) > 1})
    if twice:  # written before column names were unique: one field's values are lost
        raise ValueError(f"columns named twice: {', '.join(twice)}")
    return pf, spec


def read_table(store: Store, container: str, *, columns: list[str] | None = None) -> pa.Table:
    """The container's snapshot as an Arrow table (``columns``: only those)."""
    path = download(store, container)
    if path is None:
        raise SnapshotError(
            f"{store.url(snapshot_key(store, container))} does not exist: run "
            f"knack_container_to_s3 for {container} (every successful sync writes it)")
    try:
        try:
            pf, _ = open_snapshot(path)
            return pf.read(columns=columns)
        except (ValueError, pa.ArrowException, OSError) as e:
            raise SnapshotError(
                f"{store.url(snapshot_key(store, container))} cannot be read ({e}): run a "
                f"full knack_container_to_s3 of {container} (date None), which rebuilds it"
            ) from None
    finally:
        os.remove(path)


def read_stored(store: Store, container: str,
                strays: Strays | None = None) -> tuple[list[dict[str, Any]], str]:
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
            for rid, text in zip(table.column("id").to_pylist(),
                                 table.column("record").to_pylist(), strict=True):
                if listing.get(rid) == md5_hex(text.encode()):
                    record = json.loads(text)
                    if isinstance(record, dict) and record.get("id") == rid:
                        records[rid] = record
            del table
    from_snapshot = len(records)
    missing = sorted(listing.keys() - records.keys())
    keys = _listed_keys(store, container, missing)
    for batch in _read_bodies(store, container, keys):
        records.update((r["id"], r) for r, _ in batch)
    note = (f"read {len(records)} records: {from_snapshot} from the snapshot "
            f"{store.url(snapshot_key(store, container))} (one object), {len(missing)} one "
            "by one" + (" (not in the snapshot, or changed since it was written)"
                        if missing and not why else ""))
    if why:
        note += f"; the snapshot could not serve: {why}"
    return [records[rid] for rid in sorted(records)], note


def stored_records(store: Store, container: str, strays: Strays | None = None,
                   ) -> Iterator[list[tuple[dict[str, Any], str]]]:
    """Every record stored for ``container``, in batches of (record, object text), read
    concurrently; bounded memory (one batch at a time). Objects that are not records are
    left out (``strays`` counts them); a record object holding another record raises
    :class:`ForeignRecordError` after the last batch."""
    names = sorted(store.list_records(container, strays=strays))
    return _read_bodies(store, container, _listed_keys(store, container, names))


def _listed_keys(store: Store, container: str, names: Iterable[str]) -> list[str]:
    """The keys of the records S3's listing named (``Store.list_records``)."""
    prefix = store.container_prefix(container)
    return [f"{prefix}{name}.json" for name in names]


def _read_bodies(store: Store, container: str,
                 keys: list[str]) -> Iterator[list[tuple[dict[str, Any], str]]]:
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
                "delete it or restore a good version, then rerun") from None
        return (record, body.decode()) if check_record(key, record, foreign) else None

    with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="s3-get") as pool:
        for start in range(0, len(keys), READ_BATCH):
            batch = pool.map(read, keys[start:start + READ_BATCH])
            yield [item for item in batch if item is not None]
    if foreign:
        raise ForeignRecordError(store, container, foreign)


# --- what a sync does --------------------------------------------------------------------


@dataclass
class SnapshotResult:
    url: str = ""
    rows: int = 0
    how: str = ""  # "built" (full run), "merged" (incremental), "rebuilt" (from the records)
    notes: list[str] = field(default_factory=list)


class SnapshotSync:
    """The snapshot's part of one sync: the records it keeps are added as they are written;
    ``finish`` writes the snapshot once every record is in S3.

    A full run builds the snapshot from what it wrote (every record of the container). An
    incremental run keeps its records' bodies in a temporary file (not in memory) and
    merges them into the previous snapshot, which it rebuilds from the stored records
    when it is missing, unreadable or marked stale.
    """

    def __init__(self, store: Store, container: str, metadata: dict[str, Any], *,
                 full: bool) -> None:
        self.store, self.container, self.metadata, self.full = store, container, metadata, full
        self.spec = Spec.from_metadata(metadata, container)
        self._builder: Builder | None = None
        self._changes: Any = None
        # a full run copies the rows of records S3 already held from the previous snapshot
        # (when its columns and formats are these) instead of formatting them again
        self._previous: str | None = None
        # this run's stale mark, put before it reads anything (lib.stale_marks); any other
        # run's mark means the previous snapshot may not hold every stored record
        self.mark = RunMark(store, container)
        self.stale_before = bool(self.mark.start())
        self._wrote = False  # whether the run wrote or deleted a record (or the snapshot)
        try:
            self._start()
        except BaseException:
            self.discard()
            raise

    def _start(self) -> None:
        full = self.full
        self._builder = Builder(self.spec, self.metadata) if full else None
        self._changes = None if full else tempfile.TemporaryFile(  # noqa: SIM115 - closed by discard
            "w+", encoding="utf-8")
        self._changed_ids: set[str] = set()
        # what tells a reusable row, with no structure per record: S3's listing (id ->
        # ETag, which the sync holds anyway), the ids formatted here and the ids deleted
        self._known: Mapping[str, str] = {}
        self._formatted_ids: set[str] = set()
        self._deleted: set[str] = set()
        self._unchanged = 0  # records S3 held unchanged: their rows come from _previous
        self._notes: list[str] = []
        if full:
            self._previous = self._usable_previous()

    def mark_stale(self) -> None:
        """Called before each write or delete of a record (from any thread): the run's mark,
        put when it started, then stays (as ``failed``) if the run fails."""
        self._wrote = True

    def _usable_previous(self) -> str | None:
        """The previous snapshot, downloaded, when its rows can be reused; otherwise None,
        with a note for the report when it was there but unusable."""
        try:
            path = download(self.store, self.container)
        except KnackNbError as e:
            self._notes.append(f"the previous snapshot could not be read ({e}): rebuilt")
            return None
        if path is None:
            return None
        try:
            _, spec = open_snapshot(path)
            if spec == self.spec:
                return path
            drift = spec.differences(self.spec)
            self._notes.append(
                "the container's fields changed since the snapshot was written ("
                + ("; ".join(drift[:5]) + (" ..." if len(drift) > 5 else "") if drift
                   else "formats") + "): this full run rebuilt it with the new columns")
        except ValueError as e:
            self._notes.append(f"the previous snapshot was unreadable ({e}): rebuilt")
        os.remove(path)
        return None

    def use_listing(self, known: Mapping[str, str]) -> None:
        """A full run's listing of S3 (record id -> ETag), before the first ``add``."""
        self._known = known

    def deleting(self, record_ids: Iterable[str]) -> None:
        """Records a full run is about to delete."""
        self._deleted.update(record_ids)

    def add(self, records: list[dict[str, Any]], written: WriteResult) -> None:
        """Records ``Store.put_records(..., keep_bodies=True)`` just handled (``written``):
        those it stored (written, or unchanged as S3's listing, ``use_listing``, gave them),
        with the bodies it stored."""
        stored = [r for r in records if r["id"] in written.bodies]
        if self._builder is not None:
            same = set(written.unchanged) if self._previous is not None else set()
            if same:
                self._unchanged += len(same)
                stored = [r for r in stored if r["id"] not in same]
            if self._previous is not None:
                self._formatted_ids.update(r["id"] for r in stored)
            self._builder.add_records(stored, [written.bodies[r["id"]].decode() for r in stored])
            return
        for r in stored:
            self._changes.write(written.bodies[r["id"]].decode() + "\n")
            self._changed_ids.add(r["id"])

    def finish(self) -> SnapshotResult:
        """Write the snapshot (the run succeeded), then settle the stale marks: this run's
        and the earlier ones are cleared when it ran alone (``RunMark.settle``)."""
        result = SnapshotResult(notes=self._notes)
        if self.full:
            builder, self._builder = self._builder, None
            result.how = "built"
            if self._previous is not None and not builder.formatted:
                rows = self._previous_is_exact()
                if rows is not None:  # nothing changed: the snapshot in S3 stays
                    builder.discard()
                    result.how, result.rows = "unchanged", rows
                    result.url = self.store.url(snapshot_key(self.store, self.container))
                    result.notes += self.mark.settle()
                    return result
            if self._unchanged:
                builder = self._copy_unchanged(builder)
            if self.stale_before:
                result.notes.append("the snapshot was marked stale by another run (one that "
                                    "did not finish, or ran at the same time as another): "
                                    "this full run replaced it")
        else:
            builder = self._merged(result)
        try:
            path = builder.close()
            self._wrote = True  # the snapshot too: if settling fails, the mark stays
            result.url = upload(self.store, self.container, path)
            result.rows = builder.rows
        finally:
            builder.discard()
        result.notes += self.mark.settle()
        logger.info("snapshot %s: %d rows (%s)", result.url, result.rows, result.how)
        return result

    def _previous_is_exact(self) -> int | None:
        """The previous snapshot's row count when its rows are exactly the records this
        full run found unchanged (same ids, each ``record`` with its stored object's MD5);
        else None."""
        assert self._previous is not None
        pf = _parquet_file(self._previous)
        rows = pf.metadata.num_rows
        if rows != self._unchanged or self._deleted:
            return None
        if not _ids_unique(pf):
            return None
        for batch in _batches(pf, ["id", "record"]):
            if not all(self._reusable(batch)):
                return None
        return rows

    def _reusable(self, batch: pa.RecordBatch) -> list[bool]:
        """Per row of the previous snapshot: whether it is the row of a record this run
        found unchanged (S3 holds an object with that ``record``'s MD5, and this run neither
        formatted nor deleted it)."""
        ids = batch.column(batch.schema.get_field_index("id")).to_pylist()
        sums = record_md5s(batch.column(batch.schema.get_field_index("record")))
        return [rid not in self._formatted_ids and rid not in self._deleted
                and self._known.get(rid) == md5
                for rid, md5 in zip(ids, sums, strict=True)]

    def _merged(self, result: SnapshotResult) -> Builder:
        """The previous snapshot without this run's records, then this run's records."""
        why = ("marked stale (by a run that did not finish, or ran at the same time as "
               "another)" if self.stale_before else "")
        path = None if why else download(self.store, self.container)
        if not why and path is None:
            why = "missing"
        builder: Builder | None = None
        if path is not None:
            try:
                pf, spec = open_snapshot(path)
                drift = spec.differences(self.spec)
                if drift:
                    result.notes.append(
                        "the container's fields changed since the snapshot was written ("
                        + "; ".join(drift[:5]) + (" ..." if len(drift) > 5 else "")
                        + "): this incremental run kept its columns; run a full sync "
                        "(date None) so that the snapshot's columns follow the new metadata")
                builder = Builder(spec, self.metadata)
                replaced = pa.array(sorted(self._changed_ids), pa.string())
                for batch in _batches(pf):
                    table = pa.Table.from_batches([batch])
                    keep = pc.invert(pc.is_in(table.column("id"), value_set=replaced))
                    builder.add_table(table.filter(keep))
                result.how = "merged"
            except (ValueError, pa.ArrowException, OSError) as e:
                why = f"unreadable: {' '.join(str(e).split())[:160]}"
                if builder is not None:
                    builder.discard()
                builder = None
            finally:
                os.remove(path)
        if builder is None:  # rebuilt from the stored records, this run's included
            result.how = "rebuilt"
            result.notes.append(f"the snapshot was {why}: rebuilt from the stored records")
            return self._from_store()
        self._changes.seek(0)
        while lines := [line for _, line in zip(range(READ_BATCH), self._changes, strict=False)]:
            texts = [line.rstrip("\n") for line in lines]
            builder.add_records([json.loads(t) for t in texts], texts)
        return builder

    def _copy_unchanged(self, builder: Builder) -> Builder:
        """The previous snapshot's rows of the unchanged records; any unchanged record
        they lack (or hold in another version) is read from S3. Returns the builder to
        finish (a new one, rebuilt from S3, if the previous snapshot does not add up)."""
        assert self._previous is not None
        pf = _parquet_file(self._previous)
        if not _ids_unique(pf):
            return self._rebuilt(builder, "held an id twice")
        copied = 0
        for batch in _batches(pf):
            table = pa.Table.from_batches([batch]).filter(
                pa.array(self._reusable(batch), pa.bool_()))
            copied += table.num_rows
            builder.add_table(table)
        if copied == self._unchanged:
            return builder
        if copied > self._unchanged:  # more rows than records found unchanged
            return self._rebuilt(builder, f"held {copied} rows of {self._unchanged} records")
        have: set[str] = set()
        for batch in _batches(_parquet_file(self._previous), ["id", "record"]):
            have.update(rid for rid, ok in zip(batch.column(0).to_pylist(),
                                               self._reusable(batch), strict=True) if ok)
        missing = [rid for rid in self._known if rid not in have
                   and rid not in self._formatted_ids and rid not in self._deleted]
        logger.info("snapshot: %d unchanged records not in the previous snapshot: read "
                    "from S3", len(missing))
        keys = _listed_keys(self.store, self.container, missing)
        for batch in _read_bodies(self.store, self.container, keys):
            builder.add_records([r for r, _ in batch], [t for _, t in batch])
        return builder

    def _rebuilt(self, builder: Builder, why: str) -> Builder:
        builder.discard()
        self._notes.append(f"the previous snapshot {why}: rebuilt from the stored records")
        return self._from_store()

    def _from_store(self) -> Builder:
        """A snapshot of every record S3 holds for the container (this run's included).
        An incremental run's report lists the objects there that are not records (a full
        run's lists them from its own listing)."""
        builder = Builder(self.spec, self.metadata)
        strays = None if self.full else Strays()
        try:
            for batch in stored_records(self.store, self.container, strays):
                builder.add_records([r for r, _ in batch], [t for _, t in batch])
        except BaseException:
            builder.discard()
            raise
        if strays is not None and strays.note():
            self._notes.append(strays.note())
        return builder

    def discard(self) -> None:
        """The run ended: temporary files go. If it failed, the previous snapshot stays as
        it was, and so does this run's mark when it wrote or deleted a record."""
        self.mark.abandon(wrote=self._wrote)  # nothing once the mark was settled
        if self._previous is not None:
            with _suppress_missing():
                os.remove(self._previous)
            self._previous = None
        if self._builder is not None:
            self._builder.discard()
            self._builder = None
        if self._changes is not None:
            self._changes.close()
            self._changes = None


# --- for analysts ------------------------------------------------------------------------


class StaleSnapshotWarning(UserWarning):
    """The snapshot read is marked stale: it may not hold every stored record."""


def read_current(store: Store, container: str, *,
                 columns: list[str] | None = None) -> tuple[pa.Table, bool]:
    """:func:`read_table`, and whether the snapshot is marked stale: before or after the
    read (a sync may start, or settle as overlapped, while it is read)."""
    before = is_stale(store, container)
    table = read_table(store, container, columns=columns)
    return table, before or is_stale(store, container)


def read_frame(*, app_name: str, container: str, env: str, record: bool = False) -> Any:
    """The container as a pandas DataFrame, from its snapshot in S3: ``id``, then one
    column per field named by the label rule and typed (floats, nullable booleans, times
    in the app's timezone, strings); ``record=True`` keeps the raw JSON column too.

    ``frame.attrs["stale"]`` says whether the snapshot is marked stale (a sync is running,
    did not finish, or ran at the same time as another: it may not hold every stored
    record, or their latest versions); then a :class:`StaleSnapshotWarning` says so too."""
    store = Store(app_name=app_name, env=env)
    table, stale = read_current(store, container)
    frame = to_frame(table if record else table.drop_columns(["record"]))
    frame.attrs["stale"] = stale
    if stale:
        warnings.warn(StaleSnapshotWarning(
            f"the snapshot of {container} ({app_name}-{env}) is marked stale: a sync of it "
            "is running, did not finish, or ran at the same time as another, so it may not "
            "hold every stored record or their latest versions; rerun knack_container_to_s3 "
            f"for {container}"), stacklevel=2)
    return frame


def to_frame(table: pa.Table) -> Any:
    """A snapshot's Arrow table as pandas: nullable booleans, StringDtype strings, times in
    the app's timezone."""
    import pandas as pd

    mapping = {pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
    return table.to_pandas(types_mapper=mapping.get)
