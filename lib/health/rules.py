"""What a container's facts mean: ok, warn or fail, and why (pure: the clock is given).

A container **fails** when

- it was never synced (no successful ``knack_container_to_s3`` run recorded);
- its last successful sync is older than its schedule allows (**stale**): it started before
  the tick before the schedule's latest one, so a whole tick passed with no success;
- the sync runs since its last success failed (**failing**);
- S3 holds fewer records than Knack counts, by more than the records changed in Knack since
  the last sync (which the next sync takes);
- Socrata holds fewer rows, or ArcGIS fewer features, than S3 holds records, by more than
  the records written to S3 since that destination's last publish (not for an ArcGIS layer
  with a ``location_field``: it has no feature for a record without coordinates);
- a count (Knack, S3, Socrata, ArcGIS) fell by more than the container's
  ``mass_delete_threshold`` since the last check (a warning with ``allow_mass_delete``);
- a destination's column would go blank: its bound field is gone or retyped in the stored
  metadata (``knack-nb check``; the next publish fails before writing).

It **warns** when S3 holds more records than Knack (deleted in Knack: the next full run
removes them), a destination holds more than S3 (the next full publish removes them; none
with Socrata's ``no_replace``), the snapshot is marked stale, a service could not be
asked, or a Socrata backup is missing or older than its schedule allows.

No change in Knack for days is no problem: "no change for 9 days, last sync 10 min ago"
is healthy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from croniter import croniter

from lib.dates import duration

OK, WARN, FAIL = "ok", "warn", "fail"
UNCHECKED_SCHEDULES = {"@once", "@continuous"}  # and None: manual runs only


@dataclass
class Facts:
    """What was found of one container (None: not known, or not configured)."""

    container: str
    schedule: str | None = "@hourly"
    mass_delete_threshold: float = 0.5
    allow_mass_delete: bool = False
    last_success: dt.datetime | None = None  # the last successful sync's start
    failed_since: int = 0  # sync attempts that failed since the last success
    last_error: str | None = None  # the newest failed attempt's error
    s3: int | None = None  # records stored
    newest_change: dt.datetime | None = None  # the newest record write in S3
    knack: int | None = None  # Knack's total_records
    changed_in_knack: int | None = None  # records modified in Knack since the last sync
    destinations: dict[str, Destination] = field(default_factory=dict)
    snapshot_stale: bool = False
    backup_schedule: str | None = None  # set when the container's Socrata dataset is backed up
    newest_backup: dt.datetime | None = None
    previous: dict[str, int] = field(default_factory=dict)  # the counts of the last check
    previous_at: dt.datetime | None = None
    unknown: list[str] = field(default_factory=list)  # what could not be asked, and why
    would_blank: list[str] = field(default_factory=list)  # the binding rule's refusals

    def counts(self) -> dict[str, int]:
        """The counts to keep for the next check's drop test."""
        found = {"knack": self.knack, "s3": self.s3}
        # a destination without a count (another Knack app, params key "knack") never
        # stands in for Knack's own count
        found.update((n, d.count) for n, d in self.destinations.items() if d.count is not None)
        return {k: v for k, v in found.items() if v is not None}


@dataclass
class Destination:
    """A destination's count and what S3 wrote since its last publish."""

    label: str  # "Socrata", "ArcGIS"
    count: int | None = None
    written_since_publish: int | None = None  # records S3 wrote after the last publish
    keeps_rows: bool = False  # Socrata's no_replace: rows of deleted records stay
    skips_records: bool = False  # an ArcGIS layer with a location_field: no coordinates, no feature


@dataclass
class Health:
    """One container's verdict."""

    container: str
    status: str
    problems: list[str]
    line: str  # "no change for 9 days, last sync 10 min ago, ok"

    def summary(self) -> dict[str, object]:
        return {"status": self.status, "problems": list(self.problems)}


def judge(f: Facts, now: dt.datetime) -> Health:
    fails: list[str] = []
    warns: list[str] = []
    _freshness(f, now, fails)
    _knack_vs_s3(f, fails, warns)
    for name, d in f.destinations.items():
        _destination_vs_s3(f, d, fails, warns, name)
    _drops(f, now, fails, warns)
    fails += [f"would blank: {why}" for why in f.would_blank]
    if f.snapshot_stale:
        warns.append(
            "the snapshot is marked stale (a sync is running, failed or overlapped another): "
            "the next sync rebuilds it"
        )
    _backup(f, now, warns)
    warns += [f"not checked: {why}" for why in f.unknown]
    status = FAIL if fails else WARN if warns else OK
    return Health(f.container, status, fails + warns, _line(f, now, status))


def _freshness(f: Facts, now: dt.datetime, fails: list[str]) -> None:
    if f.last_success is None:
        what = "never synced" if not f.s3 else "no successful sync recorded"
        fails.append(f"{what}: run knack_container_to_s3 for {f.container}")
    else:
        due = due_since(f.schedule, now)
        if due is not None and f.last_success < due:
            fails.append(
                f"stale: last successful sync {ago(f.last_success, now)}; its schedule "
                f"({f.schedule}) wants one since {due:%Y-%m-%d %H:%M} UTC"
            )
    if f.failed_since:
        runs = f"{f.failed_since} sync run" + ("s" if f.failed_since > 1 else "")
        since = "since the last success" if f.last_success else "recorded"
        fails.append(f"failing: {runs} {since} failed; the newest: {f.last_error or 'unknown'}")


def _knack_vs_s3(f: Facts, fails: list[str], warns: list[str]) -> None:
    if f.knack is None or f.s3 is None:
        return
    missing = f.knack - f.s3
    if missing > 0 and missing > (f.changed_in_knack or 0):
        fails.append(
            f"mismatch: S3 holds {f.s3:,} records, Knack counts {f.knack:,}: {missing:,} "
            "missing from S3 (a full run of knack_container_to_s3 takes them again)"
        )
    elif missing < 0:
        warns.append(
            f"S3 holds {-missing:,} records more than Knack counts ({f.s3:,} vs {f.knack:,}): "
            "deleted in Knack; the next full run removes them"
        )


def _destination_vs_s3(
    f: Facts, d: Destination, fails: list[str], warns: list[str], name: str
) -> None:
    if d.count is None or f.s3 is None:
        return
    missing = f.s3 - d.count
    things = "rows" if name == "socrata" else "features"
    if missing > 0 and not d.skips_records and missing > (d.written_since_publish or 0):
        fails.append(
            f"mismatch: {d.label} holds {d.count:,} {things}, S3 {f.s3:,} records: "
            f"{missing:,} missing from {d.label} (a full publish sends them again)"
        )
    elif missing < 0 and not d.keeps_rows:
        warns.append(
            f"{d.label} holds {-missing:,} {things} more than S3 has records "
            f"({d.count:,} vs {f.s3:,}): the next full publish removes them"
        )


def _drops(f: Facts, now: dt.datetime, fails: list[str], warns: list[str]) -> None:
    labels = {"knack": "Knack's count", "s3": "S3's records"}
    labels.update(
        (name, f"{d.label}'s count") for name, d in f.destinations.items() if d.count is not None
    )
    since = f" ({ago(f.previous_at, now)})" if f.previous_at else ""
    for name, now_count in f.counts().items():
        before = f.previous.get(name)
        if not before or now_count >= before:
            continue
        share = (before - now_count) / before
        if share > f.mass_delete_threshold:
            text = (
                f"drop: {labels.get(name, name)} fell from {before:,} to {now_count:,} since "
                f"the last check{since}: {share:.0%}, more than mass_delete_threshold "
                f"{f.mass_delete_threshold:.0%}"
            )
            (warns if f.allow_mass_delete else fails).append(text)


def _backup(f: Facts, now: dt.datetime, warns: list[str]) -> None:
    if f.backup_schedule is None:
        return
    if f.newest_backup is None:
        warns.append("no Socrata backup yet (backup_socrata)")
        return
    due = due_since(f.backup_schedule, now)
    if due is not None and f.newest_backup < due:
        warns.append(
            f"the newest Socrata backup is {duration(now - f.newest_backup)} old; its "
            f"schedule ({f.backup_schedule}) wants one since {due:%Y-%m-%d %H:%M} UTC"
        )


def due_since(schedule: str | None, now: dt.datetime) -> dt.datetime | None:
    """The time a success must have started at or after: the tick before the schedule's
    latest one (the latest one's run may still be going). None: not checked (no schedule,
    or one that is not a cron expression or preset)."""
    if schedule is None or schedule in UNCHECKED_SCHEDULES:
        return None
    try:
        ticks = croniter(schedule, now.astimezone(dt.UTC) + dt.timedelta(seconds=1))
        ticks.get_prev(dt.datetime)
        return ticks.get_prev(dt.datetime).astimezone(dt.UTC)
    except (ValueError, KeyError):
        return None


def ago(when: dt.datetime | None, now: dt.datetime) -> str:
    return "never" if when is None else f"{duration(now - when)} ago"


def _line(f: Facts, now: dt.datetime, status: str) -> str:
    """What a person reads first: "no change for 9 days, last sync 10 min ago, ok"."""
    parts = []
    if f.newest_change is not None:
        parts.append(f"no change for {duration(now - f.newest_change)}")
    parts.append(f"last sync {ago(f.last_success, now)}")
    return ", ".join(parts + [status])
