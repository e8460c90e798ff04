"""A run stopped from outside its cells: its time limit passed, or its kernel died.

papermill writes the report of such a run (its ``finally``) but records no error: the cell
that was running just ends, and the cells after it never run. :func:`mark_stopped` then
puts the reason in the report, as a failing cell would have: an error output on the cell
that was running, the report's header (``lib.header``) turned to failed with the reason,
and papermill's error cell at the top ("An Exception was encountered at In [n]", by
papermill's own ``raise_for_execution_errors``). The reports index, ``knack-nb run``, the
HTML page and the alerts then read the run as failed, with that reason.

:func:`stop_reason` words the reason from the exception that stopped the run: nbclient's
``CellTimeoutError`` (``knack-nb run``'s limit), ``DeadKernelError``, or Airflow's
``AirflowTaskTimeout`` (a task's ``execution_timeout``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from lib.text import clean

logger = logging.getLogger(__name__)

TIMEOUTS = frozenset({"CellTimeoutError", "AirflowTaskTimeout", "TimeoutError"})
DEAD_KERNEL = frozenset({"DeadKernelError"})
STOPS = TIMEOUTS | DEAD_KERNEL
HEADER_CLASS = 'class="knack-nb-header"'


def stop_reason(exception: BaseException, *, limit: dt.timedelta | None) -> tuple[str, str] | None:
    """(ename, evalue) of a run stopped by ``exception``; None when it is not such a stop."""
    name = type(exception).__name__
    if name in TIMEOUTS:
        took = f"its time limit of {_span(limit)}" if limit else "its time limit"
        return (
            "TimeoutError",
            f"the run was stopped: it ran past {took} (execution_timeout_minutes in the "
            "container's params; the job's default otherwise). A rerun starts over and is "
            "safe; if the work needs longer, raise execution_timeout_minutes",
        )
    if name in DEAD_KERNEL:
        return (
            "DeadKernelError",
            "the run was stopped: its kernel died (out of memory, or killed). A rerun "
            "starts over and is safe; if it dies again, look at the machine's memory",
        )
    return None


def mark_stopped(output: str, ename: str, evalue: str) -> bool:
    """Put ``ename: evalue`` in the report at ``output`` (a path or an s3:// URL papermill
    reads) as the error of the cell that was running; whether the report could be marked
    (a report not there, or not readable, is left as it is and logged)."""
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors
    from papermill.iorw import load_notebook_node

    try:
        nb = load_notebook_node(output)
    except Exception as e:  # noqa: BLE001 - the run's failure is reported all the same
        logger.warning("the report %s cannot be read to mark it (%s)", output, e)
        return False
    evalue = clean(evalue)
    cell = _running_cell(nb)
    if cell is None:
        logger.warning("the report %s has no code cell that ran: not marked", output)
        return False
    import nbformat

    cell.setdefault("outputs", []).append(
        nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
        )
    )
    cell.setdefault("metadata", {}).setdefault("papermill", {})["exception"] = True
    nb.metadata.setdefault("papermill", {})["exception"] = True
    _fail_header(nb, f"{ename}: {evalue}", cell.get("execution_count"))
    try:  # papermill's own step: its error cell at the top, an anchor, the report written
        raise_for_execution_errors(nb, output)
    except PapermillExecutionError:
        return True
    except Exception as e:  # noqa: BLE001 - as above
        logger.warning("the marked report could not be written to %s (%s)", output, e)
    return False


def _running_cell(nb: Any) -> Any:
    """The code cell that was running: the last one papermill started."""
    started = [
        c
        for c in nb.cells
        if c.get("cell_type") == "code"
        and (c.get("metadata", {}).get("papermill") or {}).get("start_time")
    ]
    return started[-1] if started else None


def _fail_header(nb: Any, error: str, cell: int | None) -> None:
    """The report's header (``lib.header``), shown as failed with ``error``."""
    from lib.header import Header

    params = dict((nb.metadata.get("papermill") or {}).get("parameters") or {})
    notebook = str((nb.metadata.get("papermill") or {}).get("input_path") or "")
    notebook = notebook.rsplit("/", 1)[-1].removesuffix(".ipynb")
    for c in nb.cells:
        for out in c.get("outputs", []):
            html = (out.get("data") or {}).get("text/html")
            text = "".join(html) if isinstance(html, list) else html
            if isinstance(text, str) and HEADER_CLASS in text:
                header = Header(notebook, params)
                header.fail(error, cell)
                header.seconds = (nb.metadata.get("papermill") or {}).get("duration")
                out["data"] = {"text/html": header._repr_html_(), "text/plain": repr(header)}
                return


def _span(limit: dt.timedelta) -> str:
    minutes = limit.total_seconds() / 60
    return f"{minutes:g} minutes" if minutes >= 1 else f"{limit.total_seconds():g} s"
