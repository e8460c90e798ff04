"""What every publisher shares: the publish run (the jobs' run set-up, the binding plan of
the destination's columns, then the records to publish, read from S3), the result base
(``PublishResult``), the mass-delete guard and the sample table of a report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib import bindings, config, snapshot
from lib.bindings import Destination, Plan
from lib.clients.s3_records import Strays, escape_surrogates
from lib.errors import KnackNbError
from lib.jobs import context
from lib.jobs.result import ContainerResult
from lib.progress import progress_bar
from lib.state import bindings as stored_bindings
from lib.table import Note, Table
from lib.text import md, value_text


class PublishError(KnackNbError):
    """The destination refused records or kept failing; the report says which and what to
    do."""


SHOWN_IDS = 50  # record ids a report lists per count
SAMPLE_COLUMNS = 8  # columns of a sample of published rows (the rest: in the destination)
SAMPLE_WIDTH = 60  # characters of a text value shown in the sample (rich text as its text)


@dataclass(kw_only=True)
class PublishResult(ContainerResult):
    """What a publish did, for the report; a destination's result adds its own counts.
    ``errors`` non-empty means it failed."""

    mode: str = "full"
    since: dt.datetime | None = None
    read: int = 0  # records read from S3
    dropped_fields: dict[str, str] = field(default_factory=dict)  # name -> why
    sample: Table = field(default_factory=lambda: Table([]))
    plan: Plan | None = None  # which field fills which column (lib.bindings)

    ERROR: ClassVar[type[KnackNbError]] = PublishError

    @property
    def destination(self) -> str:
        """Where the records went, in words (for messages)."""
        raise NotImplementedError

    def target(self) -> dict[str, Any]:
        """The summary's ids of the destination (dataset, layer)."""
        raise NotImplementedError

    def counts(self) -> dict[str, int]:
        """The summary's counts of what the publish did to the destination."""
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {
            **self.target(),
            "mode": self.mode,
            "since": self.since.isoformat() if self.since else None,
            "read": self.read,
            **self.counts(),
            "dropped_fields": sorted(self.dropped_fields),
        }

    def failure(self) -> str:
        return f"publishing {self.container} to {self.destination} failed: "

    def describe(self) -> Note:
        """What ran, in a sentence, and the run's notes (for the report)."""
        since = f", records written to S3 since {self.since.isoformat()}" if self.since else ""
        return Note(
            f"**{self.mode} publish** of `{self.container}` to {md(self.destination)}"
            f"{md(since)}" + self.notes_md()
        )

    def outcome(self) -> Table:
        """What the publish did to the destination: a row per count, with the ids of the
        records deleted (and kept) when there are any."""
        ids = {"deleted": getattr(self, "deleted", []), "kept": getattr(self, "kept", [])}
        rows = [{"what": "read from S3", "records": self.read, "ids": None}]
        for name, n in self.counts().items():
            shown = ids.get(name) or []
            text = ", ".join(shown[:SHOWN_IDS]) + ("…" if len(shown) > SHOWN_IDS else "")
            rows.append({"what": name, "records": n, "ids": text or None})
        columns = ["what", "records"] + (["ids"] if any(r["ids"] for r in rows) else [])
        return Table(rows, columns, bars="records")

    def dropped_table(self) -> Table:
        return table(self.dropped_fields, "field", "why")

    def refused_mass_delete(
        self, gone: int, existing: int, stored: int, cfg: config.ContainerConfig, *, what: str
    ) -> bool:
        """Whether the mass-delete guard refuses this full run's deletions (see
        :func:`mass_delete_refusal`); refused, the run fails with why, and a rerun alone does
        not help."""
        refusal = mass_delete_refusal(
            gone,
            existing,
            stored,
            cfg,
            what=what,
            container=self.container,
            app_name=self.app_name,
        )
        if refusal:
            self.errors.append(refusal)
            self.rerun_helps = False
        return refusal is not None

    def bindings_table(self) -> Table:
        """Which field fills which column of the destination (``lib.bindings``): bound,
        renamed (followed), would blank (fails), new (not published), retired."""
        if self.plan is None:
            return Table([], bindings.COLUMNS, caption="The destination was not reached.")
        # one container, one destination: said once, in the caption, not on every row
        shown = [c for c in bindings.COLUMNS if c not in ("container", "destination")]
        rows = [{c: row[c] for c in shown} for row in self.plan.table_rows()]
        return Table(rows, shown, caption=f"{self.container} → {self.plan.destination.what}")


# a summary's keys that name the run (the log line's start says them already)
_NAMES = frozenset({"app_name", "env", "container", "resource_id", "service_id", "layer_id"})


def summary_line(summary: Mapping[str, Any]) -> str:
    """A publish summary as one readable log line: ``mode full · read 25 · created 25 ·
    dropped_fields signature, x`` (no Python dict or list in a report's log); empty values
    left out."""
    return " · ".join(
        f"{key} {', '.join(map(str, value)) if isinstance(value, list | tuple) else value}"
        for key, value in summary.items()
        if key not in _NAMES and value not in (None, "", [], {})
    )


def mass_delete_refusal(
    gone: int,
    existing: int,
    stored: int,
    cfg: config.ContainerConfig,
    *,
    what: str,
    container: str,
    app_name: str,
) -> str | None:
    """Why a full publish must not delete ``gone`` of the destination's ``existing`` rows or
    features (the container's mass-delete guard, as for the sync's deletions), or None.

    It refuses when S3 holds no record at all or more than ``mass_delete_threshold`` of
    the destination would go, unless ``allow_mass_delete``: a store being filled by a first
    sync, or emptied by mistake, never empties a public dataset.
    """
    if not cfg.refuses_mass_delete(gone, existing, stored):
        return None
    held = (
        f"S3 holds {stored} records of {container}"
        if stored
        else (f"S3 holds no records of {container}")
    )
    return (
        f"refusing to delete {'all ' if gone == existing else ''}{gone} of the {existing} "
        f"{what}: {held}, and a full publish may delete at most "
        f"{cfg.mass_delete_threshold:.0%} of them (mass_delete_threshold). Nothing was "
        "deleted. If the container sync has not run, is running or failed, let it finish "
        "and rerun; if the records really are gone, set `allow_mass_delete: true` under "
        f"containers.{container} in {app_name}.yaml, rerun, and set it back"
    )


def sample_table(
    rows: list[dict[str, Any]], *, dates: Iterable[str] = (), tz: dt.tzinfo | None = None
) -> Table:
    """A few published rows as a table of their first SAMPLE_COLUMNS columns (the caption
    says how many there are); ``dates``: columns of epoch milliseconds (ArcGIS dates), shown
    as local times in ``tz``. Text shows as a reader sees it, shortened (rich text's HTML as
    its text: ``lib.text.value_text``). A lone surrogate (valid in JSON, not in UTF-8 or Arrow
    strings) shows as its escape instead of failing the report."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    shown = names[:SAMPLE_COLUMNS]
    dates = set(dates)

    def cell(name: str, value: Any) -> Any:
        if name in dates and isinstance(value, int | float) and not isinstance(value, bool):
            when = dt.datetime.fromtimestamp(value / 1000, dt.UTC).astimezone(tz)
            return when.strftime("%Y-%m-%d %H:%M %Z").strip()
        return (
            value_text(escape_surrogates(value), SAMPLE_WIDTH) if isinstance(value, str) else value
        )

    caption = f"{len(shown)} of {len(names)} columns" if len(names) > len(shown) else None
    return Table(({k: cell(k, row.get(k)) for k in shown} for row in rows), shown, caption=caption)


def table(items: dict[str, str], key: str, value: str) -> Table:
    """A two-column table of ``items``, sorted by key (for reports)."""
    return Table.of_pairs(dict(sorted(items.items())), key, value)


def grouped_table(items: dict[str, str], key: str, value: str) -> Table:
    """``items`` (id → reason) grouped by reason: one row per reason, how many, and their
    ids (in order), so 23 identical reasons are one row, not 23."""
    groups: dict[str, list[str]] = {}
    for item, reason in sorted(items.items()):
        groups.setdefault(reason, []).append(item)
    rows = [
        {value: reason, "records": len(ids), key: ", ".join(ids)}
        for reason, ids in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))
    ]
    return Table(rows, [value, "records", key], bars="records")


@dataclass
class PublishRun(context.Run):
    """One publish of one container: the run set-up's ``Run`` (params, store, metadata,
    mode), and the records it publishes."""

    def identity(self) -> dict[str, Any]:
        """What every publish's result takes from its run: app, env, container, mode, since
        and the set-up's notes (the same list: later notes go to the result)."""
        return {
            "app_name": self.app_name,
            "env": self.env,
            "container": self.container or "",
            "mode": self.mode,
            "since": self.since,
            "notes": self.notes,
        }

    def read_records(self) -> list[dict[str, Any]]:
        """The stored records this run publishes, sorted by id. A full run takes them from
        the container's snapshot, checked record by record against S3's listing (only the
        records the snapshot lacks or holds in another version are read one by one); an
        incremental run reads the records written since ``since``, by S3's listing. Objects
        under the container's prefix that are not records are left out and listed in the
        notes; a record object holding another record fails the run before any write
        (``ForeignRecordError``, naming it)."""
        container = self.container or ""
        strays = Strays()
        if self.since is None:
            records, note = snapshot.read_stored(self.store, container, strays)
            self.notes.append(note)
        else:
            with progress_bar(f"read {container}", unit="rec") as bar:
                records = self.store.read_records(
                    container, since=self.since, progress=bar.update, strays=strays
                )
        if strays.note():
            self.notes.append(strays.note())
        return records

    def bind(
        self, destination: Destination, columns: Mapping[str, str], result: PublishResult
    ) -> Plan | None:
        """The binding plan of the destination's ``columns`` (name → type), from the
        bindings stored by its last successful publish and params (``lib.bindings``), before
        any write. Renamed fields go to the notes and new fields to ``dropped_fields``; a
        column that would go blank (or fields a first binding cannot tell apart) fails the
        run: None, with the errors in ``result`` (nothing written, ``auto`` unmoved)."""
        assert self.metadata is not None and self.container is not None
        stored = stored_bindings.load(self.store, destination)
        fields = bindings.container_fields(self.metadata, self.container)
        result.plan = plan = bindings.plan(
            destination,
            self.container,
            fields,
            columns,
            stored.bindings if stored else {},
            app_name=self.app_name,
        )
        result.notes.extend(plan.renames())
        result.dropped_fields.update(plan.dropped())
        if plan.fails:
            result.errors.extend(plan.failures())
            result.rerun_helps = False
            return None
        return plan

    def succeeded(self, plan: Plan, **info: Any) -> None:
        """Keep the bindings the run published with, then advance the ``auto`` state (with
        ``info``, a destination's own facts about the run): call only when the publish
        succeeded."""
        stored_bindings.save(
            self.store, plan, app_name=self.app_name, env=self.env, started=self.started
        )
        self.record_success(**info)


def start(
    *, app_name: str, container: str, env: str, date: Any, job: str, destination: str
) -> PublishRun:
    """Validate everything a publish needs before any request to the destination: the run
    set-up (``lib.jobs.context``) with the container's ``destination`` settings required,
    the stored metadata (publishing reads S3, never Knack) and the mode."""
    run = context.start(
        job,
        app_name=app_name,
        env=env,
        container=container,
        date=date,
        needs=(destination, "nothing to publish"),
        kind=PublishRun,
    )
    run.load_metadata(missing="run upload_metadata first (publishing reads S3, never Knack)")
    run.resolve_mode()
    return run
