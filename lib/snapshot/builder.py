"""A snapshot being built: raw records formatted with knackpy (and rows of a previous
snapshot copied) into a temporary Parquet file, row group by row group, so that memory
stays bounded at any size; the file then goes to S3 whole (``lib.snapshot.io.upload``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lib.clients.s3_records import dumps_stable
from lib.records import knackpy_records
from lib.snapshot.spec import Spec, converter

ROW_GROUP_ROWS = 5_000  # rows kept in memory before they go to the file as one row group
FORMAT_ROWS = 1_000  # raw records formatted with knackpy at a time (into the row group)


class Builder:
    """A snapshot being written to a temporary file, row group by row group."""

    def __init__(self, spec: Spec, metadata: dict[str, Any]) -> None:
        self.spec = spec
        self.metadata = metadata
        self.schema = spec.arrow_schema()
        fd, self.path = tempfile.mkstemp(prefix="knack-snapshot-", suffix=".parquet")
        os.close(fd)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.path, self.schema, compression="zstd"
        )
        self._pending: list[tuple[dict[str, Any], str]] = []
        self._tables: list[pa.Table] = []  # rows not yet written (a row group's worth)
        self._table_rows = 0
        self.rows = 0
        self.formatted = 0  # rows made from raw records (the others: copied from a snapshot)

    def add_records(
        self, records: Iterable[dict[str, Any]], bodies: Iterable[str] | None = None
    ) -> None:
        """Add raw records; ``bodies`` are their stored objects' text (by default the
        stable JSON the store writes)."""
        records = list(records)
        texts = list(bodies) if bodies is not None else [dumps_stable(r).decode() for r in records]
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
        columns: dict[str, list[Any]] = {
            "id": [r["id"] for r in records],
            "record": [t for _, t in pending],
        }
        del pending, records
        for c in self.spec.columns:
            typed = converter(c.type)
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
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
