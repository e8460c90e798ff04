"""A notebook's own steps in process, for tests whose subject is not the report.

Each notebook is thin: parameters → one ``lib`` call (its job's entry in
``lib.jobs.registry``) → displays → ``notebook.glue("summary", result.summary())`` →
``result.raise_for_errors()``, and a project error (``KnackNbError``)
fails the run with ``"<class name>: <message>"``, redacted (lib/notebook.py, lib/reports.py).
``run`` does exactly those steps without a kernel and answers the ``RunResult`` that
``reports.run_notebook`` would (``ok``, ``error``, ``summary``; ``report`` is empty: there is
none). Used for set-up runs (a first load, a publish before a change) and for variants of one
failure whose report path one papermill test still covers.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from lib.errors import KnackNbError
from lib.jobs import registry
from lib.redact import redact
from lib.reports import RunResult


def run(
    notebook: str, *, app_name: str, env: str, container: str | None = None, date: Any = None
) -> RunResult:
    summary: dict[str, Any] = {}
    job = registry.get(notebook)  # the function the notebook calls, with its parameters
    try:
        result = job.load()(
            **job.arguments(app_name=app_name, env=env, container=container, date=date)
        )
        summary = json.loads(json.dumps(result.summary()))  # as glued: JSON
        if hasattr(result, "raise_for_errors"):
            result.raise_for_errors()
    except KnackNbError as e:
        return RunResult(
            notebook, "", ok=False, error=redact(f"{type(e).__name__}: {e}"), summary=summary
        )
    return RunResult(notebook, "", ok=True, summary=summary)


def next_second_after_writes(stack: Any, prefix: str) -> dt.datetime:
    """The whole second after the newest LastModified under ``prefix``, once the clock has
    reached it (at most a second's wait). S3 lists LastModified to the second and a read
    "since" compares at that grain, so every object written before this call is listed before
    the returned instant and every object written after it at or after: a ``date`` that
    splits old writes from new ones by construction, not by sleeping long enough."""
    s3 = stack.s3()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    newest = max(o["LastModified"] for page in pages for o in page.get("Contents", []))
    since = newest.astimezone(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    while dt.datetime.now(dt.UTC) < since:
        time.sleep(0.02)
    return since
