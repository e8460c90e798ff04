"""What the health check finds of one container: S3 read, and one cheap question per service.

- S3: the sync's ``auto`` state (its last success's start), the sync reports written after
  it (listed from that time on: ``StartAfter``; the newest read for its status), one listing
  of the records (their count, the newest write, and how many each destination has not
  been sent yet: written after its last publish), the snapshot's stale marks, the newest
  Socrata backup;
- Knack: ``rows_per_page=1`` for ``total_records`` (and, only when S3 holds fewer, the
  count of records modified since the last sync: the sync's own filter);
- Socrata: ``count(*)``; ArcGIS: a count-only query; and each destination's columns, for
  the binding rule (``knack-nb check``: a column that a publish would refuse to leave blank).

A question that fails leaves its count unknown and says why (``Facts.unknown``): the check
goes on with the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from lib import config, schema
from lib.clients.knack import KnackClient, modified_since_filter
from lib.clients.s3_records import RECORD_NAME
from lib.errors import KnackNbError
from lib.health.rules import Destination, Facts
from lib.reports.entry import FAILED, INCOMPLETE, OK, parse_key, read_entry
from lib.reports.run import REPORTS_PREFIX, report_key
from lib.state import RunStore, is_stale

logger = logging.getLogger(__name__)

SYNC = "knack_container_to_s3"
LOOK_BACK = dt.timedelta(days=7)  # the reports looked at when no success is recorded
RUNNING = dt.timedelta(minutes=10)  # a report with no end newer than this: a run going on
READ_AT_MOST = 3  # sync reports read (newest first) to find the last outcome
DESTINATION_LABELS = {"socrata": "Socrata", "agol": "ArcGIS", "knack": "the other Knack app"}


class Finder:
    """The facts of an app-env's containers, through one store and one Knack client."""

    def __init__(
        self,
        app: config.AppConfig,
        env: str,
        store: RunStore,
        metadata: dict[str, Any] | None,
        now: dt.datetime,
    ) -> None:
        self.app, self.env, self.store, self.metadata, self.now = app, env, store, metadata, now
        self.knack = KnackClient(
            app_id=app.app_id_for(env), requests_per_second=app.client_requests_per_second
        )

    def close(self) -> None:
        self.knack.close()

    def facts(self, container: str) -> Facts:
        cfg = self.app.container(container)
        f = Facts(
            container=container,
            schedule=cfg.schedule,
            mass_delete_threshold=cfg.mass_delete_threshold,
            allow_mass_delete=cfg.allow_mass_delete,
        )
        self._ask("the last sync", f, lambda: self._last_runs(f))
        self._ask("S3's records", f, lambda: self._records(f, cfg))
        self._ask("Knack's count", f, lambda: self._knack(f, cfg))
        if cfg.socrata is not None:
            self._ask("Socrata's count", f, lambda: self._socrata(f, cfg))
        if cfg.agol is not None:
            self._ask("ArcGIS's count", f, lambda: self._agol(f, cfg))
        f.snapshot_stale = is_stale(self.store, container)
        if self.metadata is not None and (cfg.socrata is not None or cfg.agol is not None):
            self._ask("the bindings", f, lambda: self._bindings(f, cfg))
        if cfg.socrata is not None and cfg.socrata.backup_schedule is not None:
            f.backup_schedule = cfg.socrata.backup_schedule
            self._ask("the backups", f, lambda: self._backups(f))
        return f

    def _ask(self, what: str, f: Facts, step: Any) -> None:
        try:
            step()
        except KnackNbError as e:
            logger.warning("%s: %s: %s", f.container, what, e)
            f.unknown.append(f"{what} ({e})")

    # --- S3 ----------------------------------------------------------------------------

    def _last_runs(self, f: Facts) -> None:
        """The last success's start (the ``auto`` state), and the sync runs after it."""
        f.last_success, _ = self.store.resume_point(SYNC, f.container)
        after = f.last_success or self.now - LOOK_BACK
        prefix = f"{REPORTS_PREFIX}/{self.store.prefix}/{SYNC}/"
        start = report_key(
            app_name=self.app.name, env=self.env, notebook=SYNC, container="", now=after
        ).rsplit("_", 1)[0]
        keys = [
            o["Key"]
            for o in self.store.iter_objects(prefix, start_after=start)
            if o["Key"].endswith(f"_{f.container}.ipynb")
        ]
        keys.sort(reverse=True)  # newest first: the names sort by time
        failed = 0
        for i, key in enumerate(keys):
            entry = read_entry(self.store, parse_key(key)) if i < READ_AT_MOST else None
            if entry is None:
                failed += i >= READ_AT_MOST
                continue
            if entry.status == OK:
                f.last_success = max(filter(None, (f.last_success, entry.time)))
                break
            if entry.status == INCOMPLETE and entry.time and self.now - entry.time < RUNNING:
                continue  # going on now
            failed += 1
            if f.last_error is None and entry.status in (FAILED, INCOMPLETE):
                f.last_error = entry.error
        f.failed_since = failed

    def _records(self, f: Facts, cfg: config.ContainerConfig) -> None:
        """One listing: the count, the newest write, what each destination has not had."""
        published = {
            name: self.store.resume_point(job, f.container)[0]
            for name, job in _publishers(cfg).items()
        }
        waiting = dict.fromkeys(published, 0)
        prefix = self.store.container_prefix(f.container)
        count, newest = 0, None
        for obj in self.store.iter_objects(prefix):
            if not RECORD_NAME.match(obj["Key"][len(prefix) :]):
                continue
            count += 1
            written = obj["LastModified"]
            newest = written if newest is None or written > newest else newest
            for name, since in published.items():
                if since is None or written >= since:
                    waiting[name] += 1
        f.s3, f.newest_change = count, newest
        for name in published:
            f.destinations.setdefault(name, Destination(DESTINATION_LABELS.get(name, name)))
            f.destinations[name].written_since_publish = waiting[name]

    def _backups(self, f: Facts) -> None:
        from lib.backups import Target

        found = Target.of(self.app.name, f.container, self.env).backups()
        f.newest_backup = found[-1].taken if found else None

    # --- the services --------------------------------------------------------------------

    def _knack(self, f: Facts, cfg: config.ContainerConfig) -> None:
        scene = self._scene(f.container, cfg)
        f.knack = self.knack.count_records(f.container, scene=scene)
        if (
            f.s3 is not None
            and f.knack > f.s3
            and f.last_success is not None
            and cfg.modified_date_field
            and self.metadata is not None
        ):
            tz = schema.app_timezone(self.metadata)
            changed = modified_since_filter(cfg.modified_date_field, f.last_success, tz)
            f.changed_in_knack = self.knack.count_records(f.container, scene=scene, filters=changed)

    def _scene(self, container: str, cfg: config.ContainerConfig) -> str | None:
        if not container.startswith("view_"):
            return None
        found = schema.view_scene(self.metadata, container) if self.metadata else None
        scene = cfg.scene or found
        if scene is None:
            raise KnackNbError(
                f"view {container} has no scene in {self.app.name}.yaml and no stored "
                "metadata names it: run upload_metadata"
            )
        return scene

    def _socrata(self, f: Facts, cfg: config.ContainerConfig) -> None:
        from lib.backups import count_rows
        from lib.clients.socrata import Client

        assert cfg.socrata is not None
        client = Client()
        try:
            count = count_rows(client, cfg.socrata.resource_id)
        finally:
            client.close()
        d = f.destinations.setdefault("socrata", Destination("Socrata"))
        d.count, d.keeps_rows = count, cfg.socrata.no_replace

    def _bindings(self, f: Facts, cfg: config.ContainerConfig) -> None:
        """The columns a publish would refuse to leave blank (``knack-nb check``'s rule)."""
        from lib.check import container_plans

        assert self.metadata is not None
        for plan in container_plans(self.store, self.metadata, self.app.name, f.container, cfg):
            f.would_blank += plan.failures()

    def _agol(self, f: Facts, cfg: config.ContainerConfig) -> None:
        from lib.clients.agol import Layer  # a heavy import: only for a container with agol

        assert cfg.agol is not None
        layer = Layer(service_id=cfg.agol.service_id, layer_id=cfg.agol.layer_id)
        d = f.destinations.setdefault("agol", Destination("ArcGIS"))
        d.count, d.skips_records = layer.count(), cfg.agol.location_field is not None


def _publishers(cfg: config.ContainerConfig) -> dict[str, str]:
    """Each destination the container configures → its publishing job's name."""
    from lib.jobs import registry

    return {
        key: job.name
        for key, job in registry.destinations().items()
        if getattr(cfg, key, None) is not None
    }
