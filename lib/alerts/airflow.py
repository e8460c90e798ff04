"""The alert callbacks of the generated Airflow tasks (``dags/knack_dags.py``).

``on_failure`` is each task's ``on_failure_callback`` and ``on_success`` its
``on_success_callback``. Airflow calls the first when a try fails for good; a try that will
be retried (its ``try_number`` at most the task's ``retries``) is not said even if it is
called for one. The task's rendered ``parameters`` say the app, env and container, its
rendered ``output_nb`` where the report is. Nothing here imports Airflow: the context is
read as the callbacks receive it (Airflow 2 and 3).

A callback never raises: an alert that cannot go out is logged, the task's state stays.
"""

from __future__ import annotations

import logging
from typing import Any

from lib.alerts import notify
from lib.alerts.runs import outcome
from lib.alerts.send import alert_urls
from lib.text import clean

logger = logging.getLogger(__name__)


def on_failure(context: dict[str, Any]) -> None:
    _callback(context, ok=False)


def on_success(context: dict[str, Any]) -> None:
    _callback(context, ok=True)


def will_retry(try_number: int, retries: int) -> bool:
    """Whether Airflow tries a failed task again: its try (1-based) is at most ``retries``."""
    return try_number <= retries


def error_line(exception: BaseException | None) -> str | None:
    """An exception as one line, "Name: first line of its message"."""
    if exception is None:
        return None
    lines = [line.strip() for line in str(exception).splitlines() if line.strip()]
    return clean(f"{type(exception).__name__}: {lines[0] if lines else ''}".rstrip(": "))


def _callback(context: dict[str, Any], *, ok: bool) -> None:
    if not alert_urls():
        return
    try:
        ti = context["ti"]
        task = context.get("task") or ti.task
        retries = int(getattr(task, "retries", 0) or 0)
        try_number = int(getattr(ti, "try_number", 1) or 1)
        if not ok and will_retry(try_number, retries):
            return
        parameters = dict(getattr(task, "parameters", None) or {})
        output = getattr(task, "output_nb", "") or ""  # a NoteBook once the task ran
        report = str(getattr(output, "url", output))
        notify(
            outcome(
                app_name=str(parameters["app_name"]),
                env=str(parameters["env"]),
                job=str(task.task_id),
                container=parameters.get("container") or None,
                ok=ok,
                report=report if report.startswith("s3://") else None,
                error=error_line(context.get("exception")),
                attempt=try_number,
                attempts=retries + 1,
            )
        )
    except Exception:  # noqa: BLE001 - an alert must not change the task's state
        logger.exception("the alert of this task could not be made")
