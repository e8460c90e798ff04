"""The container as one table: ``s3://<bucket>/_snapshots/<app>-<env>/<container>.parquet``.

After every successful sync it holds exactly the records stored under
``<app>-<env>/<container>/``, one row each (DESIGN.md, S3 layout): ``id``, ``record`` (the
record's JSON, byte-equal to its object), then one typed column per field of the
container's object, named by ``column_names`` (the label rule, one name per field: the
publishers' names, ``lib.records``, with ``record`` reserved too).

How it stays exact:

- Each sync marks the snapshot stale with a mark of its own (``lib.state.stale_marks``:
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

The modules: ``spec`` (the columns and their types), ``builder`` (the Parquet file, built
in bounded memory), ``io`` (the snapshot in S3, and read back: ``read_frame`` for analysts),
``stored`` (the stored records, read with the snapshot's help), ``sync`` (the snapshot's
part of a sync). What other modules use is importable from here.
"""

from lib.snapshot.builder import ROW_GROUP_ROWS, Builder
from lib.snapshot.io import (
    SNAPSHOT_PREFIX,
    StaleSnapshotWarning,
    download,
    open_snapshot,
    read_current,
    read_frame,
    read_table,
    record_md5s,
    snapshot_key,
    to_frame,
    upload,
)
from lib.snapshot.spec import Column, SnapshotError, Spec
from lib.snapshot.stored import read_stored, stored_records
from lib.snapshot.sync import SnapshotResult, SnapshotSync

__all__ = [
    "ROW_GROUP_ROWS",
    "SNAPSHOT_PREFIX",
    "Builder",
    "Column",
    "SnapshotError",
    "SnapshotResult",
    "SnapshotSync",
    "Spec",
    "StaleSnapshotWarning",
    "download",
    "open_snapshot",
    "read_current",
    "read_frame",
    "read_stored",
    "read_table",
    "record_md5s",
    "snapshot_key",
    "stored_records",
    "to_frame",
    "upload",
]
