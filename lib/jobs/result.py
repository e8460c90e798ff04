"""What every job's result holds and does: the run's identity, notes, errors and request
counts, the ``summary`` a notebook glues, ``raise_for_errors`` and the notes in Markdown.

A job's result subclasses ``JobResult`` (``ContainerResult`` for a job on one container)
and adds only its own fields and ``details()``, its part of the summary. The summary is
``identity, details, errors, stats``, in that order (a failed run's ``rerun_helps`` after
``errors``): the keys the reports index, the header, ``knack-nb run``, the alerts and the
tests read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib.errors import KnackNbError
from lib.text import md

RERUN_SAFE = "a rerun is safe and completes the work"
RERUN_REPEATS = "a rerun alone fails the same way: do what the message says first"


@dataclass(kw_only=True)
class JobResult:
    """What a run did, for its report. ``errors`` non-empty means it failed."""

    app_name: str
    env: str
    notes: list[str] = field(default_factory=list)  # what the report says besides counts
    errors: list[str] = field(default_factory=list)
    rerun_helps: bool = True  # False when an error needs the user first (a rerun repeats it)
    requests: int = 0  # to the service the job reads or writes
    retries: int = 0
    seconds: float = 0.0

    # the stats a summary ends with (a job that makes no request of its own: seconds only)
    STATS: ClassVar[tuple[str, ...]] = ("requests", "retries", "seconds")
    ERROR: ClassVar[type[KnackNbError]] = KnackNbError  # what raise_for_errors raises
    # what a failure's message says a rerun does (None: nothing, the errors say it)
    KEPT: ClassVar[str | None] = ""  # what a failed run still guarantees ("nothing was lost")

    @property
    def ok(self) -> bool:
        return not self.errors

    def identity(self) -> dict[str, Any]:
        """Which run this is: the summary's first keys."""
        return {"app_name": self.app_name, "env": self.env}

    def details(self) -> dict[str, Any]:
        """The job's own part of the summary, between its identity and its errors."""
        return {}

    def stats(self) -> dict[str, Any]:
        values = {
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
        }
        return {name: values[name] for name in self.STATS}

    def summary(self) -> dict[str, Any]:
        """What the notebook glues as ``summary`` (JSON values only). A failed run's also
        says whether a rerun alone helps (``rerun_helps``, after ``errors``): the alerts
        tell people so."""
        failed = {"rerun_helps": self.rerun_helps} if self.errors else {}
        return {
            **self.identity(),
            **self.details(),
            "errors": len(self.errors),
            **failed,
            **self.stats(),
        }

    def failure(self) -> str:
        """What failed, before the errors (e.g. "sync of view_197 failed: ")."""
        return ""

    def advice(self) -> str:
        """What a rerun does, after the errors (none when ``KEPT`` is None)."""
        if self.KEPT is None:
            return ""
        what = RERUN_SAFE if self.rerun_helps else RERUN_REPEATS
        return f" ({self.KEPT}; {what})" if self.KEPT else f" ({what})"

    def raise_for_errors(self) -> None:
        """Fail (``ERROR``) when the run had errors: the notebook's last step."""
        if self.errors:
            raise self.ERROR(self.failure() + " | ".join(self.errors) + self.advice())

    def notes_md(self) -> str:
        """The notes as a Markdown list (each line escaped: they quote the services)."""
        return "".join(f"\n- {md(note)}" for note in self.notes)


@dataclass(kw_only=True)
class ContainerResult(JobResult):
    """The result of a job on one container."""

    container: str

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "container": self.container}
