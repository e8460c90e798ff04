"""S3 → a PostgreSQL table per container, through ``lib.clients.postgres`` (psycopg 3).

The table (``postgres.schema``, default ``knack``; ``postgres.table``, default
``<app>_<container>``) holds ``id`` (the primary key), ``record`` (jsonb: the stored JSON),
one typed column per field bound by field key, with the snapshot's types (double
precision, boolean, timestamp with time zone: the instant, text), ``_digest`` and
``_published_at``. The records come from S3 and the snapshot, never Knack
(``lib.publish.postgres_rows``).

A run's writes are one transaction (``lib.clients.postgres.load``): the table made on the
first run, a column added per new field (the report says which), the rows COPYed into a
temporary table, only the changed ones upserted (``IS DISTINCT FROM``) and, on a full run,
the rows whose records are gone deleted under the mass-delete guard. A failure or a killed
run leaves the table as it was; a rerun does the whole run again. Rows whose stored object
and columns are those they were made from (``_digest``) are not even sent, and a full run
whose snapshot, columns and table are as the last full publish left them (its ``auto``
state keeps the snapshot's ETag, the columns' signature and the table's fingerprint) reads
nothing more and writes nothing. A row's typed values edited by hand in the table, its
``_digest`` left as it was, are not seen; a row deleted or added by hand is.

Columns follow the binding rule (``lib.bindings``): a renamed field keeps filling its
column; a bound field that is gone, or retyped to another type than its column's, fails
the run before any write unless the column is retired (``postgres.retired_columns``: left
as it is) or params pin another field (``postgres.fields``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lib import snapshot
from lib.bindings import BOUND, NEW, Destination, Field, Plan
from lib.bindings.destination import postgres_type
from lib.clients import postgres
from lib.clients.postgres import META_COLUMNS, MassDeleteRefused, TableName
from lib.clients.s3_records import Strays
from lib.publish import register
from lib.publish import run as publish_run
from lib.publish.postgres_rows import typed_records
from lib.publish.run import PublishResult, sample_table, table
from lib.state.stale_marks import is_stale
from lib.table import Table

logger = logging.getLogger(__name__)

JOB = "knack_container_to_postgres"
SAMPLE_ROWS = 5
MAX_NAME_BYTES = 63  # PostgreSQL's identifiers (longer ones are cut, silently)


@dataclass(kw_only=True)
class PostgresPublish(PublishResult):
    table: str  # schema.table
    table_created: bool = False
    added_columns: dict[str, str] = field(default_factory=dict)  # column -> type
    sent: int = 0  # rows COPYed: those whose digest differed
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)

    @property
    def destination(self) -> str:
        return f"PostgreSQL table {self.table}"

    def target(self) -> dict[str, Any]:
        return {"table": self.table}

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": len(self.deleted),
        }

    def details(self) -> dict[str, Any]:
        return {
            **super().details(),
            "table_created": self.table_created,
            "columns_added": list(self.added_columns),
        }

    def columns_table(self) -> Table:
        """The columns this run added (new fields), with their types."""
        return table(self.added_columns, "column added", "type")


@register("postgres")
def publish(*, app_name: str, container: str, env: str, date: Any = None) -> PostgresPublish:
    run = publish_run.start(
        app_name=app_name, container=container, env=env, date=date, job=JOB, destination="postgres"
    )
    pg = run.cfg.postgres
    assert pg is not None  # start() checked it
    name = TableName(pg.db_schema, pg.table_name(app_name, container))
    result = PostgresPublish(**run.identity(), table=str(name))
    try:
        with postgres.connect() as conn:
            _publish(run, conn, Destination.postgres(pg, name.table), name, result)
    finally:
        result.seconds = run.elapsed()
    logger.info("%s → %s: %s", container, name, publish_run.summary_line(result.summary()))
    return result


def _publish(
    run: publish_run.PublishRun,
    conn: Any,
    destination: Destination,
    name: TableName,
    result: PostgresPublish,
) -> None:
    existing = postgres.table_columns(conn, name)
    plan = run.bind(destination, existing or {}, result)
    if plan is None:
        return
    result.dropped_fields.clear()  # a new field is not dropped here: its column is added
    add = _add_new_columns(plan, existing or {})
    mistyped = [
        f"column {column!r} of {name} is {plan.columns[column]}, but {f.key} {f.label!r} is "
        f"{f.type} ({postgres_type(f.type)}): retire the column (postgres.retired_columns) "
        "or alter its type. Nothing was written"
        for column, f in plan.fill.items()
        if postgres_type(f.type) != plan.columns[column]
    ]
    if mistyped:
        result.errors.extend(mistyped)
        result.rerun_helps = False
        return
    container = run.container or ""
    spec = snapshot.Spec.from_metadata(run.metadata or {}, container)
    signature = _signature(plan.fill, spec.fields_hash, spec.timezone)
    mark = {"table": str(name), "signature": signature}
    if result.mode == "full":
        mark["snapshot"] = run.store.etag(snapshot.snapshot_key(run.store, container)) or ""
    if existing is not None and _as_left(run, conn, name, mark, result):
        run.succeeded(plan, postgres=mark)
        return
    strays = Strays()
    typed, spec, note = typed_records(run.store, container, run.metadata or {}, run.since, strays)
    run.notes.append(note)
    if strays.note():
        run.notes.append(strays.note())
    result.read = typed.num_rows
    names = {c.key: c.name for c in spec.columns}
    fill = {column: names[f.key] for column, f in plan.fill.items()}
    ids = typed.column("id").to_pylist()

    def rows(held: dict[str, str]) -> Iterator[pa.Table]:
        """The rows to send, a chunk at a time (digested as they are asked for)."""
        for start in range(0, typed.num_rows, postgres.COPY_CHUNK_ROWS):
            part = typed.slice(start, postgres.COPY_CHUNK_ROWS)
            digests = _digest_column(part.column("record"), signature)
            part_ids = ids[start : start + part.num_rows]
            keep = [held.get(rid) != d for rid, d in zip(part_ids, digests, strict=True)]
            chosen = part if all(keep) else part.filter(pa.array(keep, pa.bool_()))
            arrays = [chosen.column("id"), chosen.column("record")]
            arrays.append(
                pa.array([d for d, k in zip(digests, keep, strict=True) if k], pa.string())
            )
            arrays += [chosen.column(source) for source in fill.values()]
            yield pa.Table.from_arrays(arrays, names=["id", "record", "_digest", *fill])

    job = postgres.Load(
        name,
        columns={column: plan.columns[column] for column in fill},
        add=add,
        full=result.mode == "full",
        ids=set(ids),
        guard=lambda gone, held, stored: publish_run.mass_delete_refusal(
            gone,
            held,
            stored,
            run.cfg,  # type: ignore[arg-type]
            what="rows of the table",
            container=run.container or "",
            app_name=run.app_name,
        ),
        expected=existing,
    )
    result.sample = sample_table(
        [
            {"id": r["id"], **{c: r[s] for c, s in fill.items()}}
            for r in typed.slice(0, SAMPLE_ROWS).to_pylist()
        ]
    )
    try:
        loaded = postgres.load(conn, job, rows)
    except MassDeleteRefused as e:
        result.errors.append(str(e) + " (nothing else was written either: one transaction)")
        result.rerun_helps = False
        return
    _take(loaded, result)
    if result.mode == "full" and mark["snapshot"]:
        mark.update(rows=loaded.rows, fingerprint=loaded.fingerprint)
        run.succeeded(plan, postgres=mark)
    else:
        run.succeeded(plan)


def _as_left(
    run: publish_run.PublishRun,
    conn: Any,
    name: TableName,
    mark: dict[str, Any],
    result: PostgresPublish,
) -> bool:
    """Whether a full run has nothing to write: the last full publish (its ``auto`` state)
    loaded this very snapshot (its ETag, not marked stale since) with these columns and
    fields (the signature), and the table still holds exactly the rows it left (count and
    the fingerprint of their digests). Then nothing is read but those."""
    if result.mode != "full" or not mark.get("snapshot"):
        return False
    container = run.container or ""
    state = run.store.get_json(run.store.state_key(JOB, container))
    last = state.get("postgres") if isinstance(state, dict) else None
    if not isinstance(last, dict) or any(last.get(k) != v for k, v in mark.items()):
        return False
    if is_stale(run.store, container):
        return False
    rows, fingerprint = postgres.fingerprint(conn, name)
    if (rows, fingerprint) != (last.get("rows"), last.get("fingerprint")):
        return False
    mark.update(rows=rows, fingerprint=fingerprint)
    result.read = result.unchanged = rows
    result.notes.append(
        f"nothing to write: the snapshot (ETag {mark['snapshot']}), the columns and the "
        f"table's {rows} rows are as the last full publish left them"
    )
    return True


def _take(loaded: postgres.Loaded, result: PostgresPublish) -> None:
    result.table_created = loaded.created_table
    result.added_columns = loaded.added_columns
    result.sent, result.created, result.updated = loaded.sent, loaded.inserted, loaded.updated
    result.unchanged = result.read - loaded.inserted - loaded.updated
    result.deleted = loaded.deleted
    if loaded.created_table:
        result.notes.append(f"created table {result.table}")
    if loaded.added_columns:
        added = ", ".join(f"`{c}` ({t})" for c, t in loaded.added_columns.items())
        result.notes.append(f"added {len(loaded.added_columns)} column(s) for new fields: {added}")


def _add_new_columns(plan: Plan, existing: dict[str, str]) -> dict[str, str]:
    """Bind each new field (the plan's NEW rows) to a column of its own, added by this run:
    its name by the label rule, made a PostgreSQL name (at most 63 bytes, not one of the
    table's own columns nor one it has; else with its field key). Returns name → type."""
    taken = set(existing) | set(META_COLUMNS)
    add: dict[str, str] = {}
    for i, row in enumerate(plan.rows):
        if row.status != NEW:
            continue
        f = plan.fields[row.field]
        column = _column_name(f, taken)
        taken.add(column)
        kind = postgres_type(f.type)
        add[column] = kind
        plan.columns[column] = kind
        plan.rows[i] = dataclasses.replace(
            row, column=column, status=BOUND, note="column added by this run", column_type=kind
        )
    return add


def _column_name(f: Field, taken: set[str]) -> str:
    name = _cut(f.name, "")
    if name in taken:
        name = _cut(f.name, f"_{f.key}")
    return name


def _cut(name: str, suffix: str) -> str:
    room = MAX_NAME_BYTES - len(suffix.encode())
    cut = name.encode()[:room].decode("utf-8", "ignore")
    return cut + suffix


def _signature(fill: dict[str, Field], fields_hash: str, timezone: str) -> str:
    """What every row's values depend on besides its record: the columns and their
    fields, the fields' definitions and the app's timezone."""
    columns = sorted((c, f.key, f.type) for c, f in fill.items())
    text = json.dumps([columns, fields_hash, timezone])
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _digest_column(records: pa.ChunkedArray, signature: str) -> list[str]:
    """Each row's ``_digest``: the MD5 of its record's text followed by the signature."""
    tail = signature.encode()
    return [d or "" for chunk in records.chunks for d in snapshot.record_md5s(chunk, tail)]
