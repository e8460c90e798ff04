"""Knack → S3: the app's metadata (and, later, container records)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib import config, dates, knack, schema
from lib.errors import ConfigError, KnackNbError, UnknownContainerError
from lib.knack import KnackClient
from lib.progress import progress_bar
from lib.store import RECORD_ID, Store, dumps_stable

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
    def objects(self) -> pd.DataFrame:
        return schema.objects_table(self.metadata)

    @property
    def views(self) -> pd.DataFrame:
        return schema.views_table(self.metadata)

    @property
    def changes_table(self) -> pd.DataFrame:
        return schema.changes_table(self.changes)

    @property
    def needs_full_run(self) -> list[str]:
        return schema.containers_needing_full_run(self.changes, self.metadata)

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "app_id": self.app_id,
            "s3_url": self.url,
            "objects": len(self.metadata.get("objects", [])),
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

    client = KnackClient(app_id=app_id)
    try:
        metadata = client.get_metadata()
    finally:
        client.close()
    logger.info(
        "fetched metadata of %s (%s): %d objects",
        metadata.get("name"), app_id, len(metadata.get("objects", [])),
    )

    previous = store.get_json(key)
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
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    sample: pd.DataFrame = field(default_factory=pd.DataFrame)

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
            "errors": len(self.errors),
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
            "records_per_second": round(self.fetched / self.seconds, 1) if self.seconds else 0.0,
        }

    def counts(self) -> pd.DataFrame:
        """The record counts as a one-row-per-outcome table (for a plot)."""
        return pd.DataFrame(
            {
                "records": [
                    self.fetched, self.written, self.unchanged, len(self.deleted),
                    len(self.failed) + len(self.rejected),
                ]
            },
            index=["fetched", "written", "unchanged", "deleted", "failed"],
        )

    def raise_for_errors(self) -> None:
        if self.errors:
            raise SyncError(
                f"sync of {self.container} failed: " + " | ".join(self.errors)
                + " (nothing was lost; a rerun is safe and completes the work)"
            )


def sync_container(
    *, app_name: str, container: str, env: str, date: Any = None
) -> ContainerSync:
    """Records of one container modified on or after ``date`` (all on a full run) → S3.

    A full run also deletes the stored records Knack no longer has (guarded against mass
    deletion). The ``auto`` state advances only when the run succeeds.
    """
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    cfg = app.container(container)
    app_id = app.app_id_for(env)
    since = dates.parse_date(date)  # fail on a bad date before any request
    store = Store(app_name=app_name, env=env)
    client = KnackClient(app_id=app_id, requests_per_second=app.requests_per_second)
    result = ContainerSync(app_name, env, container, app_id, mode="full")
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
            tz = knack.app_timezone(metadata)
            result.mode, result.since = "incremental", since
            result.knack_date = dates.knack_date(since, tz)
            filters = dates.modified_since_filter(cfg.modified_date_field, since, tz)

        with progress_bar(f"fetch {container}", unit="rec") as bar:
            records = client.get_records(container, scene=scene, filters=filters,
                                         on_page=bar.update)
        result.fetched = len(records)
        valid, bad = [], []
        for r in records:
            ok = isinstance(r, dict) and isinstance(r.get("id"), str) and RECORD_ID.match(r["id"])
            (valid if ok else bad).append(r if ok else _describe_record(r))
        if bad:
            result.rejected = bad
            result.errors.append(
                f"{len(bad)} records have no valid id (24 hex characters) and were not "
                f"written: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
            )
        result.sample = _sample(valid, metadata, container, cfg.modified_date_field)

        known = store.list_records(container) if result.mode == "full" else None
        with progress_bar(f"write {container}", total=len(valid), unit="rec") as bar:
            written = store.put_records(container, valid, known_etags=known, progress=bar.update)
        result.written, result.unchanged = len(written.written), len(written.unchanged)
        result.failed = written.failed
        if written.failed:
            first = next(iter(written.failed.items()))
            result.errors.append(
                f"{len(written.failed)} records could not be written to S3, e.g. {first[0]}: "
                f"{first[1]}"
            )
        if known is not None:
            _delete_gone(store, cfg, app_name, container, known, valid, result)
        if result.ok:
            store.record_success(SYNC_JOB, container, started_at, mode=result.mode,
                                 fetched=result.fetched)
    finally:
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
    cfg: config.ContainerConfig,
    app_name: str,
    container: str,
    known: dict[str, str],
    valid: list[dict[str, Any]],
    result: ContainerSync,
) -> None:
    if result.errors:
        result.notes.append("deletions skipped: the run had errors, so Knack's list is not trusted")
        return
    gone = sorted(known.keys() - {r["id"] for r in valid})
    if not gone:
        return
    too_many = not valid or len(gone) > cfg.mass_delete_threshold * len(known)
    if too_many and not cfg.allow_mass_delete:
        result.errors.append(
            f"refusing to delete {len(gone)} of the {len(known)} stored records: Knack returned "
            f"{len(valid)}, and a full run may delete at most "
            f"{cfg.mass_delete_threshold:.0%} of them (mass_delete_threshold). If Knack really "
            f"lost them, set `allow_mass_delete: true` under containers.{container} in "
            f"{app_name}.yaml and rerun"
        )
        return
    result.deleted = store.delete_records(container, gone)
    logger.info("deleted %d records of %s that Knack no longer has", len(gone), container)


def _describe_record(record: Any) -> str:
    if not isinstance(record, dict):
        return f"a {type(record).__name__} instead of a record"
    rid = record.get("id")
    return f"id {rid!r}" if rid is not None else f"a record without id ({len(record)} fields)"


def _sample(records: list[dict[str, Any]], metadata: dict[str, Any], container: str,
            modified_field: str | None) -> pd.DataFrame:
    """A few records as a table: id, modified date and the first fields, by field name."""
    names = schema.field_names(metadata, container)
    keys = [k for k in names if k != modified_field][:4]
    if modified_field:
        keys.insert(0, modified_field)
    rows = [
        {"record id": r["id"], **{names.get(k, k): _short(r.get(k)) for k in keys}}
        for r in records[:SAMPLE_ROWS]
    ]
    return pd.DataFrame(rows)


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
