"""S3 → an object of another Knack app (the destination app: another params file, its own
app id and its own key, ``KNACK_API_KEY_<APP>``), through a field map and a match field.

The source records are read from S3 (the snapshot first, like every publisher), never from
the source Knack app. The destination is read once: its metadata (the mapped fields, their
types, its timezone) and its object listed, paged, matched on ``match_field`` (the
destination field that holds the source record id). Then only what differs is written
(``lib.publish.knack_plan``): the missing records created, the changed ones updated (values
compared after conversion to what Knack stores, ``lib.publish.knack_values``, so an
unchanged record is never written), and on a full run with ``delete: true`` the records
whose source is gone deleted, under the mass-delete guard.

Before any write: every mapped source field must be a field of the container and every
destination field (and the match field) a field of the destination object, of a type the
conversion knows; the run's requests (those made reading, plus one per write) must fit
``max_requests_per_run``; the destination's listing must be complete (a record missed
would be created twice). A value Knack refuses (400) fails that record alone, by id, with
Knack's message; a run with failed records deletes nothing. Writes are paced under the
destination app's ``requests_per_second`` and retried on 429 and 5xx without applying any
twice (``lib.clients.knack_writes``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lib import config
from lib.clients.knack_writes import BudgetSpent, KnackWriter, WriteRefused
from lib.errors import KnackAPIError, MissingCredentialError
from lib.progress import progress_bar
from lib.publish import register
from lib.publish import run as publish_run
from lib.publish.knack_plan import (
    Writes,
    check_fields,
    connection_maps,
    object_fields,
    plan_writes,
)
from lib.publish.run import PublishResult, sample_table, table
from lib.table import Note, Table
from lib.text import md

logger = logging.getLogger(__name__)

JOB = "knack_container_to_knack"
SAMPLE_ROWS = 5


@dataclass(kw_only=True)
class KnackPublish(PublishResult):
    destination_app: str
    object: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)  # destination record ids
    kept: list[str] = field(default_factory=list)  # sources gone, kept (delete: false)
    failed: dict[str, str] = field(default_factory=dict)  # source record id -> why
    planned: int = 0  # requests the run needed: reading, plus one per write

    @property
    def destination(self) -> str:
        return f"Knack app {self.destination_app} object {self.object}"

    def target(self) -> dict[str, Any]:
        return {"destination_app": self.destination_app, "object": self.object}

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": len(self.deleted),
            "kept": len(self.kept),
            "failed": len(self.failed),
        }

    def failed_table(self) -> Table:
        return table(self.failed, "record id", "why it was not written")

    def requests_line(self) -> Note:
        """The requests used against the destination app's daily quota, for the report."""
        return Note(
            f"**{self.requests}** requests to Knack app {md(self.destination_app)} "
            f"({self.retries} retries; {self.planned} planned before writing) count against "
            "its daily API quota"
        )


@register("knack")
def publish(*, app_name: str, container: str, env: str, date: Any = None) -> KnackPublish:
    run = publish_run.start(
        app_name=app_name, container=container, env=env, date=date, job=JOB, destination="knack"
    )
    kc = run.cfg.knack
    assert kc is not None  # start() checked it
    target = config.load_app(kc.app_name)
    key = config.knack_api_key_of(kc.app_name)
    if not key:
        raise MissingCredentialError(
            config.knack_api_key_variable(kc.app_name),
            purpose=f"writing to Knack app {kc.app_name} needs its REST API key",
        )
    result = KnackPublish(**run.identity(), destination_app=kc.app_name, object=kc.object)
    writer = KnackWriter(
        app_id=target.app_id_for(env),
        api_key=key,
        requests_per_second=target.client_requests_per_second,
    )
    writer.budget = kc.max_requests_per_run
    try:
        _publish(run, kc, writer, result)
    except (BudgetSpent, KnackAPIError) as e:
        result.errors.append(str(e))
    finally:
        writer.close()
        result.requests, result.retries = writer.requests, writer.retries
        result.seconds = run.elapsed()
    logger.info(
        "%s → %s/%s: %s",
        container,
        kc.app_name,
        kc.object,
        publish_run.summary_line(result.summary()),
    )
    return result


def _sample(writes: Writes, fields: dict[str, dict[str, Any]]) -> Table:
    """The first records created, their columns headed by the destination field's label and
    key (``Name (field_19)``), as a reader of the destination app knows them."""
    heads = {key: f"{d.get('name') or key} ({key})" for key, d in fields.items()}
    bodies = [body for _, body in writes.creates[:SAMPLE_ROWS]]
    return sample_table([{heads.get(k, k): v for k, v in body.items()} for body in bodies])


def _publish(
    run: publish_run.PublishRun, kc: config.KnackConfig, writer: KnackWriter, result: KnackPublish
) -> None:
    assert run.metadata is not None and run.container is not None
    destination = writer.get_metadata()
    mappings, problems = check_fields(run.metadata, run.container, destination, kc)
    if not problems:
        maps, problems = connection_maps(writer, run.app, kc, mappings)
    if problems:
        result.errors.extend(problems)
        result.rerun_helps = False
        return
    for m in mappings:
        m.converter.connected = maps.get(m.target, {})
    records = run.read_records()
    result.read = len(records)
    listing = writer.list_records(kc.object)
    if not listing.complete:
        result.errors.append(
            f"the listing of {kc.object} in {kc.app_name} was incomplete ({listing.problem}): "
            "nothing was written (a record missed would be created twice)"
        )
        return
    writes = plan_writes(records, listing.records, mappings, kc, result)
    result.unchanged = writes.unchanged
    result.sample = _sample(writes, object_fields(destination, kc.object) or {})
    _deletions(run, kc, writes, len(records), result)
    result.planned = writer.requests + writes.count
    if result.planned > kc.max_requests_per_run:
        result.errors.append(
            f"this run needs {result.planned} requests to {kc.app_name} ({writer.requests} "
            f"made reading, {writes.count} writes), more than max_requests_per_run "
            f"({kc.max_requests_per_run}): nothing was written. Raise max_requests_per_run "
            f"under containers.{run.container}.knack in {run.app_name}.yaml (Knack's daily "
            "quota allowing), or publish incrementally"
        )
        result.rerun_helps = False
        return
    _write(writer, kc, writes, result)
    if result.failed:
        first = list(result.failed.items())[:20]
        result.errors.append(
            f"{len(result.failed)} records were not written (Knack's message, or why the "
            "value does not fit): "
            + "; ".join(f"{rid}: {why}" for rid, why in first)
            + ". Fix those records (or the destination fields) first"
        )
        result.rerun_helps = False
    if result.ok:
        run.record_success()


def _deletions(
    run: publish_run.PublishRun,
    kc: config.KnackConfig,
    writes: Writes,
    stored: int,
    result: KnackPublish,
) -> None:
    """Which destination records a full run deletes (``delete: true``, no failed record,
    under the mass-delete guard); the others are kept and said so."""
    gone = writes.gone
    writes.deletes = []
    if result.mode != "full" or not gone:
        return
    if not kc.delete:
        result.kept = gone
        result.notes.append(
            f"delete: false: kept {len(gone)} records of {kc.object} whose source is gone"
        )
        return
    if result.failed:
        result.notes.append(
            "no record was deleted: a full run deletes once every record is written"
        )
        return
    assert run.cfg is not None
    if not result.refused_mass_delete(
        len(gone), writes.matched, stored, run.cfg, what=f"records of {kc.object} in {kc.app_name}"
    ):
        writes.deletes = gone


def _write(
    writer: KnackWriter, kc: config.KnackConfig, writes: Writes, result: KnackPublish
) -> None:
    """Create, update, then delete, one request each; a refused record fails alone."""
    with progress_bar(f"write {kc.object}", total=writes.count, unit="rec") as bar:
        for rid, body in writes.creates:
            try:
                writer.create(kc.object, body, match_field=kc.match_field, match_value=rid)
                result.created += 1
            except WriteRefused as e:
                result.failed[rid] = str(e)
            bar.update(1)
        for rid, target_id, body in writes.updates:
            try:
                writer.update(kc.object, target_id, body)
                result.updated += 1
            except WriteRefused as e:
                result.failed[rid] = str(e)
            bar.update(1)
        if result.failed:
            writes.deletes = []
        for target_id in writes.deletes:
            writer.delete(kc.object, target_id)
            result.deleted.append(target_id)
            bar.update(1)
