"""The reports index: which runs happened and how they ended (``knack-nb reports``).

    knack-nb reports [-a APP] [-e ENV] [-n NOTEBOOK] [-c CONTAINER] [--since D] [--failed]
    knack-nb reports --html reports/demo-dev/upload_metadata/20261129T123435.855Z_app.ipynb
    knack-nb reports --html s3://bucket/reports/...ipynb --out /tmp/pages  # default ./reports-html

Runs are listed from the reports in S3, newest first, and filtered by what their key names
tell before any is read (``lib.reports.entry`` says what one report tells); ``--html``
renders one as an offline page (``lib.reports.html``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lib import config
from lib.clients.s3 import UPLOAD_WORKERS, Bucket
from lib.dates import parse_date
from lib.errors import ConfigError, KnackNbError
from lib.reports.entry import APP_WIDE, FAILED, OK, Candidate, ReportEntry, parse_key, read_entry
from lib.reports.html import DEFAULT_HTML_DIR, write_html
from lib.reports.run import REPORTS_PREFIX, report_key
from lib.text import clean

logger = logging.getLogger(__name__)

READ_WORKERS = UPLOAD_WORKERS  # concurrent GETs through the one shared client
DEFAULT_LIMIT = 50  # the command line shows this many runs unless told otherwise
TABLE_WIDTH = 110  # the table's lines are cut to this (--json has everything)


@dataclass(frozen=True)
class _Filters:
    app: str | None = None  # as report_key spells it in a key
    env: str | None = None
    notebook: str | None = None
    container: str | None = None
    since: dt.datetime | None = None
    failed_only: bool = False

    def admit(self, run: ReportEntry | Candidate) -> bool:
        """Whether the run matches. A candidate (not read yet) passes on what its key name
        does not tell; a read entry must match every filter."""
        final = isinstance(run, ReportEntry)

        def ok(value: Any, wanted: Any) -> bool:
            if wanted is None:
                return True
            return value == wanted if value is not None else not final

        if self.since is not None and not _time_ok(run.time, self.since, final):
            return False
        if self.failed_only and isinstance(run, ReportEntry) and run.status == OK:
            return False
        container = (run.container or APP_WIDE) if final else run.container
        return (
            ok(run.app_name, self.app)
            and ok(run.env, self.env)
            and ok(run.notebook, self.notebook)
            and ok(container, self.container)
        )


def _time_ok(time: dt.datetime | None, since: dt.datetime, final: bool) -> bool:
    return time >= since if time is not None else not final


# --- listing ---------------------------------------------------------------------------


def list_reports(
    *,
    bucket: str | None = None,
    app_name: str | None = None,
    env: str | None = None,
    notebook: str | None = None,
    container: str | None = None,
    since: Any = None,
    failed_only: bool = False,
    limit: int | None = None,
    client: Any = None,
) -> list[ReportEntry]:
    """The runs whose reports are in S3, newest first.

    ``since``: runs started at or after it (what ``lib.dates.parse_date`` accepts: POSIX
    seconds or ISO-8601, no offset meaning UTC). ``failed_only``: runs that did not
    succeed (failed, incomplete, ...). ``limit``: at most this many (the newest); reports
    are then read only as far as needed. Raises StoreError (naming the bucket and
    KNACK_SERVICES_BUCKET) when S3 refuses, ConfigError for a bad ``env`` or ``since``.
    """
    s3 = Bucket(bucket, client=client)
    bucket = s3.bucket
    filters = _filters(app_name, env, notebook, container, since, failed_only)
    prefix = search_prefix(app_name=app_name, env=env, notebook=notebook)
    candidates = [c for c in _list_candidates(s3, prefix) if filters.admit(c)]
    candidates.sort(key=lambda c: (c.order, c.key), reverse=True)
    logger.debug("%d candidate reports under s3://%s/%s", len(candidates), bucket, prefix)

    found: list[ReportEntry] = []
    chunk = max(READ_WORKERS, limit or 0)
    with ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="s3-report") as pool:
        for start in range(0, len(candidates), chunk):
            batch = candidates[start : start + chunk]
            read = pool.map(lambda c: read_entry(s3, c), batch)
            found += [e for e in read if e is not None and filters.admit(e)]
            if limit and len(found) >= limit:
                break
    found.sort(
        key=lambda e: (e.time or dt.datetime.min.replace(tzinfo=dt.UTC), e.key), reverse=True
    )
    return found[:limit] if limit else found


def search_prefix(
    *, app_name: str | None = None, env: str | None = None, notebook: str | None = None
) -> str:
    """The narrowest key prefix holding the reports of these runs."""
    if app_name is None:
        return f"{REPORTS_PREFIX}/"
    app_env, nb = _key_parts(app_name, env or "dev", notebook or "_")
    if env is None:  # any env: app names may hold dashes, so the app-env is checked later
        return f"{REPORTS_PREFIX}/{app_env.removesuffix('-dev')}-"
    if notebook is None:
        return f"{REPORTS_PREFIX}/{app_env}/"
    return f"{REPORTS_PREFIX}/{app_env}/{nb}/"


def _key_parts(app_name: str, env: str, notebook: str) -> tuple[str, str]:
    """How ``report_key`` spells app-env and notebook (unsafe characters replaced)."""
    _, app_env, nb, _ = report_key(app_name=app_name, env=env, notebook=notebook).split("/")
    return app_env, nb


def _filters(
    app_name: str | None,
    env: str | None,
    notebook: str | None,
    container: str | None,
    since: Any,
    failed_only: bool,
) -> _Filters:
    if env is not None:
        config.check_env(env)
    when = parse_date(since) if since is not None else None
    if when == "auto":
        raise ConfigError('since "auto" is not a time: give POSIX seconds or ISO-8601')
    app = _key_parts(app_name, "dev", "_")[0].removesuffix("-dev") if app_name else None
    nb = _key_parts("a", "dev", notebook)[1] if notebook else None
    return _Filters(
        app=app,
        env=env,
        notebook=nb,
        container=container,
        since=when if isinstance(when, dt.datetime) else None,
        failed_only=failed_only,
    )


def _list_candidates(s3: Bucket, prefix: str) -> Iterator[Candidate]:
    for obj in s3.iter_objects(prefix):
        if obj["Key"].endswith(".ipynb"):  # not the HTML renders
            yield parse_key(obj["Key"], obj.get("LastModified"))


# --- showing ---------------------------------------------------------------------------

COLUMNS = ("time", "app-env", "notebook", "container", "status", "secs")
CAPS = {"app-env": 24, "notebook": 28, "container": 20}  # longer names are cut (…)


def table_rows(entries: Iterable[ReportEntry]) -> list[dict[str, str]]:
    """One row of display strings per run: the COLUMNS, its ``error`` and its ``key``."""
    rows = []
    for e in entries:
        error = e.error or ""
        if e.error_cell is not None and e.status == FAILED:
            error = f"In [{e.error_cell}] {error}"
        rows.append(
            {
                "time": e.time.strftime("%Y-%m-%dT%H:%M:%SZ") if e.time else "?",
                "app-env": e.app_env,
                "notebook": e.notebook,
                "container": e.container or "-",
                "status": e.status,
                "secs": f"{e.duration:.1f}" if e.duration is not None else "-",
                "counts": " ".join(f"{k}={v}" for k, v in e.counts.items()) or "-",
                "error": " ".join(error.split()),
                "key": e.key,
            }
        )
    return rows


def format_table(entries: Iterable[ReportEntry], width: int = TABLE_WIDTH) -> str:
    """The runs as an aligned plain-text table, its lines at most ``width`` columns wide.

    A run is its row, then indented: its key on a line of its own (what ``--html`` takes),
    its counts and, for a run that did not succeed, its error. Counts and errors are cut
    to the width (``--json`` has all of them); the key never is.
    """
    rows = table_rows(entries)
    for row in rows:
        for column, cap in CAPS.items():
            row[column] = _truncate(row[column], cap)
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
    right = {"secs"}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(
            cells[c].rjust(widths[c]) if c in right else cells[c].ljust(widths[c]) for c in COLUMNS
        ).rstrip()

    lines = [line({c: c for c in COLUMNS})]
    for row in rows:
        lines += [line(row), f"  {row['key']}"]
        lines += [
            _truncate(f"  {name}: {row[name]}", width)
            for name in ("counts", "error")
            if row[name] not in ("", "-")
        ]
    return "\n".join(lines)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- command line ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``knack-nb reports``."""
    parser.add_argument("-a", "--app-name", help="only this app (a params/<app-name>.yaml)")
    parser.add_argument("-e", "--env", choices=config.ENVS, help="only prod or dev")
    parser.add_argument("-n", "--notebook", help="only this notebook, e.g. knack_container_to_s3")
    parser.add_argument(
        "-c", "--container", help="only this container, e.g. view_197 (app: app-wide runs)"
    )
    parser.add_argument(
        "-s",
        "--since",
        help="only runs started at or after: POSIX seconds or ISO-8601 (no offset: UTC)",
    )
    parser.add_argument(
        "-f",
        "--failed",
        action="store_true",
        help="only runs that did not succeed (failed or incomplete)",
    )
    parser.add_argument(
        "-l",
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"show the newest N runs (default {DEFAULT_LIMIT}; 0: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    parser.add_argument(
        "--html",
        metavar="KEY",
        help="render this report (a key or s3:// URL) to an offline HTML page: a local file "
        f"(under ./{DEFAULT_HTML_DIR}/, or --out) and beside the report in S3; print both",
    )
    parser.add_argument(
        "-o",
        "--out",
        metavar="DIR",
        help=f"with --html: write the page under DIR (default ./{DEFAULT_HTML_DIR}), "
        "mirroring its key under reports/",
    )


# loggers whose INFO lines (credentials found, connections, retries) are no output of this
# command: shown with knack-nb -v only
CHATTY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def main_reports(args: argparse.Namespace) -> int:
    """``knack-nb reports``: 0 when it listed or rendered, 1 when S3 failed, 2 on bad input."""
    quiet = (
        {}
        if getattr(args, "verbose", False)
        else {name: logging.getLogger(name) for name in CHATTY_LOGGERS}
    )
    levels = {name: lg.level for name, lg in quiet.items()}
    for lg in quiet.values():
        if lg.getEffectiveLevel() < logging.WARNING:
            lg.setLevel(logging.WARNING)
    try:
        return _main_reports(args)
    finally:
        for name, level in levels.items():
            quiet[name].setLevel(level)


def _main_reports(args: argparse.Namespace) -> int:
    try:
        if args.out and not args.html:
            raise ConfigError("--out goes with --html KEY: where to write the page")
        if args.html:
            path, url = write_html(args.html, out_dir=args.out or DEFAULT_HTML_DIR)
            print(f"wrote {path} (also {url})")
            return 0
        entries = list_reports(
            app_name=args.app_name,
            env=args.env,
            notebook=args.notebook,
            container=args.container,
            since=args.since,
            failed_only=args.failed,
            limit=args.limit if args.limit and args.limit > 0 else None,
        )
    except ConfigError as e:
        print(f"knack-nb: {e}", file=sys.stderr)
        return 2
    except KnackNbError as e:
        print(f"knack-nb: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2, default=str))
        return 0
    if not entries:
        print(
            f"no run reports match{_describe(args)} in s3://{config.bucket()}/"
            f"{search_prefix(app_name=args.app_name, env=args.env, notebook=args.notebook)}"
        )
        return 0
    print(clean(format_table(entries)))
    if args.limit and len(entries) >= args.limit:
        print(f"(the newest {args.limit} shown; --limit 0 shows all)")
    return 0


def _describe(args: argparse.Namespace) -> str:
    given = [
        f"--{name.replace('_', '-')} {value}"
        for name in ("app_name", "env", "notebook", "container", "since")
        if (value := getattr(args, name)) is not None
    ]
    if args.failed:
        given.append("--failed")
    return f" {' '.join(given)}" if given else ""
