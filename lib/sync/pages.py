"""Knack's pages → S3, as they arrive: the sync's writer, its second listing of a listing
that came back short, and the report's sample of the records written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from lib import schema
from lib.clients import knack
from lib.clients.s3_records import RECORD_ID, escape_surrogates
from lib.ids import IdList, RecordIndex
from lib.sync.result import SyncRun
from lib.table import Table
from lib.text import value_text

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 5


def write(
    sync: SyncRun, records: list[dict[str, Any]], known: Mapping[str, str] | None
) -> dict[str, str]:
    """Write ``records`` (valid ids) to S3, unless S3 holds them unchanged (``known``: the
    ETags of a full run's listing), into the snapshot, and count them; the records that
    could not be written (id → why)."""
    result = sync.result
    written = sync.store.put_records(
        sync.container,
        records,
        known_etags=known,
        before_write=sync.snap.mark_stale,
        keep_bodies=True,
    )
    result.written += len(written.written)
    result.unchanged += len(written.unchanged)
    result.failed.update(written.failed)
    sync.snap.add(records, written)
    return written.failed


class PageWriter:
    """Writes each page of Knack's listing to S3 as it arrives (``take``, the listing's
    ``on_records``), keeping only what the rest of the run needs: the ids listed, the first
    few records (the report's sample) and the counts in the result."""

    def __init__(
        self, sync: SyncRun, stored: Future[RecordIndex] | None, progress: Callable[[int], Any]
    ) -> None:
        self.sync, self.stored, self.progress = sync, stored, progress
        self.listed = IdList()  # 12 bytes an id, not a str each
        self.first: list[dict[str, Any]] = []

    def take(self, records: list[dict[str, Any]]) -> None:
        valid = []
        for r in records:
            if has_valid_id(r):
                valid.append(r)
            else:
                self.sync.result.rejected.append(_describe_record(r))
        # a full run compares with S3's listing: wait for it before the first write
        known = self.stored.result() if self.stored is not None else None
        if known is not None and not self.listed:
            self.sync.snap.use_listing(known)
        write(self.sync, valid, known)
        self.listed.extend(r["id"] for r in valid)
        self.first += valid[: SAMPLE_ROWS - len(self.first)]
        self.progress(len(records))


def list_again(sync: SyncRun, listing: knack.Listing, pages: PageWriter) -> None:
    """List once more a listing that ended a page or more short of Knack's own count
    (Knack has answered its last page empty): a full run would otherwise confirm each
    stored record it missed with a request of its own (from the app's daily quota), and an
    incremental run would skip them. The records the first listing missed are written as
    its pages were and counted in ``listing``; only what neither listing holds is left for
    ``delete_gone`` to confirm. One more listing, never more: an incremental run whose
    second listing is short too fails (its ``auto`` state stays)."""
    container, result = sync.container, sync.result
    first, counted, short = listing.count, listing.estimated_records, listing.pages_short

    def take(records: list[dict[str, Any]]) -> None:
        more = [
            r
            for r in records
            if isinstance(r, dict)
            and isinstance(r.get("id"), str)
            and r["id"]
            and r["id"] not in listing.ids
        ]
        for r in more:
            listing.ids.add(r["id"])
        listing.count += len(more)
        pages.take(more)

    logger.warning(
        "%s: Knack's listing gave %d of the %d records it counted; listing again",
        container,
        first,
        counted,
    )
    again = sync.client.list_records(
        container, scene=sync.scene, filters=sync.filters, on_records=take
    )
    still = again.problem or (
        f"{again.count} of {again.estimated_records} records" if again.pages_short else ""
    )
    result.notes.append(
        f"Knack's listing of {container} gave {first} of the {counted} records Knack counted "
        f"({short} page{'s' if short > 1 else ''} short): listed it again before "
        + ("confirming any deletion" if sync.full else "moving the `auto` state")
        + f", which found {listing.count - first} more"
        + (
            f"; it was short too ({still}), so what neither listed is confirmed record by record"
            if still and sync.full
            else ""
        )
    )
    if still and not sync.full:
        result.errors.append(
            f"Knack's listing of {container} came back short twice (the second: {still}): "
            "records of the missing pages may not have been fetched, so the `auto` state "
            "stays where it was. Rerun later; if it persists, run a full run (date=None), "
            "which asks Knack for each record a listing misses"
        )


def has_valid_id(record: Any) -> bool:
    """A record whose id can name its S3 object (24 hex characters, as Knack's are)."""
    rid = record.get("id") if isinstance(record, dict) else None
    return isinstance(rid, str) and RECORD_ID.match(rid) is not None


def _describe_record(record: Any) -> str:
    if not isinstance(record, dict):
        return f"a {type(record).__name__} instead of a record"
    rid = record.get("id")
    return f"id {rid!r}" if rid is not None else f"a record without id ({len(record)} fields)"


def sample(
    records: list[dict[str, Any]],
    metadata: dict[str, Any],
    container: str,
    modified_field: str | None,
) -> Table:
    """A few records as a table: id, modified date and the first fields, by field name."""
    names = schema.field_names(metadata, container)
    keys = [k for k in names if k != modified_field][:4]
    if modified_field:
        keys.insert(0, modified_field)
    columns = ["record id", *(names.get(k, k) for k in keys)]
    rows = [
        {"record id": r["id"], **{names.get(k, k): _short(_value(r, k)) for k in keys}}
        for r in records[:SAMPLE_ROWS]
    ]
    return Table(rows, columns)


def _value(record: dict[str, Any], key: str) -> Any:
    """A field's value as the reports show it: a Knack date/time as ISO (``2018-07-03
    10:26``, the app's local time, as explore shows it; a range ``… to …``), else its
    formatted value."""
    raw = record.get(f"{key}_raw")
    if not (isinstance(raw, dict) and isinstance(raw.get("iso_timestamp"), str)):
        return record.get(key)
    timed = ":" in str(record.get(key) or "")  # the field's format shows a time
    shown = _local(raw, timed)
    end = raw.get("to")
    if isinstance(end, dict) and isinstance(end.get("iso_timestamp"), str):
        return f"{shown} to {_local(end, timed)}"
    return shown


def _local(raw: dict[str, Any], timed: bool) -> str:
    iso = str(raw["iso_timestamp"])  # Knack's: the local wall time, labelled Z
    return f"{iso[:10]} {iso[11:16]}" if timed else iso[:10]


def _short(value: Any, width: int = 40) -> str:
    """A value as text: rich text as the text a reader sees, cut to ``width``."""
    text = "" if value is None else str(value)
    return value_text(escape_surrogates(text), width)  # a lone surrogate cannot leave the kernel
