"""A container's Socrata dataset → a dated, verified CSV backup in S3, and back.

```
s3://<bucket>/_backups/<app-name>-<env>/<container>/socrata-<resource-id>/<UTC stamp>.csv.gz
```
**Backup** (``backup_socrata`` notebook): reads the dataset as Socrata's own CSV, page by
page with ``$order=:id`` (stable paging), into a gzip file on local disk: memory holds one
page, whatever the dataset's size (plus the set of ids that proves them unique). It is
verified before anything goes to S3: the rows read equal ``$select=count(*)``, taken before
and after the read, the ids are unique and not empty, and the dataset was not written
meanwhile (its ``rowsUpdatedAt`` and columns unchanged). A dataset that changes during the
read is read again (up to ``ATTEMPTS`` times), then the run fails and writes nothing. The
verified file is uploaded whole (one object; S3 shows all of it or none), its size checked,
and only then are backups beyond ``socrata.backup_keep`` deleted, oldest first; the new one
is always kept.

**Restore** (``knack-nb restore-socrata``): makes the dataset equal to a backup (the newest
by default) like a full publish: upsert every row, then delete the rows the backup does not
hold with ``":deleted"`` rows; never a truncate, so a failure half-way loses nothing and a
rerun completes it. Guarded like a full publish: it refuses to delete more than the
container's ``mass_delete_threshold`` of the rows (or all of them) unless
``allow_mass_delete``. Columns the dataset has and the backup does not are left as they are
(an upsert changes only the columns it names): the report lists them.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import logging
import re
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

import botocore.exceptions

from lib import config
from lib.clients.socrata import ROW_ID, Client, dataset_ids
from lib.errors import KnackNbError
from lib.jobs import context
from lib.jobs.result import ContainerResult
from lib.progress import progress_bar
from lib.store import Store, translate_s3_error
from lib.text import md

logger = logging.getLogger(__name__)

BACKUP_PREFIX = "_backups"
PAGE_ROWS = 10_000  # rows per read: what the backup holds in memory at once
ATTEMPTS = 3  # reads of the whole dataset when it changes during one
STAMP = "%Y%m%dT%H%M%SZ"  # UTC, sorts by time: 20261202T060000Z.csv.gz
_BACKUP_NAME = re.compile(r"^(\d{8}T\d{6}Z)\.csv\.gz$")
CHECKBOX = {"true": True, "false": False}
JSON_TYPES = {"location", "url"}  # the CSV holds these as JSON text
GEO_TYPES = {"point", "multipoint"}  # the CSV holds these as WKT: POINT (lon lat)
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_WKT_PAIR = re.compile(rf"({_NUMBER})\s+({_NUMBER})")


class BackupError(KnackNbError):
    """A backup could not be made, verified or restored; the message says what to do."""


@dataclass(frozen=True)
class StoredBackup:
    """One backup object in S3."""

    key: str
    taken: dt.datetime  # the UTC stamp in its name: when its read started
    size: int  # bytes, compressed

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(kw_only=True)
class _Target:
    """The dataset of one container and where its backups go."""

    app_name: str
    env: str
    container: str
    cfg: config.ContainerConfig
    soc: config.SocrataConfig
    store: Store

    @property
    def prefix(self) -> str:
        return (
            f"{BACKUP_PREFIX}/{self.store.prefix}/{self.container}/socrata-{self.soc.resource_id}/"
        )

    def key(self, taken: dt.datetime) -> str:
        return f"{self.prefix}{taken.astimezone(dt.UTC).strftime(STAMP)}.csv.gz"

    def backups(self) -> list[StoredBackup]:
        """This dataset's backups, oldest first (other objects under the prefix ignored)."""
        found = []
        for obj in self.store.list_objects(self.prefix):
            match = _BACKUP_NAME.match(obj["Key"][len(self.prefix) :])
            if match:
                taken = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.UTC)
                found.append(StoredBackup(obj["Key"], taken, int(obj["Size"])))
        return sorted(found, key=lambda b: b.key)


def _target(app_name: str, container: str, env: str) -> _Target:
    run = context.start("backup_socrata", app_name=app_name, env=env, container=container,
                        needs=("socrata", "it publishes no dataset to back up"))
    assert run.cfg is not None and run.cfg.socrata is not None  # start() checked it
    return _Target(app_name=app_name, env=run.env, container=container, cfg=run.cfg,
                   soc=run.cfg.socrata, store=run.store)


@dataclass(kw_only=True)
class _Result(ContainerResult):
    """What every backup or restore reports: the dataset, and its requests, retries, time
    and errors (``ContainerResult``) around the counts a subclass gives (``counts``)."""

    resource_id: str

    ERROR: ClassVar[type[KnackNbError]] = BackupError
    KEPT: ClassVar[str | None] = None  # the errors say what to do

    def counts(self) -> dict[str, Any]:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, **self.counts()}


# --- backup ----------------------------------------------------------------------------


@dataclass(kw_only=True)
class BackupResult(_Result):
    keep: int
    bucket: str = ""
    key: str | None = None  # the new backup, once written
    rows: int = 0
    bytes: int = 0
    columns: list[str] = field(default_factory=list)
    attempts: int = 0
    kept: list[StoredBackup] = field(default_factory=list)  # after retention, oldest first
    deleted: list[StoredBackup] = field(default_factory=list)

    @property
    def url(self) -> str | None:
        return f"s3://{self.bucket}/{self.key}" if self.key else None

    def restore_command(self, backup: StoredBackup | None = None) -> str:
        """The command that puts ``backup`` (default: this run's) back into the dataset."""
        key = backup.key if backup else self.key
        stamp = key.rsplit("/", 1)[-1].removesuffix(".csv.gz") if key else None
        return (
            f"knack-nb restore-socrata --app-name {self.app_name} --env {self.env} "
            f"--container {self.container}" + (f" --backup {stamp}" if stamp else "")
        )

    def describe(self) -> str:
        """What this run did, in Markdown, for the report."""
        if not self.ok:
            return f"**The backup of dataset `{self.resource_id}` failed**: " + md(
                " | ".join(self.errors)
            )
        return (
            f"**Backup of dataset `{self.resource_id}`**: {self.rows:,} rows, "
            f"{len(self.columns)} columns, {self.bytes:,} bytes (gzip) → `{self.url}`, "
            f"verified (read {self.attempts} time{'s' if self.attempts > 1 else ''}). "
            f"Retention (keep {self.keep}): {len(self.kept)} kept, {len(self.deleted)} deleted."
            + "".join(f"\n- {md(note)}" for note in self.notes)
        )

    def how_to_restore(self) -> str:
        """How to put this backup back into the dataset, in Markdown."""
        which = "this backup" if self.key else "the newest backup (this run wrote none)"
        return (
            f"To make dataset `{self.resource_id}` equal to {which} again (every row upserted, "
            "the rows it does not hold deleted; refused when that deletes more than the "
            "container's `mass_delete_threshold` unless `allow_mass_delete`):\n\n"
            f"    {self.restore_command()} --dry-run   # what it would change\n"
            f"    {self.restore_command()}\n\n"
            "Without `--backup` it restores the newest backup; `knack-nb restore-socrata "
            "--list ...` lists them."
        )

    def counts(self) -> dict[str, Any]:
        return {
            "backup": self.url,
            "rows": self.rows,
            "bytes": self.bytes,
            "columns": len(self.columns),
            "attempts": self.attempts,
            "kept": len(self.kept),
            "deleted": len(self.deleted),
            "keep": self.keep,
        }

    def backups_table(self) -> Any:
        """The backups kept and deleted by this run, newest first (a pandas DataFrame)."""
        import pandas as pd

        rows = [
            {
                "backup": b.name,
                "taken (UTC)": b.taken.strftime("%Y-%m-%d %H:%M:%S"),
                "bytes": b.size,
                "this run": "kept" if b in self.kept else "deleted",
                "new": "yes" if b.key == self.key else "",
            }
            for b in sorted([*self.kept, *self.deleted], key=lambda b: b.key, reverse=True)
        ]
        return pd.DataFrame(rows, columns=["backup", "taken (UTC)", "bytes", "this run", "new"])


def backup(
    *, app_name: str, container: str, env: str, now: dt.datetime | None = None
) -> BackupResult:
    """Back the container's Socrata dataset up to S3, verify it, then apply retention.

    ``now`` (UTC, for tests) stamps the backup; by default the time its read starts.
    """
    t0 = time.monotonic()
    target = _target(app_name, container, env)
    result = BackupResult(
        app_name=app_name,
        env=target.env,
        container=container,
        resource_id=target.soc.resource_id,
        keep=target.soc.backup_keep,
        bucket=target.store.bucket,
    )
    client = Client()
    try:
        with tempfile.TemporaryFile(prefix="socrata-backup-") as spool:
            for attempt in range(1, ATTEMPTS + 1):
                result.attempts = attempt
                taken = now or dt.datetime.now(dt.UTC)
                spool.seek(0)
                spool.truncate()
                problem = _read_dataset(client, target.soc.resource_id, spool, result)
                if problem is None:
                    break
                logger.warning(
                    "backup of %s, read %d of %d: %s",
                    target.soc.resource_id,
                    attempt,
                    ATTEMPTS,
                    problem,
                )
                if attempt == ATTEMPTS:
                    result.errors.append(
                        f"the backup of dataset {target.soc.resource_id} failed its check "
                        f"{ATTEMPTS} times; the last time: {problem}. Nothing was written to S3 "
                        "and no backup was deleted. If the dataset is being written (a publish "
                        "is running), rerun when it is done"
                    )
                    return result
            result.bytes = spool.tell()
            spool.seek(0)
            key = target.key(taken)
            _upload(target.store, key, spool, result.bytes)
            result.key = key
        logger.info(
            "backup of %s: %d rows, %d bytes → %s",
            target.soc.resource_id,
            result.rows,
            result.bytes,
            result.url,
        )
        _apply_retention(target, result)
    finally:
        client.close()
        result.requests, result.retries = client.requests, client.retries
        result.seconds = time.monotonic() - t0
    return result


def _dataset_state(client: Client, resource_id: str) -> tuple[int, Any, list[str]]:
    """The dataset's row count, ``rowsUpdatedAt`` and column names, as Socrata says now."""
    meta = client.call("reading the dataset's metadata", client.soda.get_metadata, resource_id)
    columns = [c.get("fieldName") for c in meta.get("columns", [])]
    return _count(client, resource_id), meta.get("rowsUpdatedAt"), columns


def _count(client: Client, resource_id: str) -> int:
    """``$select=count(*)``: the dataset's rows, as Socrata counts them now."""
    answer = client.call(
        "counting the dataset's rows", client.soda.get, resource_id, select="count(*)"
    )
    try:
        (count,) = answer[0].values()
        return int(count)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        raise BackupError(
            f"Socrata answered the row count of {resource_id} with {str(answer)[:200]!r}, "
            "not one count; check SOCRATA_URL"
        ) from None


def _read_dataset(
    client: Client, resource_id: str, spool: IO[bytes], result: BackupResult
) -> str | None:
    """Read the whole dataset into ``spool`` (gzip CSV); what is wrong with it, or None."""
    count, updated, columns = _dataset_state(client, resource_id)
    header: list[str] | None = None
    ids: set[str] = set()
    duplicates = blank = rows = 0
    gz = gzip.GzipFile(fileobj=spool, mode="wb", mtime=0)
    text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    try:
        with progress_bar(f"backup {resource_id}", total=count, unit="row") as bar:
            while True:
                page = client.call(
                    f"reading rows from {rows + 1}",
                    client.soda.get,
                    resource_id,
                    content_type="csv",
                    order=":id",
                    limit=PAGE_ROWS,
                    offset=rows,
                )
                if not isinstance(page, list) or not page:
                    raise BackupError(
                        f"Socrata answered a CSV read of {resource_id} with no header line; "
                        "check SOCRATA_URL"
                    )
                if header is None:
                    header = page[0]
                    if ROW_ID not in header:
                        raise BackupError(
                            f"dataset {resource_id} has no {ROW_ID!r} column (its columns: "
                            f"{', '.join(header)}): a backup must hold each row's record id"
                        )
                    writer.writerow(header)
                    at = header.index(ROW_ID)
                elif page[0] != header:
                    return "its columns changed during the read"
                data = page[1:]
                if not data:  # the end: a server may cap $limit, so never stop on a short page
                    break
                seen = duplicates
                for row in data:
                    rid = row[at] if at < len(row) else ""
                    blank += not rid
                    duplicates += rid in ids
                    ids.add(rid)
                writer.writerows(data)
                rows += len(data)
                bar.update(len(data))
                if duplicates - seen == len(data) or rows > 2 * count + len(data):
                    # rows written meanwhile shift the pages: a page of ids already read, or
                    # far more rows than counted, would never reach the end while it goes on
                    return "rows moved between pages: it was written during the read"
                page = data = []  # not held while the next page is read
    finally:
        text.flush()
        text.detach()
        gz.close()  # writes the gzip trailer; the spool stays open
    after, updated_after, columns_after = _dataset_state(client, resource_id)
    result.rows, result.columns = rows, header or []
    if (count, updated, columns) != (after, updated_after, columns_after):
        return (
            f"the dataset changed during the read ({count} rows before, {after} after"
            + (", rowsUpdatedAt moved" if updated != updated_after else "")
            + (", its columns changed" if columns != columns_after else "")
            + ")"
        )
    if rows != count:
        return f"{rows} rows were read but the dataset counts {count}"
    if duplicates or blank:
        return (
            f"{duplicates} ids were read twice and {blank} rows had no id: the paging "
            "was not stable"
        )
    return None


def _upload(store: Store, key: str, spool: IO[bytes], size: int) -> None:
    """Upload the verified file as one object and check that S3 holds all of it."""
    try:
        store.client.upload_fileobj(
            spool, store.bucket, key, ExtraArgs={"ContentType": "application/gzip"}
        )
        stored = store.client.head_object(Bucket=store.bucket, Key=key)["ContentLength"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate_s3_error(e, f"cannot write {store.url(key)}") from None
    if stored != size:
        raise BackupError(
            f"{store.url(key)} holds {stored} bytes where {size} were written: no backup was "
            "deleted; rerun"
        )


def _apply_retention(target: _Target, result: BackupResult) -> None:
    """Delete the backups beyond ``backup_keep``, oldest first; never the new one."""
    backups = target.backups()
    if result.key not in {b.key for b in backups}:
        result.errors.append(
            f"the new backup {result.url} is not listed under {target.prefix}: no backup was "
            "deleted; rerun"
        )
        return
    keep = backups[-target.soc.backup_keep :]
    result.kept = [b for b in backups if b in keep or b.key == result.key]
    result.deleted = [b for b in backups if b not in result.kept]
    failed = target.store.delete_keys([b.key for b in result.deleted])
    if failed:
        result.errors.append(f"S3 did not delete {len(failed)} old backups: rerun")
        result.kept += [b for b in result.deleted if b.key in failed]
        result.deleted = [b for b in result.deleted if b.key not in failed]
    if result.deleted:
        logger.info(
            "retention (keep %d): deleted %d old backups",
            target.soc.backup_keep,
            len(result.deleted),
        )


# --- restore ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class RestoreResult(_Result):
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
    return _target(app_name, container, env).backups()


def restore(
    *, app_name: str, container: str, env: str, backup: str | None = None, dry_run: bool = False
) -> RestoreResult:
    """Make the container's Socrata dataset equal to ``backup`` (a key, an ``s3://`` URL or a
    backup's file name; default: the newest backup). ``dry_run``: check and count only."""
    t0 = time.monotonic()
    target = _target(app_name, container, env)
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
        result.final_count = _count(client, rid)
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


def _choose(target: _Target, wanted: str | None) -> StoredBackup:
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
    target: _Target, chosen: StoredBackup, *, writing: bool = False
) -> Iterator[list[str]]:
    """The backup's CSV records (header first), streamed from S3. ``writing``: the restore
    has started writing (what an unreadable backup's error says was done)."""
    try:
        body = target.store.client.get_object(Bucket=target.store.bucket, Key=chosen.key)["Body"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate_s3_error(e, f"cannot read {target.store.url(chosen.key)}") from None
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


def _backup_ids(target: _Target, chosen: StoredBackup) -> tuple[list[str], set[str]]:
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


def _backup_rows(target: _Target, chosen: StoredBackup) -> Iterator[dict[str, str]]:
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
