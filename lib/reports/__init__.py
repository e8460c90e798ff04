"""Run reports: the executed notebooks kept in S3, ``reports/<app>-<env>/<notebook>/...``.

- ``run``: run a notebook with papermill and keep its report (``knack-nb run``);
- ``entry``: what one report tells of its run (outcome, error, counts);
- ``index``: the runs, newest first, filtered (``knack-nb reports``);
- ``html``: one report as an HTML page that reads offline (``knack-nb reports --html``),
  with ``offline`` removing whatever the page would load from elsewhere or run.

What other modules use is importable from here.
"""

# (with two helpers the tests reach here: a key name's parts; the page's remote loads removed)
from lib.reports.entry import ReportEntry, entry_from_notebook, run_outcome
from lib.reports.entry import parse_key as _parse_key  # noqa: F401
from lib.reports.html import (  # noqa: F401
    HEADER_FAILED,
    _offline,
    banner_html,
    html_path,
    render_html,
    write_html,
)
from lib.reports.index import (
    TABLE_WIDTH,
    add_arguments,
    format_table,
    list_reports,
    main_reports,
    search_prefix,
    table_rows,
)
from lib.reports.run import (
    KERNEL_START_ATTEMPTS,
    REPORTS_PREFIX,
    RunResult,
    check_run,
    notebook_parameters,
    notebook_path,
    read_summary,
    report_key,
    run_notebook,
)

__all__ = [
    "HEADER_FAILED",
    "KERNEL_START_ATTEMPTS",
    "REPORTS_PREFIX",
    "TABLE_WIDTH",
    "ReportEntry",
    "RunResult",
    "add_arguments",
    "banner_html",
    "check_run",
    "entry_from_notebook",
    "format_table",
    "html_path",
    "list_reports",
    "main_reports",
    "notebook_parameters",
    "notebook_path",
    "read_summary",
    "render_html",
    "report_key",
    "run_notebook",
    "run_outcome",
    "search_prefix",
    "table_rows",
    "write_html",
]
