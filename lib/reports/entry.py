"""What one run report tells: its run's entry in the index (:class:`ReportEntry`).

Runs are read from the reports papermill wrote (``lib.reports.run``), never executed: the
time and container come from the key name, the outcome from papermill's metadata
(``metadata.papermill``) and the failing cell's error output, the counts from the
``summary`` scrap the notebook glued. A run is

- ``ok``: papermill finished it and recorded no exception;
- ``failed``: a cell raised (the error is ``ename: evalue`` of that cell, as
  ``knack-nb run`` prints it; papermill also put an error cell at the top);
- ``incomplete``: it has no end time (still running, or its process was killed), or it
  ended with code cells never executed (the kernel died or a cell timed out: papermill
  then records no exception);
- ``unknown``: the notebook holds no papermill metadata; ``unreadable``: not a notebook.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from lib.clients.s3 import Bucket
from lib.reports.run import REPORTS_PREFIX, read_summary
from lib.text import clean

logger = logging.getLogger(__name__)

OK, FAILED, INCOMPLETE, UNKNOWN, UNREADABLE = "ok", "failed", "incomplete", "unknown", "unreadable"
APP_WIDE = "app"  # report_key names app-wide runs (no container) like this
# summary values that are numbers but not counts
NOT_COUNTS = frozenset({"seconds", "records_per_second", "layer_id"})
# counts shown first, in this order; other integer values of the summary follow
COUNT_ORDER = (
    "fetched",
    "read",
    "written",
    "unchanged",
    "created",
    "updated",
    "added",
    "deleted",
    "kept",
    "skipped",
    "failed",
    "errors",
)
STAMP = re.compile(r"^(?P<stamp>\d{8}T\d{6}\.\d{3}Z)_(?P<what>.+)\.ipynb$")
APP_ENV = re.compile(r"^(?P<app>.+)-(?P<env>prod|dev)$")
IN_CELL = re.compile(r"In \[(\d+)\]")


@dataclass
class ReportEntry:
    """One run, as its report tells it."""

    bucket: str
    key: str
    time: dt.datetime | None  # the run's start (UTC): from the key, else papermill's start_time
    app_env: str  # as in the key, e.g. data-tracker-prod
    app_name: str | None
    env: str | None
    notebook: str
    container: str | None  # None: an app-wide run (upload_metadata)
    status: str  # ok, failed, incomplete, unknown, unreadable
    error: str | None = None  # "ename: evalue" of the failing cell, or why the run is not ok
    error_cell: int | None = None  # the failing cell's execution count: "In [n]"
    duration: float | None = None  # seconds, papermill's
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # non-secret identifiers only
    summary: dict[str, Any] = field(default_factory=dict)  # the glued "summary" scrap

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def counts(self) -> dict[str, int]:
        """The summary's integer counts (fetched, written, errors, ...), known ones first."""
        numbers = {
            k: v
            for k, v in self.summary.items()
            if isinstance(v, int)
            and not isinstance(v, bool)
            and k not in NOT_COUNTS
            and not k.endswith("_id")
        }
        ordered = {k: numbers.pop(k) for k in COUNT_ORDER if k in numbers}
        return {**ordered, **numbers}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO strings, with the url and the counts."""
        out = asdict(self)
        for name in ("time", "start_time", "end_time"):
            out[name] = iso(out[name])
        out["url"] = self.url
        out["counts"] = self.counts
        return out


@dataclass
class Candidate:
    """A report key and what its name tells (None: not known before reading it)."""

    key: str
    last_modified: dt.datetime | None
    time: dt.datetime | None = None
    app_env: str | None = None
    app_name: str | None = None
    env: str | None = None
    notebook: str | None = None
    container: str | None = None  # APP_WIDE for an app-wide run's name
    named: bool = False  # the name has report_key's layout

    @property
    def order(self) -> dt.datetime:
        return self.time or self.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC)


def parse_key(key: str, last_modified: dt.datetime | None = None) -> Candidate:
    """What ``reports/<app>-<env>/<notebook>/<UTC time>_<container|app>.ipynb`` tells."""
    candidate = Candidate(key=key, last_modified=last_modified)
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != REPORTS_PREFIX:
        return candidate
    _, candidate.app_env, candidate.notebook, name = parts
    match = APP_ENV.match(candidate.app_env)
    if match:
        candidate.app_name, candidate.env = match["app"], match["env"]
    stamp = STAMP.match(name)
    if stamp:
        candidate.time = dt.datetime.strptime(stamp["stamp"], "%Y%m%dT%H%M%S.%fZ").replace(
            tzinfo=dt.UTC
        )
        candidate.container = stamp["what"]
        candidate.named = True
    return candidate


def read_entry(s3: Bucket, candidate: Candidate) -> ReportEntry | None:
    """The run of a listed report, read from S3; None when it is gone since the listing."""
    bucket = s3.bucket
    body = s3.get_body(candidate.key)
    if body is None:
        logger.info("s3://%s/%s is gone since the listing", bucket, candidate.key)
        return None
    try:
        import nbformat  # here: knack-nb's other commands don't need it

        nb = nbformat.from_dict(json.loads(body))
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
    except (ValueError, UnicodeDecodeError) as e:
        return _entry(bucket, candidate, status=UNREADABLE, error=f"not a notebook: {e}")
    return entry_from_notebook(
        nb, bucket=bucket, key=candidate.key, last_modified=candidate.last_modified
    )


def entry_from_notebook(
    nb: Any, *, bucket: str, key: str, last_modified: dt.datetime | None = None
) -> ReportEntry:
    """A run's entry from its executed notebook (a NotebookNode) and where it is."""
    candidate = parse_key(key, last_modified)
    pm = nb.get("metadata", {}).get("papermill") or {}
    params = dict(pm.get("parameters") or {})
    status, error, cell = run_outcome(nb)
    try:
        summary = read_summary(nb)
    except Exception as e:  # noqa: BLE001 - a bad scrap must not hide the run
        logger.warning("s3://%s/%s: cannot read its summary scrap: %s", bucket, key, e)
        summary = {}
    if not candidate.named:  # not report_key's layout (e.g. plain papermill's output name)
        candidate.container = params.get("container") or APP_WIDE
        candidate.time = _time(pm.get("start_time")) or candidate.last_modified
        if candidate.notebook is None:
            stem = PurePosixPath(str(pm.get("input_path") or key)).stem
            candidate.notebook = stem
    if candidate.app_env is None and params.get("app_name"):
        candidate.app_env = f"{params['app_name']}-{params.get('env', '')}".rstrip("-")
        candidate.app_name, candidate.env = params.get("app_name"), params.get("env")
    return _entry(
        bucket,
        candidate,
        status=status,
        error=error,
        error_cell=cell,
        duration=pm.get("duration") if status != INCOMPLETE else None,
        start_time=_time(pm.get("start_time")),
        end_time=_time(pm.get("end_time")),
        parameters=params,
        summary=summary,
    )


def _entry(bucket: str, candidate: Candidate, **fields: Any) -> ReportEntry:
    container = candidate.container
    return ReportEntry(
        bucket=bucket,
        key=candidate.key,
        time=candidate.time or candidate.last_modified,
        app_env=candidate.app_env or "?",
        app_name=candidate.app_name,
        env=candidate.env,
        notebook=candidate.notebook or "?",
        container=None if container in (None, APP_WIDE) else container,
        **fields,
    )


def run_outcome(nb: Any) -> tuple[str, str | None, int | None]:
    """(status, error, failing cell's execution count) of an executed notebook.

    Follows papermill's own rule (``raise_for_execution_errors``): the first error output
    that is not a clean ``SystemExit`` is the failure, else a cell papermill marked with
    an exception. papermill records no exception when the kernel dies or a cell times
    out, and then marks the unexecuted cells "completed": such a run shows as incomplete.
    """
    pm = nb.get("metadata", {}).get("papermill")
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                continue
            error = clean(f"{out.get('ename')}: {out.get('evalue', '')}")
            return FAILED, error, cell.get("execution_count") or _error_cell_number(nb)
    for cell in cells:
        if (cell.get("metadata", {}).get("papermill") or {}).get("exception") is True:
            return (
                FAILED,
                "the cell failed without an error output",
                cell.get("execution_count") or _error_cell_number(nb),
            )
    if not pm:
        return UNKNOWN, "no papermill metadata: not a papermill run", None
    if pm.get("exception"):
        return FAILED, "papermill recorded an exception but no failing cell", None
    if not pm.get("end_time"):
        running = next(
            (
                c
                for c in cells
                if (c.get("metadata", {}).get("papermill") or {}).get("status") == "running"
            ),
            None,
        )
        where = (
            f" during In [{running.get('execution_count')}]"
            if running and running.get("execution_count")
            else ""
        )
        return INCOMPLETE, f"no end time: still running, or killed{where}", None
    never = [c for c in cells if c.get("execution_count") is None and _source(c).strip()]
    if never:
        last = max((c.get("execution_count") or 0 for c in cells), default=0)
        return (
            INCOMPLETE,
            f"ended after In [{last}] with {len(never)} code cells never "
            "executed: the kernel died or a cell timed out",
            last or None,
        )
    return OK, None, None


def _error_cell_number(nb: Any) -> int | None:
    """The "In [n]" papermill's error cell at the top points at."""
    for cell in nb.get("cells", [])[:1]:
        if "papermill-error-cell-tag" in cell.get("metadata", {}).get("tags", []):
            match = IN_CELL.search(_source(cell))
            if match:
                return int(match.group(1))
    return None


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
