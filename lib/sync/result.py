"""What a container sync works with (``SyncRun``) and what it did (``ContainerSync``, the
report's result)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib import config
from lib.clients.knack import KnackClient
from lib.errors import KnackNbError
from lib.jobs.context import Run
from lib.jobs.result import ContainerResult
from lib.snapshot import SnapshotSync
from lib.state import RunStore
from lib.table import Note, Table
from lib.text import md

SHOWN_ROWS = 50  # records a report lists per kind of problem (deleted, failed, rejected)


class SyncError(KnackNbError):
    """A container sync that did part of its work and must be rerun (the report says why)."""


@dataclass(kw_only=True)
class ContainerSync(ContainerResult):
    """What ``sync_container`` did, for the report. ``errors`` non-empty means it failed."""

    app_id: str
    mode: str = "full"  # or "incremental"
    since: dt.datetime | None = None  # records modified on or after this (UTC) ...
    knack_date: str | None = None  # ... i.e. on or after this calendar date in the app's zone
    fetched: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    # a full run deletes a stored record only when Knack's own route for it answers 404
    confirmations: int = 0  # single-record requests made to confirm deletions
    recovered: list[str] = field(default_factory=list)  # missing from the listing, in Knack
    sample: Table = field(default_factory=lambda: Table([]))
    snapshot_url: str = ""  # written when the run succeeded
    snapshot_rows: int = 0

    ERROR: ClassVar[type[KnackNbError]] = SyncError
    KEPT: ClassVar[str | None] = "nothing was lost"

    def details(self) -> dict[str, Any]:
        return {
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
        }

    def summary(self) -> dict[str, Any]:
        rate = round(self.fetched / self.seconds, 1) if self.seconds else 0.0
        return {**super().summary(), "records_per_second": rate}

    def failure(self) -> str:
        return f"sync of {self.container} failed: "

    def describe(self) -> Note:
        """What ran, in a sentence, and the run's notes (for the report)."""
        since = (
            f", records modified on or after {self.knack_date} (app time; `date` = "
            f"{self.since.isoformat()})"
            if self.since
            else ""
        )
        return Note(
            f"**{self.mode} run** of `{self.container}` ({md(self.app_name)}-{self.env})"
            f"{since}" + self.notes_md()
        )

    def problems(self) -> Table:
        """The records deleted (no longer in Knack), not written and rejected, one a row."""
        rows = [
            {"record": rid, "what": "deleted", "why": "no longer in Knack"}
            for rid in self.deleted[:SHOWN_ROWS]
        ]
        rows += [
            {"record": rid, "what": "failed", "why": why}
            for rid, why in list(self.failed.items())[:SHOWN_ROWS]
        ]
        rows += [
            {"record": bad, "what": "rejected", "why": "no valid id"}
            for bad in self.rejected[:SHOWN_ROWS]
        ]
        more = len(self.deleted) + len(self.failed) + len(self.rejected) - len(rows)
        caption = (
            f"deleted {len(self.deleted)}, failed {len(self.failed)}, rejected "
            f"{len(self.rejected)}" + (f" ({more} more not listed)" if more > 0 else "")
        )
        return Table(rows, ["record", "what", "why"], caption=caption)

    def counts(self) -> Table:
        """The record counts, one row per outcome, each with a bar (none when all are 0)."""
        return Table.of_pairs(
            {
                "fetched": self.fetched,
                "written": self.written,
                "unchanged": self.unchanged,
                "deleted": len(self.deleted),
                "failed": len(self.failed) + len(self.rejected),
            },
            "outcome",
            "records",
            caption=f"{self.container}: records",
            bars="records",
        )


@dataclass
class SyncRun:
    """What every step of one container sync works with: the run (params, store, mode),
    the Knack client, the container's scene and filter, the snapshot being built, and the
    result it counts into."""

    run: Run
    client: KnackClient
    result: ContainerSync
    snap: SnapshotSync
    scene: str | None = None  # a view's scene (None: an object)
    filters: dict[str, Any] | None = None  # Knack's filter of an incremental run

    @property
    def container(self) -> str:
        return self.result.container

    @property
    def store(self) -> RunStore:
        return self.run.store

    @property
    def cfg(self) -> config.ContainerConfig:
        assert self.run.cfg is not None  # a sync always has a container
        return self.run.cfg

    @property
    def full(self) -> bool:
        return self.result.mode == "full"
