"""A container's Socrata dataset → a dated, verified CSV backup in S3 (``backup_socrata``).

```
s3://<bucket>/_backups/<app-name>-<env>/<container>/socrata-<resource-id>/<UTC stamp>.csv.gz
```
Reads the dataset as Socrata's own CSV, page by page with ``$order=:id`` (stable paging),
into a gzip file on local disk: memory holds one page, whatever the dataset's size (plus the
set of ids that proves them unique). It is verified before anything goes to S3: the rows
read equal ``$select=count(*)``, taken before and after the read, the ids are unique and not
empty, and the dataset was not written meanwhile (its ``rowsUpdatedAt`` and columns
unchanged). A dataset that changes during the read is read again (up to ``ATTEMPTS``
times), then the run fails and writes nothing. The verified file is uploaded whole (one
object; S3 shows all of it or none), its size checked, and only then are backups beyond
``socrata.backup_keep`` deleted, oldest first; the new one is always kept.

Putting a backup back is ``lib.restore`` (``restore`` and ``list_backups`` are importable
from here too); where backups are and what both share, ``lib.backups``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import logging
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any

from lib.backups import (  # noqa: F401 - STAMP: the backups' names, shown here too
    STAMP,
    BackupError,
    Result,
    StoredBackup,
    Target,
    count_rows,
)
from lib.clients.app_store import AppStore
from lib.clients.socrata import ROW_ID, Client
from lib.progress import progress_bar
from lib.restore import RestoreResult, _typed, list_backups, restore  # noqa: F401 - here too
from lib.table import Table
from lib.text import md

logger = logging.getLogger(__name__)

PAGE_ROWS = 10_000  # rows per read: what the backup holds in memory at once
ATTEMPTS = 3  # reads of the whole dataset when it changes during one


@dataclass(kw_only=True)
class BackupResult(Result):
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

    def backups_table(self) -> Table:
        """The backups kept and deleted by this run, newest first (``lib.table.Table``, as
        every report's tables: no index column, numbers as the summary shows them)."""
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
        return Table(rows, ["backup", "taken (UTC)", "bytes", "this run", "new"])


def backup(
    *, app_name: str, container: str, env: str, now: dt.datetime | None = None
) -> BackupResult:
    """Back the container's Socrata dataset up to S3, verify it, then apply retention.

    ``now`` (UTC, for tests) stamps the backup; by default the time its read starts.
    """
    t0 = time.monotonic()
    target = Target.of(app_name, container, env)
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
    return count_rows(client, resource_id), meta.get("rowsUpdatedAt"), columns


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


def _upload(store: AppStore, key: str, spool: IO[bytes], size: int) -> None:
    """Upload the verified file as one object and check that S3 holds all of it."""
    stored = store.upload(key, spool, "application/gzip")
    if stored != size:
        raise BackupError(
            f"{store.url(key)} holds {stored} bytes where {size} were written: no backup was "
            "deleted; rerun"
        )


def _apply_retention(target: Target, result: BackupResult) -> None:
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
