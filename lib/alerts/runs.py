"""A run's :class:`~lib.alerts.messages.Outcome`, from its report and what its runner knows.

The report (the executed notebook in S3, or a local file) tells the error's one line, when
the run started and, for a run that failed with errors of its own, whether a rerun alone
helps (the summary's ``rerun_helps``, glued by every job's result). A run that raised before
it had a result is judged by its error's kind (:func:`rerun_helps_for`). A failed run's
report is also rendered as an HTML page beside it (``lib.reports.render_html``), which the
message links.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from lib.alerts.messages import Outcome
from lib.clients.s3 import Bucket
from lib.errors import KnackNbError

logger = logging.getLogger(__name__)

# errors a rerun repeats until someone acts: a params file, a parameter, a credential, a
# corrupt object, a bug in the code
REPEATS = frozenset(
    {
        "ConfigError",
        "UnknownAppError",
        "UnknownContainerError",
        "MissingCredentialError",
        "MissingParameterError",
        "CorruptObjectError",
        "ForeignRecordError",
    }
)
BUGS = frozenset({"TypeError", "AttributeError", "NameError", "KeyError", "ValueError"})
# errors of a service or of the machine: the next run (or a rerun) gets past them
PASSES = frozenset(
    {
        "KnackAPIError",
        "SocrataError",
        "ArcGISError",
        "StoreError",
        "TimeoutError",
        "CellTimeoutError",
        "DeadKernelError",
        "AirflowTaskTimeout",
        "ConnectionError",
    }
)


def rerun_helps_for(error: str | None) -> bool | None:
    """Whether a rerun alone gets past ``error`` ("Name: message"), by its kind; None: not
    known."""
    name = (error or "").split(":", 1)[0].strip().rsplit(".", 1)[-1]
    if name in REPEATS or name in BUGS:
        return False
    if name in PASSES:
        return True
    return None


def outcome(
    *,
    app_name: str,
    env: str,
    job: str,
    container: str | None,
    ok: bool,
    report: str | None,
    error: str | None = None,
    attempt: int = 1,
    attempts: int = 1,
    page: bool = True,
) -> Outcome:
    """The outcome of a run whose report is at ``report`` (None: none was written). A failed
    run's error and ``rerun_helps`` are read from its report when it has them (else ``error``,
    judged by its kind) and, with ``page``, its report is rendered as an HTML page too; a
    run that succeeded costs no request."""
    entry = _read_entry(report) if report and not ok else None
    summary = entry.summary if entry is not None else {}
    if not ok and entry is not None and entry.error:
        error = entry.error
    helps: bool | None = None
    if not ok:
        glued = summary.get("rerun_helps")
        helps = glued if isinstance(glued, bool) else rerun_helps_for(error)
    html = _page(report) if page and not ok and report else None
    started = entry.start_time if entry is not None else None
    return Outcome(
        app_name=app_name,
        env=env,
        job=job,
        container=container,
        ok=ok,
        error=None if ok else (error or "unknown error (read the report)"),
        rerun_helps=helps,
        attempt=attempt,
        attempts=max(attempts, attempt),
        report=report,
        html=html,
        started=started,
    )


def _read_entry(report: str) -> Any:
    """The report's entry (``lib.reports.entry``), or None when it cannot be read."""
    from lib.reports.entry import entry_from_notebook

    try:
        import nbformat

        if report.startswith("s3://"):
            bucket, key = report.removeprefix("s3://").split("/", 1)
            body = Bucket(bucket).get_body(key)
        else:
            bucket, key = "", report
            path = Path(report)
            body = path.read_bytes() if path.is_file() else None
        if body is None:
            logger.warning(
                "the report %s is not there: the alert says what the runner knows", report
            )
            return None
        nb = nbformat.from_dict(json.loads(body))
        return entry_from_notebook(nb, bucket=bucket, key=key)
    except (KnackNbError, ValueError, OSError) as e:
        logger.warning("the report %s cannot be read (%s)", report, e)
        return None


def _page(report: str) -> str | None:
    """The report as an HTML page beside it in S3 (its s3:// URL), or None."""
    if not report.startswith("s3://"):
        return None
    from lib.reports.html import render_html

    try:
        return render_html(report)
    except Exception as e:  # noqa: BLE001 - the alert goes out without the page
        logger.warning("the report %s could not be rendered as a page (%s)", report, e)
        return None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
