"""What a person is told about a run, and when: pure functions, no I/O, the clock given.

A run's :class:`Outcome` and the job's :class:`History` (kept in S3 by ``lib.alerts.history``)
give, by :func:`decide`, the message to send (or None) and the history to keep:

- a failure is said when it is the job's first failure since its last success, when its
  error differs from the one said last, or when the same error was last said a day or more
  ago (``REPEAT_AFTER``): a job that keeps failing the same way is said once a day;
- the first success after failures is said once ("recovered"), and clears the history;
- an ordinary success is not said.

Errors are compared by :func:`error_key`: the one line with its numbers, ids and times
replaced, so "HTTP 500 after 6 attempts" and "HTTP 503 after 6 attempts" are the same
error, and a time in a message does not make every run's error new.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lib.dates import duration

REPEAT_AFTER = dt.timedelta(days=1)  # the same error of the same job is said once a day
FAILED, RECOVERED = "failed", "recovered"
MAX_ERROR_CHARS = 600  # of the error's line in a message (the report has all of it)
_VARYING = re.compile(
    r"\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?"  # ISO times
    r"|\b[0-9a-f]{24}\b"  # Knack record and app ids
    r"|\d+(?:[.,]\d+)*"  # numbers
)


@dataclass(frozen=True)
class Outcome:
    """How one run of a job ended, as an alert tells it (no secret: ids, the error's line)."""

    app_name: str
    env: str
    job: str  # the notebook's name, e.g. knack_container_to_s3
    container: str | None  # None: an app-wide job (upload_metadata, health)
    ok: bool
    error: str | None = None  # the error's one line, "Name: message"
    rerun_helps: bool | None = None  # None: not known (read the report)
    attempt: int = 1  # which attempt this was
    attempts: int = 1  # how many the scheduler makes at most (retries + 1)
    report: str | None = None  # the report's s3:// URL
    html: str | None = None  # the report as an HTML page (s3:// URL), when written
    started: dt.datetime | None = None  # the run's start, when known

    @property
    def where(self) -> str:
        parts = [f"{self.app_name}-{self.env}", self.container, self.job]
        return " · ".join(p for p in parts if p)


@dataclass(frozen=True)
class History:
    """What the alerts remember of one job (and container) since its last success."""

    failing_since: dt.datetime | None = None  # the first failed run's time; None: not failing
    failed_runs: int = 0  # runs failed for good since then
    last_error: str | None = None
    said_at: dt.datetime | None = None  # when a failure was last said
    said_error: str | None = None  # error_key of what was said then

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("failing_since", "said_at"):
            out[name] = out[name].isoformat() if out[name] else None
        return out

    @classmethod
    def from_json(cls, data: Any) -> History:
        """A stored history; anything unreadable counts as none (the next failure is said)."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                failing_since=_time(data.get("failing_since")),
                failed_runs=int(data.get("failed_runs") or 0),
                last_error=data.get("last_error"),
                said_at=_time(data.get("said_at")),
                said_error=data.get("said_error"),
            )
        except (TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Message:
    kind: str  # FAILED or RECOVERED
    title: str
    body: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


def decide(history: History, outcome: Outcome, now: dt.datetime) -> tuple[Message | None, History]:
    """The message for ``outcome`` (None: nothing to say) and the history to keep."""
    if outcome.ok:
        if not history.failing:
            return None, history
        return recovered_message(outcome, history, now), History()
    key = error_key(outcome.error)
    repeated = (
        history.said_error == key
        and history.said_at is not None
        and now - history.said_at < REPEAT_AFTER
    )
    kept = replace(
        history,
        failing_since=history.failing_since or outcome.started or now,
        failed_runs=history.failed_runs + 1,
        last_error=outcome.error,
    )
    if repeated:
        return None, kept
    kept = replace(kept, said_at=now, said_error=key)
    return failure_message(outcome, kept, now), kept


def error_key(error: str | None) -> str:
    """What makes two errors the same one: the line with numbers, ids and times as ``#``."""
    return _VARYING.sub("#", " ".join((error or "").split()))


def failure_message(outcome: Outcome, history: History, now: dt.datetime) -> Message:
    title = f"✗ {outcome.where} failed"
    lines = [
        f"Error: {_cut(outcome.error or 'unknown (read the report)')}",
        f"Will a rerun alone help? {rerun_text(outcome.rerun_helps)}",
        f"Attempts: {outcome.attempt} of {outcome.attempts}"
        + (" (no retry left)" if outcome.attempt >= outcome.attempts > 1 else ""),
        f"Failing since {_when(history.failing_since, now)}, {_runs(history.failed_runs)} failed",
        *_where(outcome),
        "The same error is said again once a day while it lasts; the first success "
        "after it is said as recovered.",
    ]
    return Message(FAILED, title, "\n".join(lines), lines)


def recovered_message(outcome: Outcome, history: History, now: dt.datetime) -> Message:
    title = f"✓ {outcome.where} recovered"
    lines = [
        f"Succeeded after {_runs(history.failed_runs)} failed, failing since "
        f"{_when(history.failing_since, now)}",
        f"Last error: {_cut(history.last_error or 'unknown')}",
        *_where(outcome),
    ]
    return Message(RECOVERED, title, "\n".join(lines), lines)


def rerun_text(helps: bool | None) -> str:
    if helps is True:
        return "yes: a service or the machine failed for a while; a rerun completes the work"
    if helps is False:
        return "no: a rerun fails the same way; do what the error says first"
    return "not known: read the report"


def _where(outcome: Outcome) -> list[str]:
    lines = [f"Report: {outcome.report}" if outcome.report else "Report: none was written"]
    if outcome.html:
        lines.append(f"Report as a page: {outcome.html}")
    return lines


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _when(since: dt.datetime | None, now: dt.datetime) -> str:
    if since is None:
        return "now"
    return f"{since.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({duration(now - since)})"


def _cut(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    when = dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
