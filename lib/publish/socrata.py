"""S3 → a Socrata dataset, through the Socrata client (``lib.clients.socrata``).

Incremental runs upsert the records written to S3 at or after ``date``. Full runs make
the dataset equal to S3 without ever truncating it: upsert everything, then delete the
rows whose ids are gone with ``":deleted"`` rows (none with ``no_replace``). A failure
half-way leaves every row that was there; a rerun completes the work.

Columns are filled by the binding plan (``lib.bindings``: a column keeps the field key it
was bound to, whatever its label becomes; a retired column is not sent, so its rows keep
their values); a column that would go blank fails the run before any write. Each value is
checked against its column's type (``lib.publish.values``): a record with a value its
column cannot take is not sent and fails the run by id (the others are published; a run
with such records deletes nothing), and a field whose every value fails (retyped) fails
the run before any write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lib import config
from lib.bindings import Destination, Plan
from lib.clients.socrata import ROW_ID, Client, dataset_columns, dataset_ids
from lib.progress import progress_bar
from lib.publish import register, values
from lib.publish import run as publish_run
from lib.publish.run import (
    PublishResult,
    sample_table,
    table,
)
from lib.publish.values import Refused, ValueCheck, is_empty
from lib.records import Formatted, coordinates, format_records
from lib.table import Table

logger = logging.getLogger(__name__)

JOB = "upsert_knack_container_to_socrata"
SAMPLE_ROWS = 5
NUMERIC = {"number", "money", "percent", "double"}
GEO_TYPES = {"point", "location", "multipoint"}


@dataclass(kw_only=True)
class SocrataPublish(PublishResult):
    resource_id: str
    created: int = 0
    updated: int = 0
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # rows gone from S3 kept by no_replace
    failed: dict[str, str] = field(default_factory=dict)  # record id -> why it was not sent

    @property
    def destination(self) -> str:
        return f"Socrata dataset {self.resource_id}"

    def target(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id}

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": len(self.deleted),
            "kept": len(self.kept),
        }

    def failed_table(self) -> Table:
        return table(self.failed, "record id", "why it was not published")


@register("socrata")
def publish(*, app_name: str, container: str, env: str, date: Any = None) -> SocrataPublish:
    run = publish_run.start(
        app_name=app_name, container=container, env=env, date=date, job=JOB, destination="socrata"
    )
    soc = run.cfg.socrata
    assert soc is not None  # start() checked it
    result = SocrataPublish(**run.identity(), resource_id=soc.resource_id)
    client = Client()
    try:
        columns = dataset_columns(client, soc.resource_id)
        plan = run.bind(Destination.socrata(soc), columns, result)
        if plan is not None:
            records = run.read_records()
            result.read = len(records)
            formatted = format_records(
                run.metadata, container, records, location_field=soc.location_field
            )
            _publish(client, run, formatted, columns, plan, result)
    finally:
        client.close()
        result.requests, result.retries = client.requests, client.retries
        result.seconds = run.elapsed()
    logger.info(
        "%s → %s: %s", container, soc.resource_id, publish_run.summary_line(result.summary())
    )
    return result


def _publish(
    client: Client,
    run: publish_run.PublishRun,
    formatted: list[Formatted],
    columns: dict[str, str],
    plan: Plan,
    result: SocrataPublish,
) -> None:
    """Check every value, then (unless a field was retyped) upsert the rows that passed and,
    on a full run without failed records, delete the rows whose records are gone."""
    soc = run.cfg.socrata
    assert soc is not None
    check = ValueCheck("column {}")
    sent = {column: f.name for column, f in plan.fill.items()}
    rows = [row for f in formatted if (row := _row(f, sent, columns, check)) is not None]
    retyped = check.retyped()
    if retyped:
        result.errors.append(retyped)
        result.rerun_helps = False
        return
    result.failed = check.failed
    result.sample = sample_table(rows[:SAMPLE_ROWS])
    _upsert(client, soc.resource_id, rows, soc.chunk_size, result)
    if result.mode == "full" and result.ok and result.failed:
        result.notes.append("no row was deleted: a full run deletes once every record is published")
    elif result.mode == "full" and result.ok:
        _remove_gone(client, soc, {f.id for f in formatted}, result, run.cfg)
    if result.failed:
        result.errors.append(check.failures("the dataset's column types"))
        result.rerun_helps = False
    if result.ok:
        run.succeeded(plan)


def _row(
    f: Formatted, sent: dict[str, str], columns: dict[str, str], check: ValueCheck
) -> dict[str, Any] | None:
    """One record as a row of the columns ``sent`` (column → the name of the value that
    fills it), or None when a value does not fit its column (``check`` says which)."""
    row: dict[str, Any] = {ROW_ID: f.id}
    for column, name in sent.items():
        kind = columns[column]
        if name not in f.values:
            row[column] = None
        elif name == f.location_name and kind in GEO_TYPES:
            row[column] = _location(f.location, kind)
        else:
            row[column] = check.value(f, name, column, kind, _value, kind)
    return None if f.id in check.failed else row


def _value(value: Any, column_type: str) -> Any:
    """``value`` as a column of ``column_type`` takes it (empty: null); Refused when it
    cannot take it."""
    if value is None:
        return None
    if column_type in NUMERIC:
        return None if is_empty(value) else values.number(value)
    if column_type == "checkbox":
        return None if is_empty(value) else values.boolean(value)
    if column_type == "calendar_date":
        return None if is_empty(value) else _floating(value)
    if column_type in GEO_TYPES:  # a field other than socrata.location_field
        return None if is_empty(value) else _geometry(value, column_type)
    if isinstance(value, bool):
        return str(value)  # Socrata text columns take no JSON booleans
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _floating(value: Any) -> str:
    """A floating timestamp: the local wall time with no offset (a ``Z`` is invalid)."""
    return values.instant(value).replace(tzinfo=None).isoformat()


def _geometry(value: Any, column_type: str) -> Any:
    """A geometry column's value given as GeoJSON (or, for points, WKT)."""
    if isinstance(value, dict):
        return value
    wkt = "MULTIPOINT" if column_type == "multipoint" else "POINT"
    if (
        isinstance(value, str)
        and column_type != "location"
        and (value.strip().upper().startswith(wkt))
    ):
        return value
    raise Refused(
        f"not a {column_type}: set socrata.location_field to the Knack address field it comes from"
    )


def _location(raw: Any, column_type: str) -> Any:
    points = coordinates(raw)
    if not points:
        return None
    if column_type == "multipoint":
        return {"type": "MultiPoint", "coordinates": [list(p) for p in points]}
    lon, lat = points[0]
    if column_type == "location":
        return {"latitude": str(lat), "longitude": str(lon)}
    return {"type": "Point", "coordinates": [lon, lat]}


def _upsert(
    client: Client, resource_id: str, rows: list[dict[str, Any]], chunk: int, result: SocrataPublish
) -> None:
    with progress_bar(f"upsert {resource_id}", total=len(rows), unit="row") as bar:
        for start in range(0, len(rows), chunk):
            batch = rows[start : start + chunk]
            answer = client.call(
                f"the upsert of rows {start + 1}-{start + len(batch)}",
                client.soda.upsert,
                resource_id,
                batch,
            )
            result.created += int(answer.get("Rows Created", 0))
            result.updated += int(answer.get("Rows Updated", 0))
            if int(answer.get("Errors", 0)):
                bad = _rows_in_error(client, resource_id, batch)
                result.errors.append(
                    f"Socrata reported {answer['Errors']} errors upserting rows "
                    f"{start + 1}-{start + len(batch)}; rows in error: "
                    + (", ".join(bad[:20]) if bad else "not identified")
                    + ". Socrata refuses them again on a rerun: fix those records in Knack or "
                    "the dataset's columns first"
                )
                result.rerun_helps = False
                return
            bar.update(len(batch))


def _rows_in_error(client: Client, resource_id: str, batch: list[dict[str, Any]]) -> list[str]:
    """Upsert the rows one by one (idempotent) to name the ones Socrata refuses."""
    bad = []
    for row in batch:
        answer = client.call(
            f"the upsert of row {row[ROW_ID]}", client.soda.upsert, resource_id, [row]
        )
        if int(answer.get("Errors", 0)):
            bad.append(row[ROW_ID])
    return bad


def _remove_gone(
    client: Client,
    soc: config.SocrataConfig,
    stored: set[str],
    result: SocrataPublish,
    cfg: config.ContainerConfig,
) -> None:
    existing = dataset_ids(client, soc.resource_id)
    gone = sorted(existing - stored)
    if not gone:
        return
    if soc.no_replace:
        result.kept = gone
        result.notes.append(f"no_replace: kept {len(gone)} rows whose records are gone from S3")
        return
    if result.refused_mass_delete(
        len(gone), len(existing), len(stored), cfg, what="rows of the dataset"
    ):
        return
    for start in range(0, len(gone), soc.chunk_size):
        batch = [{ROW_ID: rid, ":deleted": True} for rid in gone[start : start + soc.chunk_size]]
        answer = client.call("deleting rows", client.soda.upsert, soc.resource_id, batch)
        if int(answer.get("Errors", 0)):
            left = dataset_ids(client, soc.resource_id)  # the rows it did delete still count
            result.deleted += [r[ROW_ID] for r in batch if r[ROW_ID] not in left]
            result.errors.append(f"Socrata reported {answer['Errors']} errors deleting rows")
            return
        result.deleted += [r[ROW_ID] for r in batch]
