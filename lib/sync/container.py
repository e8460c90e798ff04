"""Knack → S3: the records of one container, the ``knack_container_to_s3`` job.

The run: set up (params, metadata, mode; ``lib.jobs.context``), list the container's records
from Knack page by page while a full run lists what S3 holds, write each page as it
arrives (``pages``), delete on a full run what Knack confirms is gone (``deletions``),
write the container's snapshot, and on success advance the ``auto`` state.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lib import config, schema
from lib.clients import knack
from lib.clients.knack import KnackClient
from lib.clients.s3_records import ForeignRecordError, Strays
from lib.errors import ConfigError, KnackNbError, UnknownContainerError
from lib.ids import RecordIndex
from lib.jobs import context
from lib.progress import progress_bar
from lib.snapshot import SnapshotSync
from lib.sync.deletions import Listed, delete_gone
from lib.sync.pages import PageWriter, list_again, sample
from lib.sync.result import ContainerSync, SyncRun

logger = logging.getLogger(__name__)

SYNC_JOB = "knack_container_to_s3"


def sync_container(*, app_name: str, container: str, env: str, date: Any = None) -> ContainerSync:
    """Records of one container modified on or after ``date`` (all on a full run) → S3.

    A full run also deletes the stored records Knack no longer has (guarded against mass
    deletion). A listing that ends a page or more short of Knack's own count is listed once
    more first (``pages.list_again``). The ``auto`` state advances only when the run
    succeeds.
    """
    run = context.start(
        SYNC_JOB, app_name=app_name, env=env, container=container, date=date, app_id=True
    )
    app_id = run.app_id or ""
    client = KnackClient(app_id=app_id, requests_per_second=run.app.client_requests_per_second)
    result = ContainerSync(
        app_name=app_name, env=run.env, container=container, app_id=app_id, notes=run.notes
    )
    snap: SnapshotSync | None = None
    try:
        metadata = run.load_metadata(fetch=client.get_metadata)
        scene = _scene(_cfg(run), container, metadata, app_name)
        run.resolve_mode()
        filters = _incremental(run, metadata, result)
        snap = SnapshotSync(run.store, container, metadata, full=result.mode == "full")
        sync = SyncRun(run, client, result, snap, scene, filters)
        listing, pages, known = _list(sync)
        _check_listing(sync, listing, pages, metadata)
        if known is not None:
            delete_gone(sync, Listed(known, listing.ids, pages.listed))
        if result.ok:
            _finish_snapshot(snap, result)
        if result.ok:
            run.record_success(fetched=result.fetched)
    finally:
        if snap is not None:
            snap.discard()
        client.close()
        result.requests, result.retries = client.requests, client.retries
        result.seconds = run.elapsed()
    logger.info(
        "%s %s: fetched %d, written %d, unchanged %d, deleted %d, failed %d",
        container,
        result.mode,
        result.fetched,
        result.written,
        result.unchanged,
        len(result.deleted),
        len(result.failed) + len(result.rejected),
    )
    return result


def _cfg(run: context.Run) -> config.ContainerConfig:
    assert run.cfg is not None  # started with a container
    return run.cfg


def _incremental(
    run: context.Run, metadata: dict[str, Any], result: ContainerSync
) -> dict[str, Any] | None:
    """Knack's filter of an incremental run (None: a full run), its mode and dates in
    ``result``. A container without a ``modified_date_field`` has nothing to filter on:
    a full run instead, and a note says so."""
    cfg, container = _cfg(run), result.container
    if run.since is not None and not cfg.modified_date_field:
        run.full_run_instead(
            f"{container} has no modified_date_field in {run.app_name}.yaml: "
            f"ran a full run instead of one since {run.since.isoformat()}"
        )
    if run.since is None:
        return None
    _check_modified_field(metadata, container, cfg.modified_date_field, run.app_name)
    tz = schema.app_timezone(metadata)
    result.mode, result.since = "incremental", run.since
    result.knack_date = knack.knack_date(run.since, tz)
    return knack.modified_since_filter(cfg.modified_date_field, run.since, tz)


def _list(sync: SyncRun) -> tuple[knack.Listing, PageWriter, RecordIndex | None]:
    """List the container from Knack, writing each page as it arrives; a full run lists what
    S3 holds meanwhile (Knack's pace, 8 requests/s, is the slower of the two: an unchanged
    re-run costs the longer of them, not the sum). Memory holds the ids (and the listing's
    ETags), not the records. Answers the listing, its writer and S3's listing (full runs)."""
    container, store = sync.container, sync.store
    strays = Strays()  # objects under the prefix that are not records: left alone
    with ThreadPoolExecutor(1, thread_name_prefix="s3-list") as lister:
        stored = lister.submit(store.list_records, container, strays=strays) if sync.full else None
        with progress_bar(f"sync {container}", unit="rec") as bar:
            pages = PageWriter(sync, stored, bar.update)
            listing = sync.client.list_records(
                container,
                scene=sync.scene,
                filters=sync.filters,
                on_records=pages.take,
                on_estimate=bar.set_total,
            )
            if listing.complete and listing.pages_short:
                list_again(sync, listing, pages)
        known = stored.result() if stored is not None else None
    sync.result.fetched = listing.count
    sync.result.notes += [strays.note()] if strays.note() else []
    return listing, pages, known


def _check_listing(
    sync: SyncRun, listing: knack.Listing, pages: PageWriter, metadata: dict[str, Any]
) -> None:
    """The errors of what was listed and written (a hole in the listing, records without a
    valid id, records S3 refused), and the report's sample."""
    result, container = sync.result, sync.container
    if not listing.complete:
        result.errors.append(
            f"Knack's listing of {container} had a hole ({listing.problem}): the "
            f"{listing.count} records it gave are written, but "
            + (
                "records missing from it are not known to be gone, so none was deleted"
                if sync.full
                else "the records of the missing pages were not "
                "fetched, so the `auto` state stays where it was"
            )
            + (
                ". Rerun later: Knack's empty pages are usually brief"
                if not listing.repeated
                else ". Rerun later; if every run stops at that page, tell Knack support "
                f"that its listing of {container} answers it with records of earlier pages"
            )
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
    result.sample = sample(pages.first, metadata, container, sync.cfg.modified_date_field)
    if result.failed:
        first = next(iter(result.failed.items()))
        result.errors.append(
            f"{len(result.failed)} records could not be written to S3, e.g. {first[0]}: {first[1]}"
        )


def _check_modified_field(
    metadata: dict[str, Any], container: str, key: str | None, app_name: str
) -> None:
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
    dated = [
        f"{k} {_quoted(f.get('name'))}" for k, f in fields.items() if f.get("type") == "date_time"
    ]
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


def _scene(
    cfg: config.ContainerConfig, container: str, metadata: dict[str, Any], app_name: str
) -> str | None:
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
        result.errors.append(
            f"the snapshot was not written ({e}); every record is in S3, and a rerun writes it"
        )
        return
    result.snapshot_url, result.snapshot_rows = done.url, done.rows
    result.notes += done.notes
    result.notes.append(f"snapshot {done.url}: {done.rows} rows ({done.how})")
