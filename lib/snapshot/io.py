"""The snapshot in S3: ``s3://<bucket>/_snapshots/<app>-<env>/<container>.parquet``,
written whole with one PUT (a reader never sees half of one), downloaded to a temporary file
to be read in batches, and read back whole: as Arrow, and as pandas for analysts
(:func:`read_frame`), saying when it is marked stale (``lib.state.stale_marks``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lib.clients.app_store import AppStore
from lib.clients.s3_records import md5_hex
from lib.ids import IdSet
from lib.snapshot.spec import INTEGER_TYPES, RESERVED, SnapshotError, Spec
from lib.state.stale_marks import is_stale

SNAPSHOT_PREFIX = "_snapshots"
DOWNLOAD_CHUNK = 1 << 20  # bytes of a snapshot read from S3 at once
# Reading a snapshot back (the checks and merges of a sync): a buffered stream and batches of
# this many rows, one thread. Whole column chunks of 5,000 rows, pyarrow's default, made its
# allocator hold ~5x a row group (40-90 MiB of 2 KB records); this way it holds ~12 MiB.
READ_BATCH_ROWS = 1_000


def snapshot_key(store: AppStore, container: str) -> str:
    store.container_prefix(container)  # validates the key
    return f"{SNAPSHOT_PREFIX}/{store.prefix}/{container}.parquet"


def upload(store: AppStore, container: str, path: str) -> str:
    """Write the file at ``path`` as the container's snapshot, with one PUT."""
    key = snapshot_key(store, container)
    store.put_file(key, path, "application/vnd.apache.parquet")
    return store.url(key)


def download(store: AppStore, container: str) -> str | None:
    """The snapshot in a temporary file (the caller removes it); None when there is none."""
    key = snapshot_key(store, container)
    fd, path = tempfile.mkstemp(prefix="knack-snapshot-prev-", suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as out:
            found = store.download(key, out, chunk=DOWNLOAD_CHUNK)  # one GET, streamed
    except BaseException:
        os.remove(path)
        raise
    if not found:
        os.remove(path)
        return None
    return path


def parquet_file(path: str) -> pq.ParquetFile:
    """A downloaded snapshot to read with ``batches`` (READ_BATCH_ROWS)."""
    return pq.ParquetFile(path, buffer_size=DOWNLOAD_CHUNK, pre_buffer=False)


def batches(pf: pq.ParquetFile, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The snapshot's rows, ``READ_BATCH_ROWS`` at a time, on this thread (``columns``: only
    those)."""
    return pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=columns, use_threads=False)


def ids_unique(pf: pq.ParquetFile) -> bool:
    """Whether no two rows of a snapshot have one id (and none lacks one), read in batches:
    the whole column and pyarrow's hash of it held ~40 MiB at 100,000 rows."""
    seen, rows = IdSet(), 0
    for batch in batches(pf, ["id"]):
        column = batch.column(0)
        if column.null_count:
            return False
        for rid in column.to_pylist():
            seen.add(rid)
        rows += batch.num_rows
    return len(seen) == rows


def record_md5s(column: pa.Array, suffix: bytes = b"") -> list[str | None]:
    """The MD5 (hex) of each cell of a ``record`` column: its UTF-8 bytes (followed by
    ``suffix``) hashed in Arrow's buffer, with no Python string made per cell. None for an
    empty (null) cell."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())
    _, offsets, data = column.buffers()
    width = 8 if pa.types.is_large_string(column.type) else 4
    bounds = np.frombuffer(
        offsets, dtype=f"<i{width}", count=len(column) + 1, offset=column.offset * width
    ).tolist()
    text = memoryview(data) if data is not None else memoryview(b"")
    nulls = column.is_null().to_pylist() if column.null_count else [False] * len(column)
    if suffix:
        return [
            None if null else _md5_with(text[a:b], suffix)
            for a, b, null in zip(bounds, bounds[1:], nulls, strict=False)
        ]
    return [
        None if null else md5_hex(text[a:b])
        for a, b, null in zip(bounds, bounds[1:], nulls, strict=False)
    ]


def _md5_with(body: memoryview, suffix: bytes) -> str:
    digest = hashlib.md5(body, usedforsecurity=False)
    digest.update(suffix)
    return digest.hexdigest()


def open_snapshot(path: str) -> tuple[pq.ParquetFile, Spec]:
    """A downloaded snapshot and its spec; ValueError saying why it cannot be used."""
    try:
        pf = parquet_file(path)
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


def read_table(store: AppStore, container: str, *, columns: list[str] | None = None) -> pa.Table:
    """The container's snapshot as an Arrow table (``columns``: only those)."""
    path = download(store, container)
    if path is None:
        raise SnapshotError(
            f"{store.url(snapshot_key(store, container))} does not exist: run "
            f"knack_container_to_s3 for {container} (every successful sync writes it)"
        )
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


# --- for analysts ------------------------------------------------------------------------


class StaleSnapshotWarning(UserWarning):
    """The snapshot read is marked stale: it may not hold every stored record."""


def read_current(
    store: AppStore, container: str, *, columns: list[str] | None = None
) -> tuple[pa.Table, bool]:
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
    store = AppStore(app_name=app_name, env=env)
    table, stale = read_current(store, container)
    frame = to_frame(table if record else table.drop_columns(["record"]))
    frame.attrs["stale"] = stale
    if stale:
        warnings.warn(
            StaleSnapshotWarning(
                f"the snapshot of {container} ({app_name}-{env}) is marked stale: a sync of it "
                "is running, did not finish, or ran at the same time as another, so it may not "
                "hold every stored record or their latest versions; rerun knack_container_to_s3 "
                f"for {container}"
            ),
            stacklevel=2,
        )
    return frame


def to_frame(table: pa.Table) -> Any:
    """A snapshot's Arrow table as pandas: nullable booleans, StringDtype strings, times in
    the app's timezone, and Knack's integer types (``auto_increment``) as nullable integers
    (``Int64``): the file keeps them as float64 (the snapshot's contract), the frame gives
    them as Knack counts them, when every value is whole."""
    import pandas as pd

    mapping = {pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
    frame = table.to_pandas(types_mapper=mapping.get)
    spec = Spec.from_schema(table.schema)
    for column in spec.columns if spec is not None else ():
        if column.type in INTEGER_TYPES and column.name in frame.columns:
            values = frame[column.name]
            if values.dropna().mod(1).eq(0).all():
                frame[column.name] = values.astype("Int64")
    return frame
