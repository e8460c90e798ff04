"""What every notebook calls first, and small display helpers for reports."""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
from typing import Any

from lib.errors import KnackNbError
from lib.redact import install_filter, redact
from lib.text import clean

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# scrapbook's JSON scrap (scrapbook.schemas.GLUE_PAYLOAD_FMT, payload version 1)
SCRAP_MIMETYPE = "application/scrapbook.scrap.json+json"
SCRAP_VERSION = 1


def setup(level: int = logging.INFO) -> None:
    """Configure logging and error display for a notebook (interactive or under papermill).

    Logs go to stdout so they land in the report; the project's own errors (bad input,
    service failures) show as one clear message instead of a traceback, and still fail
    the cell so papermill and ``knack-nb run`` see the failure. Log lines, those messages
    and the traceback of any other exception are redacted (lib/redact.py): no credential
    reaches the report.
    """
    root = logging.getLogger()
    if not any(getattr(h, "_knack_nb", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%H:%M:%S"))
        handler._knack_nb = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for handler in root.handlers:
        install_filter(handler)
    logging.getLogger("lib").setLevel(level)
    pandas = sys.modules.get("pandas")  # only a notebook that uses pandas pays its import
    if pandas is not None:
        pandas.set_option("display.max_columns", 50)
        pandas.set_option("display.max_colwidth", 80)

    shell = _ipython()
    if shell is not None:
        shell.set_custom_exc((Exception,), _show_error)
        if in_kernel() and not getattr(setup, "_exit_registered", False):
            atexit.register(_exit_fast, shell)
            setup._exit_registered = True  # type: ignore[attr-defined]


_header: Any = None  # this run's Header and its display handle (lib.header), once started
# Set once ``finish`` has settled the header: the run's own cells are done, and what a
# cell run after them does (an analyst's, in Lab) is its own business, not the run's status.
_settled = False


def start(notebook: str, **params: Any) -> None:
    """``setup()``, then the report's header (lib/header.py) with the parameters that ran:
    shown as "running", updated in place by ``finish`` or by a failing cell."""
    global _header, _settled
    from IPython.display import display

    from lib.header import Header

    setup()
    header = Header(notebook, params)
    handle = display(header, display_id=True)
    _header = (header, handle)
    _settled = False


def finish(result: Any) -> None:
    """The run's last cell: its summary glued (``summary``) and shown as a table, the
    header updated with the status, duration and counts; a failed run then fails here.
    After it, the header is settled: a cell that fails later leaves it as it is."""
    global _settled
    from IPython.display import display

    summary = result.summary()
    glue("summary", summary)
    display(summary_table(summary))
    if _header is not None:
        header, handle = _header
        header.done(summary, list(getattr(result, "errors", []) or []))
        if handle is not None:  # None outside IPython: the header was printed, not shown
            handle.update(header)
    if hasattr(result, "raise_for_errors"):
        result.raise_for_errors()
    _settled = True


def _header_failed(error: str, cell: int | None) -> bool:
    """Put a failing cell's error in the header; whether there was a header to take it.
    A header ``finish`` settled takes none: the cell is not one of the run's own."""
    if _header is None or _settled:
        return False
    header, handle = _header
    header.fail(error, cell)
    if handle is None:
        return False
    try:
        handle.update(header)
    except Exception:  # noqa: BLE001 - the cell's own output still says it
        return False
    return True


def in_kernel() -> bool:
    """Whether this is a Jupyter kernel's process (papermill's, knack-nb's or Lab's)."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return kernelapp is not None and kernelapp.IPKernelApp.initialized()


def _exit_fast(shell: Any) -> None:
    """The kernel's exit, once it has answered the shutdown request: IPython's own exit
    work (its history), logging flushed, then the process ends without the interpreter's
    finalization. Tearing down pandas, pyarrow, boto3 and the rest took 0.3-1 s of every
    run, which papermill waits for after the last cell; nothing of the report is left to
    send by then (papermill writes it from its own process). Registered last, so it runs
    first of the exit handlers."""
    try:
        shell.atexit_operations()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return None
    return get_ipython()


def _show_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None):
    """IPython's custom exception handler: the project's errors as one line, any other
    exception as IPython's traceback; both redacted, ``evalue`` (papermill's, the report's)
    included. It never raises: IPython would then show the raw traceback."""
    try:
        evalue = redact(clean(str(value)))
        stb = [f"{etype.__name__}: {evalue}"]
        if not isinstance(value, KnackNbError):
            try:
                full = shell.InteractiveTB.structured_traceback(
                    etype, value, tb, tb_offset=tb_offset
                )
                stb = [redact(line) for line in full]
            except Exception:  # noqa: BLE001 - keep the one line rather than fail
                pass
    except Exception:  # noqa: BLE001 - str(value) itself may fail
        evalue = "(its message could not be shown)"
        stb = [f"{etype.__name__}: {evalue}"]
    # IPython has counted the failing cell by the time its handler runs: its "In [n]" is one less
    cell = shell.execution_count - 1
    if isinstance(value, KnackNbError) and _header_failed(f"{etype.__name__}: {evalue}", cell):
        # stated once, in the header at the top; the cell points there (evalue stays whole
        # for papermill and the reports index)
        stb = [
            f"{etype.__name__}: this run failed; the header at the top of the report "
            "says why and what to do"
        ]
    elif _header is not None:
        _header_failed(f"{etype.__name__}: {evalue}", cell)
    shell._showtraceback(etype, evalue, stb)  # noqa: SLF001 - IPython's documented hook
    return stb


def glue(name: str, data: Any) -> None:
    """Record ``data`` in the cell's outputs as a scrapbook JSON scrap: exactly the output
    ``scrapbook.glue(name, data)`` makes, so ``scrapbook.read_notebook(report).scraps[name]``
    reads it, without importing scrapbook in the kernel (it imports papermill, nbformat and
    jsonschema: ~3 s per run). ``data`` must be JSON: dicts, lists, str, numbers, bool, None.
    """
    from IPython.display import display

    payload = {
        "name": name,
        "data": json.loads(json.dumps(data)),
        "encoder": "json",
        "version": SCRAP_VERSION,
    }
    metadata = {"scrapbook": {"name": name, "data": True, "display": False}}
    display({SCRAP_MIMETYPE: payload}, metadata=metadata, raw=True)


def summary_table(summary: dict[str, Any]) -> Any:
    """A run's summary as a two-column table for the report."""
    from lib.table import Table

    return Table.of_pairs({key.replace("_", " "): v for key, v in summary.items()}, "", "value")
