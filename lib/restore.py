"""A container's Socrata dataset made equal to one of its backups (``knack-nb
restore-socrata``; the backups: ``lib.backups``, made by ``lib.backup``).

Like a full publish: upsert every row of the backup (the newest by default), then delete the
rows the backup does not hold with ``":deleted"`` rows; never a truncate, so a failure
half-way loses nothing and a rerun completes it. Guarded like a full publish: it refuses to
delete more than the container's ``mass_delete_threshold`` of the rows (or all of them)
unless ``allow_mass_delete``. Columns the dataset has and the backup does not are left as
they are (an upsert changes only the columns it names): the report lists them.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lib.backups import BackupError, Result, StoredBackup, Target, count_rows
from lib.clients.socrata import ROW_ID, Client, dataset_ids
from lib.progress import progress_bar

CHECKBOX = {"true": True, "false": False}
JSON_TYPES = {"location", "url"}  # the CSV holds these as JSON text
GEO_TYPES = {"point", "multipoint"}  # the CSV holds these as WKT: POINT (lon lat)
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_WKT_PAIR = re.compile(rf"({_NUMBER})\s+({_NUMBER})")


@dataclass(kw_only=True)
class RestoreResult(Result):
    backup: str  # the backup's S3 URL
    dry_run: bool = False
    rows: int = 0  # rows in the backup
    existing: int = 0  # rows in the dataset before
    created: int = 0
    updated: int = 0
    deleted: int = 0
    to_delete: int = 0
    dropped_columns: list[str] = field(default_factory=list)  # in the backup, not the dataset
    # in the dataset, not the backup (added since): left as they are, empty on created rows
    columns_not_in_backup: list[str] = field(default_factory=list)
    final_count: int | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "backup": self.backup,
            "dry_run": self.dry_run,
            "rows_in_backup": self.rows,
            "rows_before": self.existing,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "to_delete": self.to_delete,
            "rows_after": self.final_count,
            "dropped_columns": self.dropped_columns,
            "columns_not_in_backup": self.columns_not_in_backup,
        }


def list_backups(*, app_name: str, container: str, env: str) -> list[StoredBackup]:
    """The container's dataset's backups in S3, oldest first."""
    return Target.of(app_name, container, env, job="restore_socrata").backups()


def restore(
    *, app_name: str, container: str, env: str, backup: str | None = None, dry_run: bool = False
) -> RestoreResult:
    """Make the container's Socrata dataset equal to ``backup`` (a key, an ``s3://`` URL or a
    backup's file name; default: the newest backup). ``dry_run``: check and count only."""
    t0 = time.monotonic()
    target = Target.of(app_name, container, env, job="restore_socrata")
    chosen = _choose(target, backup)
    rid = target.soc.resource_id
    result = RestoreResult(
        app_name=app_name,
        env=target.env,
        container=container,
        resource_id=rid,
        backup=target.store.url(chosen.key),
        dry_run=dry_run,
    )
    client = Client()
    try:
        meta = client.call("reading the dataset's columns", client.soda.get_metadata, rid)
        types = {c["fieldName"]: c.get("dataTypeName", "text") for c in meta["columns"]}
        header, backup_ids = _backup_ids(target, chosen)
        result.rows = len(backup_ids)
        result.dropped_columns = [name for name in header if name not in types]
        if result.dropped_columns:
            result.notes.append(
                "columns of the backup that the dataset no longer has are left "
                "out: " + ", ".join(result.dropped_columns)
            )
        # an upsert leaves the columns it does not name as they are (SODA's merge)
        result.columns_not_in_backup = [name for name in types if name not in header]
        if result.columns_not_in_backup:
            result.notes.append(
                "columns of the dataset that the backup does not have (added since it was "
                "taken) are left as they are on the rows the dataset holds, and empty on the "
                "rows the restore creates: " + ", ".join(result.columns_not_in_backup)
            )
        existing = dataset_ids(client, rid)
        result.existing = len(existing)
        gone = sorted(existing - backup_ids)
        result.to_delete = len(gone)
        if target.cfg.refuses_mass_delete(len(gone), len(existing), len(backup_ids)):
            result.errors.append(
                f"refusing to restore {chosen.name}: it would delete "
                f"{'all ' if len(gone) == len(existing) else ''}{len(gone)} of the "
                f"{len(existing)} rows of dataset {rid} (it holds {len(backup_ids)} rows), more "
                f"than mass_delete_threshold ({target.cfg.mass_delete_threshold:.0%}) allows. "
                "Nothing was changed. Pick another backup with --backup, or if this one is "
                f"right, set `allow_mass_delete: true` under containers.{container} in "
                f"{app_name}.yaml, rerun, and set it back"
            )
            return result
        if dry_run:
            return result
        keep = [name for name in header if name in types]
        chunk = target.soc.chunk_size
        with progress_bar(f"restore {rid}", total=result.rows, unit="row") as bar:
            batch: list[dict[str, Any]] = []
            for row in _backup_rows(target, chosen):
                batch.append({name: _typed(row.get(name, ""), types[name]) for name in keep})
                if len(batch) == chunk:
                    _write(client, rid, batch, result, "restoring rows")
                    bar.update(len(batch))
                    batch = []
            if batch:
                _write(client, rid, batch, result, "restoring rows")
                bar.update(len(batch))
        for start in range(0, len(gone), chunk):
            batch = [{ROW_ID: i, ":deleted": True} for i in gone[start : start + chunk]]
            _write(client, rid, batch, result, "deleting rows the backup does not hold")
        result.final_count = count_rows(client, rid)
        if result.final_count != result.rows:
            result.errors.append(
                f"after the restore dataset {rid} counts {result.final_count} rows, the backup "
                f"{result.rows}: was it written meanwhile? Rerun the restore"
            )
    except _RowsRefused as e:
        result.errors.append(str(e))
    finally:
        client.close()
        result.requests, result.retries = client.requests, client.retries
        result.seconds = time.monotonic() - t0
    return result


class _RowsRefused(Exception):
    pass


def _write(
    client: Client, rid: str, batch: list[dict[str, Any]], result: RestoreResult, what: str
) -> None:
    answer = client.call(what, client.soda.upsert, rid, batch)
    if int(answer.get("Errors", 0)):
        raise _RowsRefused(
            f"Socrata reported {answer['Errors']} errors {what} (rows {batch[0][ROW_ID]} to "
            f"{batch[-1][ROW_ID]}); the rows before them are restored. Check the dataset's "
            "columns against the backup, then rerun the restore"
        )
    result.created += int(answer.get("Rows Created", 0))
    result.updated += int(answer.get("Rows Updated", 0))
    result.deleted += int(answer.get("Rows Deleted", 0))


def _choose(target: Target, wanted: str | None) -> StoredBackup:
    backups = target.backups()
    if not backups:
        raise BackupError(
            f"no backup of dataset {target.soc.resource_id} under "
            f"{target.store.url(target.prefix)}: run backup_socrata first"
        )
    if wanted is None:
        return backups[-1]
    key = wanted.removeprefix(f"s3://{target.store.bucket}/")
    for b in backups:
        if key in (b.key, b.name, b.name.removesuffix(".csv.gz")):
            return b
    raise BackupError(
        f"no backup {wanted!r} of dataset {target.soc.resource_id}; the newest are: "
        + ", ".join(b.name for b in backups[-5:])
        + f" (under {target.store.url(target.prefix)})"
    )


def _open_backup(
    target: Target, chosen: StoredBackup, *, writing: bool = False
) -> Iterator[list[str]]:
    """The backup's CSV records (header first), streamed from S3. ``writing``: the restore
    has started writing (what an unreadable backup's error says was done)."""
    body = target.store.open(chosen.key)
    if body is None:
        raise BackupError(
            f"{target.store.url(chosen.key)} is gone (deleted since it was listed): pick "
            "another backup with --backup"
        )
    with gzip.GzipFile(fileobj=body) as gz:
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        try:
            yield from csv.reader(text)
        # zlib.error: a stream corrupted mid-file (not an OSError, unlike a bad CRC or header)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
            done = (
                "the rows before the damage are restored"
                if writing
                else "nothing was written to the dataset"
            )
            raise BackupError(
                f"{target.store.url(chosen.key)} is not a readable gzip CSV ({e}); {done}: "
                "pick another backup with --backup"
            ) from None


def _backup_ids(target: Target, chosen: StoredBackup) -> tuple[list[str], set[str]]:
    records = _open_backup(target, chosen)
    header = next(records, None)
    if not header or ROW_ID not in header:
        raise BackupError(f"{target.store.url(chosen.key)} has no header with {ROW_ID!r}")
    at = header.index(ROW_ID)
    ids = set()
    for row in records:
        if len(row) != len(header) or not row[at] or row[at] in ids:
            raise BackupError(
                f"{target.store.url(chosen.key)} has a row that is not one of the dataset's "
                f"(wrong length, no id or an id twice: {row[:1]}): pick another backup"
            )
        ids.add(row[at])
    return header, ids


def _backup_rows(target: Target, chosen: StoredBackup) -> Iterator[dict[str, str]]:
    records = _open_backup(target, chosen, writing=True)
    header = next(records)
    for row in records:
        yield dict(zip(header, row, strict=True))


def _typed(cell: str, data_type: str) -> Any:
    """A CSV cell as the upsert value of a column of ``data_type``; an empty cell clears
    the field (None). Points and multipoints in WKT (Socrata's CSV) become GeoJSON (what
    every Socrata upsert takes); geometry, location and url cells holding JSON are parsed."""
    if cell == "":
        return None
    if data_type == "checkbox":
        return CHECKBOX.get(cell.lower())
    if data_type in GEO_TYPES | JSON_TYPES and cell.startswith("{"):
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    if data_type in ("point", "multipoint"):
        pairs = [[float(x) for x in pair] for pair in _WKT_PAIR.findall(cell)]
        kind = cell.lstrip().split("(", 1)[0].strip().upper()
        if kind == "POINT" and len(pairs) == 1:
            return {"type": "Point", "coordinates": pairs[0]}
        if kind == "MULTIPOINT" and pairs:
            return {"type": "MultiPoint", "coordinates": pairs}
    return cell
