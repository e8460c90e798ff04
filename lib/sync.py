"""Knack → S3: the app's metadata (and, later, container records)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lib import config, dates, knack, schema
from lib.clients.s3 import RECORD_ID, ForeignRecordError, Strays, dumps_stable, escape_surrogates
from lib.errors import ConfigError, CorruptObjectError, KnackNbError, UnknownContainerError
from lib.ids import IdList, RecordIndex
from lib.knack import KnackClient
from lib.progress import progress_bar
from lib.snapshot import SnapshotSync
from lib.state import Store
from lib.table import Note, Table
from lib.text import md

logger = logging.getLogger(__name__)


@dataclass
class MetadataUpload:
    """What ``upload_metadata`` did, for the report."""

    app_name: str
    env: str
    app_id: str
    url: str
    metadata: dict[str, Any]
    previous_found: bool
    written: bool
    changes: list[schema.SchemaChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def objects(self) -> Table:
        return schema.objects_table(self.metadata)

    @property
    def views(self) -> Table:
        table = schema.views_table(self.metadata)
        table.caption = schema.views_note(self.metadata)
        return table

    @property
    def changes_table(self) -> Table:
        return schema.changes_table(self.changes)

    def describe(self) -> Note:
        return Note(f"**{md(schema.app_description(self.metadata))}** (`{self.app_id}`) → "
                    f"`{self.url}`: " + ("written." if self.written else
                                         "unchanged since the last upload, nothing written."))

    def record_counts(self) -> Table:
        """Knack's record count per object, largest first, with bars; the caption says
        what Knack did not give."""
        counts = schema.record_counts(self.metadata)
        title = f"Records per object ({schema.app_name(self.metadata)}, Knack's count)"
        return counts.table(title + (f". {counts.note}" if counts.note else ""))

    def schema_changes(self) -> Table:
        """The fields added, removed, renamed or retyped since the last upload; the caption
        says which containers need a full run of their sync."""
        table = self.changes_table
        if not self.previous_found:
            table.caption = "No metadata was stored before: this is the first upload."
        elif not self.changes:
            table.caption = "No field was added, removed, renamed or retyped."
        else:
            table.caption = ("These containers changed and need a full run (date=None) of "
                             "their sync: " + ", ".join(self.needs_full_run))
        return table

    @property
    def needs_full_run(self) -> list[str]:
        return schema.containers_needing_full_run(self.changes, self.metadata)

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "app_id": self.app_id,
            "s3_url": self.url,
            "objects": len(self.metadata.get("objects") or []),
            "views": int(len(self.views)),
            "fetched": 1,
            "written": int(self.written),
            "unchanged": int(not self.written),
            "schema_changes": len(self.changes),
            "needs_full_run": self.needs_full_run,
            "errors": 0,
            "seconds": round(self.seconds, 2),
        }


def upload_metadata(*, app_name: str, env: str) -> MetadataUpload:
    """Fetch the app's metadata from Knack and keep it in S3 (only when it changed)."""
    started = time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    app_id = app.app_id_for(env)
    store = Store(app_name=app_name, env=env)
    key = store.metadata_key(app_id)

    client = KnackClient(app_id=app_id, requests_per_second=app.client_requests_per_second)
    try:
        metadata = client.get_metadata()
    finally:
        client.close()
    logger.info(
        "fetched metadata of %s (%s): %d objects",
        metadata.get("name"), app_id, len(metadata.get("objects") or []),
    )

    try:
        previous = store.get_json(key)
    except CorruptObjectError as e:  # this run fetched good metadata: it replaces it
        logger.warning("%s; replacing it with the metadata just fetched", e)
        previous = None
    changes = schema.diff(previous, metadata) if previous is not None else []
    written = previous is None or dumps_stable(previous) != dumps_stable(metadata)
    if written:
        store.put_json(key, metadata)
        logger.info("wrote %s", store.url(key))
    else:
        logger.info("%s already holds this metadata: nothing written", store.url(key))
    return MetadataUpload(
        app_name=app_name,
        env=env,
        app_id=app_id,
        url=store.url(key),
        metadata=metadata,
        previous_found=previous is not None,
        written=written,
        changes=changes,
        seconds=time.monotonic() - started,
    )


class SyncError(KnackNbError):
    """A container sync that did part of its work and must be rerun (the report says why)."""


SYNC_JOB = "knack_container_to_s3"
SAMPLE_ROWS = 5
SHOWN_ROWS = 50  # records a report lists per kind of problem (deleted, failed, rejected)


@dataclass
class ContainerSync:
    """What ``sync_container`` did, for the report. ``errors`` non-empty means it failed."""

    app_name: str
    env: str
    container: str
    app_id: str
    mode: str  # "full" or "incremental"
    since: dt.datetime | None = None  # records modified on or after this (UTC) ...
    knack_date: str | None = None  # ... i.e. on or after this calendar date in the app's zone
    notes: list[str] = field(default_factory=list)
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    # a full run deletes a stored record only when Knack's own route for it answers 404
    confirmations: int = 0  # single-record requests made to confirm deletions
    recovered: list[str] = field(default_factory=list)  # missing from the listing, in Knack
    errors: list[str] = field(default_factory=list)
    rerun_helps: bool = True  # False when an error needs the user first (a rerun repeats it)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    sample: Table = field(default_factory=lambda: Table([]))
    snapshot_url: str = ""  # written when the run succeeded
    snapshot_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "container": self.container,
            "mode": self.mode,
            "since": self.since.isoformat() if self.since else None,
            "knack_date": self.knack_date,
            "fetched": self.fetched,
            "written": self.written,
            "unchanged": self.unchanged,
            "deleted": len(self.deleted),
            "failed": len(self.failed) + len(self.rejected),
            "confirmations": self.confirmations,
            "recovered": len(self.recovered),
            "snapshot_rows": self.snapshot_rows,
            "errors": len(self.errors),
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
            "records_per_second": round(self.fetched / self.seconds, 1) if self.seconds else 0.0,
        }

    def describe(self) -> Note:
        """What ran, in a sentence, and the run's notes (for the report)."""
        since = (f", records modified on or after {self.knack_date} (app time; `date` = "
                 f"{self.since.isoformat()})" if self.since else "")
        return Note(f"**{self.mode} run** of `{self.container}` ({md(self.app_name)}-{self.env})"
                    f"{since}" + "".join(f"\n- {md(note)}" for note in self.notes))

    def problems(self) -> Table:
        """The records deleted (no longer in Knack), not written and rejected, one a row."""
        rows = [{"record": rid, "what": "deleted", "why": "no longer in Knack"}
                for rid in self.deleted[:SHOWN_ROWS]]
        rows += [{"record": rid, "what": "failed", "why": why}
                 for rid, why in list(self.failed.items())[:SHOWN_ROWS]]
        rows += [{"record": bad, "what": "rejected", "why": "no valid id"}
                 for bad in self.rejected[:SHOWN_ROWS]]
        more = len(self.deleted) + len(self.failed) + len(self.rejected) - len(rows)
        caption = (f"deleted {len(self.deleted)}, failed {len(self.failed)}, rejected "
                   f"{len(self.rejected)}" + (f" ({more} more not listed)" if more > 0 else ""))
        return Table(rows, ["record", "what", "why"], caption=caption)

    def counts(self) -> Table:
        """The record counts, one row per outcome, each with a bar (none when all are 0)."""
        return Table.of_pairs({
            "fetched": self.fetched, "written": self.written, "unchanged": self.unchanged,
            "deleted": len(self.deleted), "failed": len(self.failed) + len(self.rejected),
        }, "outcome", "records", caption=f"{self.container}: records", bars="records")

    def raise_for_errors(self) -> None:
        if self.errors:
            raise SyncError(
                f"sync of {self.container} failed: " + " | ".join(self.errors)
                + (" (nothing was lost; a rerun is safe and completes the work)"
                   if self.rerun_helps else
                   " (nothing was lost; a rerun alone fails the same way: do what the message"
                   " says first)")
            )


def sync_container(
    *, app_name: str, container: str, env: str, date: Any = None
) -> ContainerSync:
    """Records of one container modified on or after ``date`` (all on a full run) → S3.

    A full run also deletes the stored records Knack no longer has (guarded against mass
    deletion). A listing that ends a page or more short of Knack's own count is listed once
    more first (``_list_again``). The ``auto`` state advances only when the run succeeds.
    """
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    cfg = app.container(container)
    app_id = app.app_id_for(env)
    since = dates.parse_date(date)  # fail on a bad date before any request
    store = Store(app_name=app_name, env=env)
    client = KnackClient(app_id=app_id, requests_per_second=app.client_requests_per_second)
    result = ContainerSync(app_name, env, container, app_id, mode="full")
    snap: SnapshotSync | None = None
    try:
        metadata = _metadata(store, client, result)
        scene = _scene(cfg, container, metadata, app_name)
        if since == dates.AUTO:
            since, note = store.resume_point(SYNC_JOB, container)
            result.notes.append(note)
        if since is not None and not cfg.modified_date_field:
            result.notes.append(
                f"{container} has no modified_date_field in {app_name}.yaml: "
                f"ran a full run instead of one since {since.isoformat()}"
            )
            since = None
        filters = None
        if since is not None:
            _check_modified_field(metadata, container, cfg.modified_date_field, app_name)
            tz = knack.app_timezone(metadata)
            result.mode, result.since = "incremental", since
            result.knack_date = dates.knack_date(since, tz)
            filters = dates.modified_since_filter(cfg.modified_date_field, since, tz)

        # A full run lists what S3 holds while Knack pages (Knack's pace, 8 requests/s, is
        # the slower of the two): an unchanged re-run costs the longer of them, not the sum.
        # Each page is written as it arrives and then dropped: memory holds the ids (and the
        # listing's ETags), not the records.
        full = result.mode == "full"
        snap = SnapshotSync(store, container, metadata, full=full)
        strays = Strays()  # objects under the prefix that are not records: left alone
        with ThreadPoolExecutor(1, thread_name_prefix="s3-list") as lister:
            stored = lister.submit(store.list_records, container, strays=strays) if full \
                else None
            with progress_bar(f"sync {container}", unit="rec") as bar:
                pages = _PageWriter(store, container, result, snap, stored, bar.update)
                listing = client.list_records(container, scene=scene, filters=filters,
                                              on_records=pages.take, on_estimate=bar.set_total)
                if listing.complete and listing.pages_short:
                    _list_again(client, container, scene, filters, listing, pages, result)
            known = stored.result() if stored is not None else None
        result.fetched = listing.count
        result.notes += [strays.note()] if strays.note() else []
        if not listing.complete:
            result.errors.append(
                f"Knack's listing of {container} had a hole ({listing.problem}): the "
                f"{listing.count} records it gave are written, but "
                + ("records missing from it are not known to be gone, so none was deleted"
                   if result.mode == "full" else "the records of the missing pages were not "
                   "fetched, so the `auto` state stays where it was")
                + (". Rerun later: Knack's empty pages are usually brief" if not listing.repeated
                   else ". Rerun later; if every run stops at that page, tell Knack support "
                   f"that its listing of {container} answers it with records of earlier pages")
            )
        if result.rejected:
            bad = result.rejected
            result.errors.append(
                f"{len(bad)} records have no valid id (24 hex characters) and were not "
                f"written: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; every "
                "other record was. Reruns reject them again: check these records in Knack "
                "(an id that is not Knack's means the container is not a plain object or view)"
            )
            result.rerun_helps = False
        result.sample = _sample(pages.first, metadata, container, cfg.modified_date_field)
        if result.failed:
            first = next(iter(result.failed.items()))
            result.errors.append(
                f"{len(result.failed)} records could not be written to S3, e.g. {first[0]}: "
                f"{first[1]}"
            )
        if known is not None:
            _delete_gone(store, client, cfg, app_name, container, scene, known, listing.ids,
                         pages.listed, result, snap)
        if result.ok:
            _finish_snapshot(snap, result)
        if result.ok:
            note = store.record_success(SYNC_JOB, container, started_at, since=result.since,
                                        mode=result.mode, fetched=result.fetched)
            result.notes += [note] if note else []
    finally:
        if snap is not None:
            snap.discard()
        client.close()
        result.requests, result.retries = client.stats.requests, client.stats.retries
        result.seconds = time.monotonic() - t0
    logger.info(
        "%s %s: fetched %d, written %d, unchanged %d, deleted %d, failed %d",
        container, result.mode, result.fetched, result.written, result.unchanged,
        len(result.deleted), len(result.failed) + len(result.rejected),
    )
    return result


def _metadata(store: Store, client: KnackClient, result: ContainerSync) -> dict[str, Any]:
    metadata = store.get_json(store.metadata_key(client.app_id))
    if metadata is None:
        result.notes.append(
            "no metadata stored in S3 yet: fetched it from Knack (run upload_metadata to keep it)"
        )
        metadata = client.get_metadata()
    return metadata


def _check_modified_field(metadata: dict[str, Any], container: str, key: str | None,
                          app_name: str) -> None:
    """An incremental run filters on the container's ``modified_date_field``: one the app's
    metadata no longer has as a date/time field fails the run here, by name, before any
    record is asked for (Knack would answer "Invalid filter operator")."""
    fields = schema.container_fields(metadata, container)
    if not key or not fields:  # a view the metadata lacks (scene in params): Knack decides
        return
    found = fields.get(key)
    if found is not None and found.get("type") == "date_time":
        return
    obj = schema.source_object(metadata, container)
    if found is None:
        what = f"is not a field of {container if obj == container else f'its object ({obj})'}"
    else:
        what = f"({_quoted(found.get('name'))}) is a {_plain(found.get('type'))} field"
    dated = [f"{k} {_quoted(f.get('name'))}" for k, f in fields.items()
             if f.get("type") == "date_time"]
    raise ConfigError(
        f"{container}'s modified_date_field {key} {what} now, not date/time (the app's "
        "metadata), so an incremental run cannot filter on it and nothing was fetched. "
        f"Either fix modified_date_field under containers.{container} in {app_name}.yaml ("
        + (f"its date/time fields: {', '.join(dated)}" if dated else "it has no date/time field")
        + "), or run a full run (date=None)"
    )


def _quoted(text: Any) -> str:
    """A label from Knack in double quotes, control characters escaped."""
    return json.dumps(str(text), ensure_ascii=False)


def _plain(text: Any) -> str:
    """A word from Knack (a field type), control characters escaped."""
    return _quoted(text)[1:-1]


def _list_again(client: KnackClient, container: str, scene: str | None,
                filters: dict[str, Any] | None, listing: knack.Listing, pages: _PageWriter,
                result: ContainerSync) -> None:
    """List once more a listing that ended a page or more short of Knack's own count
    (Knack has answered its last page empty): a full run would otherwise confirm each
    stored record it missed with a request of its own (from the app's daily quota), and an
    incremental run would skip them. The records the first listing missed are written as
    its pages were and counted in ``listing``; only what neither listing holds is left for
    ``_delete_gone`` to confirm. One more listing, never more: an incremental run whose
    second listing is short too fails (its ``auto`` state stays)."""
    first, counted, short = listing.count, listing.estimated_records, listing.pages_short

    def take(records: list[dict[str, Any]]) -> None:
        more = [r for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)
                and r["id"] and r["id"] not in listing.ids]
        for r in more:
            listing.ids.add(r["id"])
        listing.count += len(more)
        pages.take(more)

    logger.warning("%s: Knack's listing gave %d of the %d records it counted; listing again",
                   container, first, counted)
    again = client.list_records(container, scene=scene, filters=filters, on_records=take)
    still = again.problem or (f"{again.count} of {again.estimated_records} records"
                              if again.pages_short else "")
    result.notes.append(
        f"Knack's listing of {container} gave {first} of the {counted} records Knack counted "
        f"({short} page{'s' if short > 1 else ''} short): listed it again before "
        + ("confirming any deletion" if result.mode == "full" else "moving the `auto` state")
        + f", which found {listing.count - first} more"
        + (f"; it was short too ({still}), so what neither listed is confirmed record by record"
           if still and result.mode == "full" else "")
    )
    if still and result.mode != "full":
        result.errors.append(
            f"Knack's listing of {container} came back short twice (the second: {still}): "
            "records of the missing pages may not have been fetched, so the `auto` state "
            "stays where it was. Rerun later; if it persists, run a full run (date=None), "
            "which asks Knack for each record a listing misses"
        )


def _scene(cfg: config.ContainerConfig, container: str, metadata: dict[str, Any],
           app_name: str) -> str | None:
    objects = {o["key"] for o in metadata.get("objects", [])}
    if container.startswith("object_"):
        if container not in objects:
            raise UnknownContainerError(
                f"object {container} is not in the app's metadata (objects: "
                f"{', '.join(sorted(objects))}); fix {app_name}.yaml or run upload_metadata"
            )
        return None
    found = schema.view_scene(metadata, container)
    scene = cfg.scene or found
    if scene is None:
        raise ConfigError(
            f"view {container} has no scene: none in {app_name}.yaml and the view is not in "
            f"the app's metadata; add `scene: scene_N` under containers.{container}"
        )
    return scene


def _delete_gone(
    store: Store,
    client: KnackClient,
    cfg: config.ContainerConfig,
    app_name: str,
    container: str,
    scene: str | None,
    known: Mapping[str, str],
    listed: Set[str],
    listed_ids: Sequence[str],
    result: ContainerSync,
    snap: SnapshotSync,
) -> None:
    """Delete the stored records that Knack confirms are gone.

    Knack pages by offset with no snapshot: a record deleted while pages were fetched
    shifts the later pages, so a record missing from the listing may still be in Knack.
    Each one is asked for by id: only a 404 deletes it; one Knack still has is written
    again (the listing missed it), and a listing that missed records is then taken once
    more for new records it may have missed too. Guarded first against mass deletion.
    """
    if result.errors:
        result.notes.append("deletions skipped: the run had errors, so Knack's list is not trusted")
        return
    gone = sorted(known.keys() - listed)  # listed: every id Knack listed (listed_ids: valid)
    if not gone:
        return
    if cfg.refuses_mass_delete(len(gone), len(known), len(listed_ids)):
        result.errors.append(
            f"refusing to delete {len(gone)} of the {len(known)} stored records: Knack returned "
            f"{len(listed_ids)}, and a full run may delete at most "
            f"{cfg.mass_delete_threshold:.0%} of them (mass_delete_threshold). Nothing was "
            "deleted. If Knack is having trouble, rerun later; if Knack really lost them, set "
            f"`allow_mass_delete: true` under containers.{container} in {app_name}.yaml, rerun, "
            "and set it back"
        )
        result.rerun_helps = False
        return
    if listed_ids and not _confirms_present(client, container, scene, listed_ids, result):
        return
    confirmed, present, unsure = _confirm(client, container, scene, gone, result)
    if present:
        result.recovered = sorted(r["id"] for r in present)
        result.notes.append(
            f"{len(present)} stored records missing from Knack's listing are still in Knack "
            "(records deleted while pages were fetched shift the later pages): kept and "
            "refreshed from their own route"
        )
        again = client.list_records(container, scene=scene)  # the listing shifted: once more
        new = [r for r in again.records
               if _has_valid_id(r) and r["id"] not in listed and r["id"] not in known]
        if new:
            result.notes.append(f"listed again: {len(new)} records the first listing missed")
        _write_more(store, container, present + new, known, result, snap)
    if unsure:
        first = next(iter(unsure.items()))
        result.errors.append(
            f"Knack did not confirm that {len(unsure)} stored records are gone (e.g. "
            f"{first[0]}: {first[1]}), so they were kept; rerun later"
        )
    if confirmed:
        snap.mark_stale()
        snap.deleting(confirmed)
        result.deleted = store.delete_records(container, confirmed)
        logger.info("deleted %d records of %s that Knack confirmed gone", len(confirmed),
                    container)


def _confirms_present(client: KnackClient, container: str, scene: str | None,
                      listed: Sequence[str], result: ContainerSync) -> bool:
    """Whether Knack's single-record route finds a record its listing holds (a route that
    answers 404 for everything must never confirm deletions). A listed record may have been
    deleted since, so up to three are asked, the most recently listed first."""
    why = ""
    for rid in dict.fromkeys([listed[-1], listed[len(listed) // 2], listed[0]]):
        result.confirmations += 1
        try:
            if client.get_record(container, rid, scene=scene) is not None:
                return True
            why = f"{rid}: 404"
        except KnackNbError as e:
            why = f"{rid}: {e}"
    result.errors.append(
        f"Knack's route for one record did not find records its listing holds ({why}): it "
        "cannot confirm deletions, so none was made. Rerun later; if it persists, check "
        f"GET .../{container}/records/{{id}} with Knack"
    )
    return False


def _confirm(client: KnackClient, container: str, scene: str | None, gone: list[str],
             result: ContainerSync) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """Ask Knack for each record by id: (confirmed gone, still present, not confirmed)."""
    confirmed: list[str] = []
    present: list[dict[str, Any]] = []
    unsure: dict[str, str] = {}

    def ask(rid: str) -> tuple[str, dict[str, Any] | None, str | None]:
        try:
            return rid, client.get_record(container, rid, scene=scene), None
        except KnackNbError as e:
            return rid, None, str(e)

    with (
        progress_bar(f"confirm deletions {container}", total=len(gone), unit="rec") as bar,
        ThreadPoolExecutor(knack.PAGE_WORKERS, thread_name_prefix="knack-confirm") as pool,
    ):
        for rid, record, error in pool.map(ask, gone):
            result.confirmations += 1
            if error is not None:
                unsure[rid] = error
            elif record is None:
                confirmed.append(rid)
            else:
                present.append(record)
            bar.update(1)
    logger.info("%s: %d of %d records missing from the listing confirmed gone (%d requests)",
                container, len(confirmed), len(gone), len(gone))
    return confirmed, present, unsure


def _write_more(store: Store, container: str, records: list[dict[str, Any]],
                known: Mapping[str, str], result: ContainerSync, snap: SnapshotSync) -> None:
    written = store.put_records(container, records, known_etags=known,
                                before_write=snap.mark_stale, keep_bodies=True)
    result.written += len(written.written)
    result.unchanged += len(written.unchanged)
    result.failed.update(written.failed)
    if written.failed:
        result.errors.append(f"{len(written.failed)} records could not be written to S3")
    snap.add(records, written)


class _PageWriter:
    """Writes each page of Knack's listing to S3 as it arrives (``on_records``), keeping
    only what the rest of the run needs: the ids listed, the first few records (the
    report's sample) and the counts in ``result``."""

    def __init__(self, store: Store, container: str, result: ContainerSync,
                 snap: SnapshotSync, stored: Future[RecordIndex] | None,
                 progress: Callable[[int], Any]) -> None:
        self.store, self.container, self.result, self.snap = store, container, result, snap
        self.stored, self.progress = stored, progress
        self.listed = IdList()  # 12 bytes an id, not a str each
        self.first: list[dict[str, Any]] = []

    def take(self, records: list[dict[str, Any]]) -> None:
        valid = []
        for r in records:
            if _has_valid_id(r):
                valid.append(r)
            else:
                self.result.rejected.append(_describe_record(r))
        # a full run compares with S3's listing: wait for it before the first write
        known = self.stored.result() if self.stored is not None else None
        if known is not None and not self.listed:
            self.snap.use_listing(known)
        written = self.store.put_records(self.container, valid, known_etags=known,
                                         before_write=self.snap.mark_stale, keep_bodies=True)
        self.result.written += len(written.written)
        self.result.unchanged += len(written.unchanged)
        self.result.failed.update(written.failed)
        self.snap.add(valid, written)
        self.listed.extend(r["id"] for r in valid)
        self.first += valid[: SAMPLE_ROWS - len(self.first)]
        self.progress(len(records))


def _finish_snapshot(snap: SnapshotSync, result: ContainerSync) -> None:
    """Write the snapshot of a run that succeeded; a failure to write it fails the run
    (the records are in S3; the snapshot stays marked stale until a rerun writes it)."""
    try:
        done = snap.finish()
    except ForeignRecordError as e:  # a record object holding another record: named
        result.errors.append(f"the snapshot was not written: {e}")
        result.rerun_helps = False
        return
    except (KnackNbError, OSError, ValueError) as e:  # S3; a full disk; pyarrow (ArrowInvalid)
        result.errors.append(f"the snapshot was not written ({e}); every record is in S3, "
                             "and a rerun writes it")
        return
    result.snapshot_url, result.snapshot_rows = done.url, done.rows
    result.notes += done.notes
    result.notes.append(f"snapshot {done.url}: {done.rows} rows ({done.how})")


def _has_valid_id(record: Any) -> bool:
    """A record whose id can name its S3 object (24 hex characters, as Knack's are)."""
    rid = record.get("id") if isinstance(record, dict) else None
    return isinstance(rid, str) and RECORD_ID.match(rid) is not None


def _describe_record(record: Any) -> str:
    if not isinstance(record, dict):
        return f"a {type(record).__name__} instead of a record"
    rid = record.get("id")
    return f"id {rid!r}" if rid is not None else f"a record without id ({len(record)} fields)"


def _sample(records: list[dict[str, Any]], metadata: dict[str, Any], container: str,
            modified_field: str | None) -> Table:
    """A few records as a table: id, modified date and the first fields, by field name."""
    names = schema.field_names(metadata, container)
    keys = [k for k in names if k != modified_field][:4]
    if modified_field:
        keys.insert(0, modified_field)
    columns = ["record id", *(names.get(k, k) for k in keys)]
    rows = [
        {"record id": r["id"], **{names.get(k, k): _short(r.get(k)) for k in keys}}
        for r in records[:SAMPLE_ROWS]
    ]
    return Table(rows, columns)


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    text = escape_surrogates(text)  # a lone surrogate cannot leave the kernel
    return text if len(text) <= width else text[: width - 1] + "…"
