"""Knack → S3: the app's metadata (its schema), the ``upload_metadata`` job.

The metadata is fetched from Knack on every run and written to
``s3://<bucket>/<app>-<env>/<app-id>.json`` only when it changed; the report lists the
objects, views, record counts and the fields added, removed, renamed or retyped since the
last upload (and so the containers whose sync needs a full run). When fields changed, it
also shows what that does to the destinations of the containers it touches, by the binding
rule (``lib.bindings``): columns renamed (followed), that would go blank (their publish will
fail), new fields, as the last publish of each destination left its columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib import schema
from lib.clients.knack import KnackClient
from lib.clients.s3_records import dumps_stable
from lib.errors import CorruptObjectError, StoreError
from lib.jobs import context
from lib.jobs.result import JobResult
from lib.table import Note, Table
from lib.text import md

logger = logging.getLogger(__name__)

JOB = "upload_metadata"


@dataclass(kw_only=True)
class MetadataUpload(JobResult):
    """What ``upload_metadata`` did, for the report."""

    app_id: str
    url: str
    metadata: dict[str, Any]
    previous_found: bool
    written: bool
    changes: list[schema.SchemaChange] = field(default_factory=list)
    bindings: Table | None = None  # the destinations the changes touch (lib.bindings)

    STATS: ClassVar[tuple[str, ...]] = ("seconds",)

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
        return Note(
            f"**{md(schema.app_description(self.metadata))}** (`{self.app_id}`) → "
            f"`{self.url}`: "
            + ("written." if self.written else "unchanged since the last upload, nothing written.")
        )

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
            table.caption = (
                "These containers changed and need a full run (date=None) of "
                "their sync: " + ", ".join(self.needs_full_run)
            )
        return table

    def destinations(self) -> Table | Note:
        """What the schema change does to the destinations of the containers it touches:
        each column bound, renamed (followed), that would go blank (its publish fails),
        new fields, retired columns, as the last successful publish left the destination."""
        if self.bindings is None:
            return Note(
                "No field changed since the last upload: the destinations' columns "
                "are filled as they were."
            )
        return self.bindings

    @property
    def needs_full_run(self) -> list[str]:
        return schema.containers_needing_full_run(self.changes, self.metadata)

    def details(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "s3_url": self.url,
            "objects": len(self.metadata.get("objects") or []),
            "views": int(len(self.views)),
            "fetched": 1,
            "written": int(self.written),
            "unchanged": int(not self.written),
            "schema_changes": len(self.changes),
            "needs_full_run": self.needs_full_run,
        }


def upload_metadata(*, app_name: str, env: str) -> MetadataUpload:
    """Fetch the app's metadata from Knack and keep it in S3 (only when it changed)."""
    run = context.start(JOB, app_name=app_name, env=env, app_id=True)
    app_id, store = run.app_id or "", run.store
    key = store.metadata_key(app_id)

    client = KnackClient(app_id=app_id, requests_per_second=run.app.client_requests_per_second)
    try:
        metadata = client.get_metadata()
    finally:
        client.close()
    logger.info(
        "fetched metadata of %s (%s): %d objects",
        metadata.get("name"),
        app_id,
        len(metadata.get("objects") or []),
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
    touched = schema.containers_needing_full_run(changes, metadata)
    return MetadataUpload(
        bindings=_destinations(run, metadata, touched) if changes else None,
        app_name=app_name,
        env=run.env,
        app_id=app_id,
        url=store.url(key),
        metadata=metadata,
        previous_found=previous is not None,
        written=written,
        changes=changes,
        seconds=run.elapsed(),
    )


def _destinations(run: context.Run, metadata: dict[str, Any], touched: list[str]) -> Table:
    """The plans (``lib.bindings``) of the destinations of the configured containers in
    ``touched``, from the columns and bindings their last successful publish stored (no
    request to a destination: ``knack-nb check`` reads them)."""
    from lib import bindings  # knackpy (the column-name rule): only when fields changed
    from lib.state import bindings as stored_bindings

    plans, unknown = [], []
    for name in touched:
        cfg = run.app.containers.get(name)
        found_in = bindings.destinations(cfg, app_name=run.app_name, container=name) if cfg else []
        for destination in found_in:
            try:
                found = stored_bindings.load(run.store, destination)
            except StoreError as e:
                unknown.append((name, destination.what, f"bindings unreadable: {e}"))
                continue
            if found is None:
                unknown.append((name, destination.what, bindings.NOT_PUBLISHED))
                continue
            fields = bindings.container_fields(metadata, name)
            plans.append(
                bindings.plan(
                    destination, name, fields, found.columns, found.bindings, app_name=run.app_name
                )
            )
    table = bindings.table(plans)
    table.rows += [
        {"container": c, "destination": d, "status": s, "note": "knack-nb check reads it"}
        for c, d, s in unknown
    ]
    table.caption = (
        "The destinations of the containers whose fields changed, as their last publish "
        f"left them (`knack-nb check -a {run.app_name} -e {run.env}` reads the destinations "
        "themselves). A column that would blank fails that container's next publish."
    )
    return table
