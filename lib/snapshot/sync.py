"""The snapshot's part of one sync (:class:`SnapshotSync`): the records the sync keeps are
added as they are written, and once every record is in S3 the snapshot is written (built,
merged or rebuilt) and the run's stale mark settled (``lib.state.stale_marks``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from lib.clients.app_store import AppStore
from lib.clients.s3_records import Strays, WriteResult
from lib.errors import KnackNbError
from lib.snapshot import io as snapshot_io  # its upload and download, as tests may hold them
from lib.snapshot.builder import Builder
from lib.snapshot.spec import Spec
from lib.snapshot.stored import READ_BATCH, listed_keys, read_bodies, stored_records
from lib.state.stale_marks import RunMark

logger = logging.getLogger(__name__)


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

    def __init__(
        self, store: AppStore, container: str, metadata: dict[str, Any], *, full: bool
    ) -> None:
        self.store, self.container, self.metadata, self.full = store, container, metadata, full
        self.spec = Spec.from_metadata(metadata, container)
        self._builder: Builder | None = None
        self._changes: Any = None
        # a full run copies the rows of records S3 already held from the previous snapshot
        # (when its columns and formats are these) instead of formatting them again
        self._previous: str | None = None
        # this run's stale mark, put before it reads anything (lib.state.stale_marks); any other
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
        self._changes = (
            None
            if full
            else tempfile.TemporaryFile(  # noqa: SIM115 - closed by discard
                "w+", encoding="utf-8"
            )
        )
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
            path = snapshot_io.download(self.store, self.container)
        except KnackNbError as e:
            self._notes.append(f"the previous snapshot could not be read ({e}): rebuilt")
            return None
        if path is None:
            return None
        try:
            _, spec = snapshot_io.open_snapshot(path)
            if spec == self.spec:
                return path
            drift = spec.differences(self.spec)
            self._notes.append(
                "the container's fields changed since the snapshot was written ("
                + (
                    "; ".join(drift[:5]) + (" ..." if len(drift) > 5 else "")
                    if drift
                    else "formats"
                )
                + "): this full run rebuilt it with the new columns"
            )
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
        """Records ``AppStore.put_records(..., keep_bodies=True)`` just handled (``written``):
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
                    key = snapshot_io.snapshot_key(self.store, self.container)
                    result.url = self.store.url(key)
                    result.notes += self.mark.settle()
                    return result
            if self._unchanged:
                builder = self._copy_unchanged(builder)
            if self.stale_before:
                result.notes.append(
                    "the snapshot was marked stale by another run (one that "
                    "did not finish, or ran at the same time as another): "
                    "this full run replaced it"
                )
        else:
            builder = self._merged(result)
        try:
            path = builder.close()
            self._wrote = True  # the snapshot too: if settling fails, the mark stays
            result.url = snapshot_io.upload(self.store, self.container, path)
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
        pf = snapshot_io.parquet_file(self._previous)
        rows = pf.metadata.num_rows
        if rows != self._unchanged or self._deleted:
            return None
        if not snapshot_io.ids_unique(pf):
            return None
        for batch in snapshot_io.batches(pf, ["id", "record"]):
            if not all(self._reusable(batch)):
                return None
        return rows

    def _reusable(self, batch: pa.RecordBatch) -> list[bool]:
        """Per row of the previous snapshot: whether it is the row of a record this run
        found unchanged (S3 holds an object with that ``record``'s MD5, and this run neither
        formatted nor deleted it)."""
        ids = batch.column(batch.schema.get_field_index("id")).to_pylist()
        sums = snapshot_io.record_md5s(batch.column(batch.schema.get_field_index("record")))
        return [
            rid not in self._formatted_ids
            and rid not in self._deleted
            and self._known.get(rid) == md5
            for rid, md5 in zip(ids, sums, strict=True)
        ]

    def _merged(self, result: SnapshotResult) -> Builder:
        """The previous snapshot without this run's records, then this run's records."""
        why = (
            "marked stale (by a run that did not finish, or ran at the same time as another)"
            if self.stale_before
            else ""
        )
        path = None if why else snapshot_io.download(self.store, self.container)
        if not why and path is None:
            why = "missing"
        builder: Builder | None = None
        if path is not None:
            try:
                pf, spec = snapshot_io.open_snapshot(path)
                drift = spec.differences(self.spec)
                if drift:
                    result.notes.append(
                        "the container's fields changed since the snapshot was written ("
                        + "; ".join(drift[:5])
                        + (" ..." if len(drift) > 5 else "")
                        + "): this incremental run kept its columns; run a full sync "
                        "(date None) so that the snapshot's columns follow the new metadata"
                    )
                builder = Builder(spec, self.metadata)
                replaced = pa.array(sorted(self._changed_ids), pa.string())
                for batch in snapshot_io.batches(pf):
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
        pf = snapshot_io.parquet_file(self._previous)
        if not snapshot_io.ids_unique(pf):
            return self._rebuilt(builder, "held an id twice")
        copied = 0
        for batch in snapshot_io.batches(pf):
            table = pa.Table.from_batches([batch]).filter(
                pa.array(self._reusable(batch), pa.bool_())
            )
            copied += table.num_rows
            builder.add_table(table)
        if copied == self._unchanged:
            return builder
        if copied > self._unchanged:  # more rows than records found unchanged
            return self._rebuilt(builder, f"held {copied} rows of {self._unchanged} records")
        have: set[str] = set()
        previous = snapshot_io.parquet_file(self._previous)
        for batch in snapshot_io.batches(previous, ["id", "record"]):
            have.update(
                rid
                for rid, ok in zip(batch.column(0).to_pylist(), self._reusable(batch), strict=True)
                if ok
            )
        missing = [
            rid
            for rid in self._known
            if rid not in have and rid not in self._formatted_ids and rid not in self._deleted
        ]
        logger.info(
            "snapshot: %d unchanged records not in the previous snapshot: read from S3",
            len(missing),
        )
        keys = listed_keys(self.store, self.container, missing)
        for batch in read_bodies(self.store, self.container, keys):
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
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._previous)
            self._previous = None
        if self._builder is not None:
            self._builder.discard()
            self._builder = None
        if self._changes is not None:
            self._changes.close()
            self._changes = None
