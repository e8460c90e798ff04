"""The reports index: which runs happened, how they ended, and each report as HTML.

    knack-nb reports [-a APP] [-e ENV] [-n NOTEBOOK] [-c CONTAINER] [--since D] [--failed]
    knack-nb reports --html reports/demo-dev/upload_metadata/20261129T123435.855Z_app.ipynb
    knack-nb reports --html s3://bucket/reports/...ipynb --out /tmp/pages  # default ./reports-html

Runs are read from the reports papermill wrote (``lib.reports``), never executed: the time
and container come from the key name, the outcome from papermill's metadata
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

import argparse
import datetime as dt
import html
import json
import logging
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import botocore.exceptions

from lib import config, reports
from lib.dates import parse_date
from lib.errors import ConfigError, KnackNbError, StoreError
from lib.offline import offline
from lib.store import UPLOAD_WORKERS, s3_client, translate_s3_error
from lib.text import clean

logger = logging.getLogger(__name__)

OK, FAILED, INCOMPLETE, UNKNOWN, UNREADABLE = "ok", "failed", "incomplete", "unknown", "unreadable"
READ_WORKERS = UPLOAD_WORKERS  # concurrent GETs through the one shared client
DEFAULT_LIMIT = 50  # the command line shows this many runs unless told otherwise
TABLE_WIDTH = 110  # the table's lines are cut to this (--json has everything)
DEFAULT_HTML_DIR = "reports-html"  # where --html writes pages, unless --out says
APP_WIDE = "app"  # report_key names app-wide runs (no container) like this
# summary values that are numbers but not counts
NOT_COUNTS = frozenset({"seconds", "records_per_second", "layer_id"})
# counts shown first, in this order; other integer values of the summary follow
COUNT_ORDER = (
    "fetched", "read", "written", "unchanged", "created", "updated", "added", "deleted",
    "kept", "skipped", "failed", "errors",
)
_STAMP = re.compile(r"^(?P<stamp>\d{8}T\d{6}\.\d{3}Z)_(?P<what>.+)\.ipynb$")
_APP_ENV = re.compile(r"^(?P<app>.+)-(?P<env>prod|dev)$")
_IN_CELL = re.compile(r"In \[(\d+)\]")


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
            k: v for k, v in self.summary.items()
            if isinstance(v, int) and not isinstance(v, bool)
            and k not in NOT_COUNTS and not k.endswith("_id")
        }
        ordered = {k: numbers.pop(k) for k in COUNT_ORDER if k in numbers}
        return {**ordered, **numbers}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO strings, with the url and the counts."""
        out = asdict(self)
        for name in ("time", "start_time", "end_time"):
            out[name] = _iso(out[name])
        out["url"] = self.url
        out["counts"] = self.counts
        return out


@dataclass(frozen=True)
class _Filters:
    app: str | None = None  # as report_key spells it in a key
    env: str | None = None
    notebook: str | None = None
    container: str | None = None
    since: dt.datetime | None = None
    failed_only: bool = False

    def admit(self, run: ReportEntry | _Candidate) -> bool:
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
            ok(run.app_name, self.app) and ok(run.env, self.env)
            and ok(run.notebook, self.notebook) and ok(container, self.container)
        )


def _time_ok(time: dt.datetime | None, since: dt.datetime, final: bool) -> bool:
    return time >= since if time is not None else not final


@dataclass
class _Candidate:
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
    bucket = bucket or config.bucket()
    client = client or s3_client()
    filters = _filters(app_name, env, notebook, container, since, failed_only)
    prefix = search_prefix(app_name=app_name, env=env, notebook=notebook)
    candidates = [c for c in _list_candidates(client, bucket, prefix) if filters.admit(c)]
    candidates.sort(key=lambda c: (c.order, c.key), reverse=True)
    logger.debug("%d candidate reports under s3://%s/%s", len(candidates), bucket, prefix)

    found: list[ReportEntry] = []
    chunk = max(READ_WORKERS, limit or 0)
    with ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="s3-report") as pool:
        for start in range(0, len(candidates), chunk):
            batch = candidates[start : start + chunk]
            read = pool.map(lambda c: _read_entry(client, bucket, c), batch)
            found += [e for e in read if e is not None and filters.admit(e)]
            if limit and len(found) >= limit:
                break
    found.sort(key=lambda e: (e.time or dt.datetime.min.replace(tzinfo=dt.UTC), e.key),
               reverse=True)
    return found[:limit] if limit else found


def search_prefix(
    *, app_name: str | None = None, env: str | None = None, notebook: str | None = None
) -> str:
    """The narrowest key prefix holding the reports of these runs."""
    if app_name is None:
        return f"{reports.REPORTS_PREFIX}/"
    app_env, nb = _key_parts(app_name, env or "dev", notebook or "_")
    if env is None:  # any env: app names may hold dashes, so the app-env is checked later
        return f"{reports.REPORTS_PREFIX}/{app_env.removesuffix('-dev')}-"
    if notebook is None:
        return f"{reports.REPORTS_PREFIX}/{app_env}/"
    return f"{reports.REPORTS_PREFIX}/{app_env}/{nb}/"


def _key_parts(app_name: str, env: str, notebook: str) -> tuple[str, str]:
    """How ``reports.report_key`` spells app-env and notebook (unsafe characters replaced)."""
    _, app_env, nb, _ = reports.report_key(app_name=app_name, env=env, notebook=notebook).split(
        "/"
    )
    return app_env, nb


def _filters(
    app_name: str | None, env: str | None, notebook: str | None, container: str | None,
    since: Any, failed_only: bool,
) -> _Filters:
    if env is not None:
        config.check_env(env)
    when = parse_date(since) if since is not None else None
    if when == "auto":
        raise ConfigError('since "auto" is not a time: give POSIX seconds or ISO-8601')
    app = _key_parts(app_name, "dev", "_")[0].removesuffix("-dev") if app_name else None
    nb = _key_parts("a", "dev", notebook)[1] if notebook else None
    return _Filters(app=app, env=env, notebook=nb, container=container,
                    since=when if isinstance(when, dt.datetime) else None,
                    failed_only=failed_only)


def _list_candidates(client: Any, bucket: str, prefix: str) -> Iterator[_Candidate]:
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".ipynb"):  # not the HTML renders
                    yield _parse_key(obj["Key"], obj.get("LastModified"))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate_s3_error(e, f"cannot list s3://{bucket}/{prefix}") from None


def _parse_key(key: str, last_modified: dt.datetime | None = None) -> _Candidate:
    """What ``reports/<app>-<env>/<notebook>/<UTC time>_<container|app>.ipynb`` tells."""
    candidate = _Candidate(key=key, last_modified=last_modified)
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != reports.REPORTS_PREFIX:
        return candidate
    _, candidate.app_env, candidate.notebook, name = parts
    match = _APP_ENV.match(candidate.app_env)
    if match:
        candidate.app_name, candidate.env = match["app"], match["env"]
    stamp = _STAMP.match(name)
    if stamp:
        candidate.time = dt.datetime.strptime(stamp["stamp"], "%Y%m%dT%H%M%S.%fZ").replace(
            tzinfo=dt.UTC
        )
        candidate.container = stamp["what"]
        candidate.named = True
    return candidate


# --- reading one report ----------------------------------------------------------------


def _get(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes; None when it is gone (deleted since the listing)."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise translate_s3_error(e, f"cannot read s3://{bucket}/{key}") from None
    except botocore.exceptions.BotoCoreError as e:
        raise translate_s3_error(e, f"cannot read s3://{bucket}/{key}") from None


def _read_entry(client: Any, bucket: str, candidate: _Candidate) -> ReportEntry | None:
    body = _get(client, bucket, candidate.key)
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
    return entry_from_notebook(nb, bucket=bucket, key=candidate.key,
                               last_modified=candidate.last_modified)


def entry_from_notebook(
    nb: Any, *, bucket: str, key: str, last_modified: dt.datetime | None = None
) -> ReportEntry:
    """A run's entry from its executed notebook (a NotebookNode) and where it is."""
    candidate = _parse_key(key, last_modified)
    pm = nb.get("metadata", {}).get("papermill") or {}
    params = dict(pm.get("parameters") or {})
    status, error, cell = run_outcome(nb)
    try:
        summary = reports.read_summary(nb)
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
        bucket, candidate, status=status, error=error, error_cell=cell,
        duration=pm.get("duration") if status != INCOMPLETE else None,
        start_time=_time(pm.get("start_time")), end_time=_time(pm.get("end_time")),
        parameters=params, summary=summary,
    )


def _entry(bucket: str, candidate: _Candidate, **fields: Any) -> ReportEntry:
    container = candidate.container
    return ReportEntry(
        bucket=bucket, key=candidate.key, time=candidate.time or candidate.last_modified,
        app_env=candidate.app_env or "?", app_name=candidate.app_name, env=candidate.env,
        notebook=candidate.notebook or "?",
        container=None if container in (None, APP_WIDE) else container, **fields,
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
            return FAILED, "the cell failed without an error output", cell.get(
                "execution_count"
            ) or _error_cell_number(nb)
    if not pm:
        return UNKNOWN, "no papermill metadata: not a papermill run", None
    if pm.get("exception"):
        return FAILED, "papermill recorded an exception but no failing cell", None
    if not pm.get("end_time"):
        running = next(
            (c for c in cells
             if (c.get("metadata", {}).get("papermill") or {}).get("status") == "running"),
            None,
        )
        where = f" during In [{running.get('execution_count')}]" if running and running.get(
            "execution_count") else ""
        return INCOMPLETE, f"no end time: still running, or killed{where}", None
    never = [c for c in cells if c.get("execution_count") is None and _source(c).strip()]
    if never:
        last = max((c.get("execution_count") or 0 for c in cells), default=0)
        return (INCOMPLETE, f"ended after In [{last}] with {len(never)} code cells never "
                "executed: the kernel died or a cell timed out", last or None)
    return OK, None, None


def _error_cell_number(nb: Any) -> int | None:
    """The "In [n]" papermill's error cell at the top points at."""
    for cell in nb.get("cells", [])[:1]:
        if "papermill-error-cell-tag" in cell.get("metadata", {}).get("tags", []):
            match = _IN_CELL.search(_source(cell))
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


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
        rows.append({
            "time": e.time.strftime("%Y-%m-%dT%H:%M:%SZ") if e.time else "?",
            "app-env": e.app_env,
            "notebook": e.notebook,
            "container": e.container or "-",
            "status": e.status,
            "secs": f"{e.duration:.1f}" if e.duration is not None else "-",
            "counts": " ".join(f"{k}={v}" for k, v in e.counts.items()) or "-",
            "error": " ".join(error.split()),
            "key": e.key,
        })
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
            cells[c].rjust(widths[c]) if c in right else cells[c].ljust(widths[c])
            for c in COLUMNS
        ).rstrip()

    lines = [line({c: c for c in COLUMNS})]
    for row in rows:
        lines += [line(row), f"  {row['key']}"]
        lines += [_truncate(f"  {name}: {row[name]}", width)
                  for name in ("counts", "error") if row[name] not in ("", "-")]
    return "\n".join(lines)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- HTML ------------------------------------------------------------------------------


def render_html(key: str, *, bucket: str | None = None, client: Any = None) -> str:
    """Render one report to HTML beside it in S3 (``<key minus .ipynb>.html``); its URL.

    ``key`` is a key or an ``s3://bucket/key`` URL. Nothing is executed. A run that did not
    succeed gets a banner at the top, before the notebook, with the error and the failing
    cell's number (linking to papermill's anchor at that cell). The page reads offline: it
    loads nothing (no require.js, MathJax or mermaid from a CDN; the CSS is inlined).
    """
    client = client or s3_client()
    bucket, key, page, _ = _render(key, bucket or config.bucket(), client)
    return _put_html(client, bucket, key, page)


def write_html(
    key: str, *, out_dir: str | Path = DEFAULT_HTML_DIR, bucket: str | None = None,
    client: Any = None,
) -> tuple[Path, str]:
    """``render_html``, and the page written to a local file too: (its path, the S3 URL).

    The file mirrors the key under ``out_dir``: ``reports/<app>-<env>/<notebook>/<name>.ipynb``
    is written to ``<out_dir>/<app>-<env>/<notebook>/<name>.html`` (directories created).
    The local file is written first: when S3 then refuses the copy, the StoreError says
    where the page is.
    """
    client = client or s3_client()
    bucket, key, page, _ = _render(key, bucket or config.bucket(), client)
    path = html_path(key, out_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        url = _put_html(client, bucket, key, page)
    except StoreError as e:
        raise StoreError(f"wrote {path}, but {e}") from None
    return path, url


def html_path(key: str, out_dir: str | Path = DEFAULT_HTML_DIR) -> Path:
    """Where ``write_html`` puts a report's page: its key under ``reports/``, in ``out_dir``."""
    parts = PurePosixPath(key).parts
    if parts and parts[0] == reports.REPORTS_PREFIX:
        parts = parts[1:]
    safe = [part if part not in (".", "..") else "_" for part in parts if part != "/"]
    if not safe:
        raise ConfigError(f"{key!r} is not a report: give the key of an .ipynb under reports/")
    safe[-1] = PurePosixPath(safe[-1]).with_suffix(".html").name
    return Path(out_dir).joinpath(*safe)


def _render(key: str, bucket: str, client: Any) -> tuple[str, str, str, ReportEntry]:
    """(bucket, key, the offline HTML page, the run's entry) of one report."""
    bucket, key = _split_url(key, bucket)
    if not key.endswith(".ipynb"):
        raise ConfigError(f"{key!r} is not a report: give the key of an .ipynb under reports/")
    body = _get(client, bucket, key)
    if body is None:
        raise StoreError(f"no report at s3://{bucket}/{key}: `knack-nb reports` lists them")
    try:
        import nbformat

        nb = nbformat.reads(body.decode("utf-8"), as_version=4)
    except Exception as e:  # noqa: BLE001 - nbformat raises several kinds
        raise StoreError(f"s3://{bucket}/{key} is not a readable notebook: {e}") from None
    entry = entry_from_notebook(nb, bucket=bucket, key=key)
    header = _take_header(nb)
    with warnings.catch_warnings():  # the glued scraps have no HTML form: nothing to say
        warnings.filterwarnings("ignore", message=r".*scrapbook\.scrap\.json.*")
        page, _ = _exporter().from_notebook_node(
            nb, resources={"metadata": {"name": f"{entry.notebook} {entry.app_env} {entry.status}"}}
        )
    page = _with_banner(_offline(page, f"s3://{bucket}/{key}"), entry, header)
    return bucket, key, page, entry


def _take_header(nb: Any) -> str:
    """The HTML of the report's header (lib/header.py), taken out of its cell so that the
    page opens with it; papermill's own "An Exception was encountered" cell goes too (the
    header says which cell failed, and papermill's marker at that cell stays). "" for a
    report without a header (one written before headers existed)."""
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        for i, out in enumerate(outputs):
            text = out.get("data", {}).get("text/html", "")
            text = "".join(text) if isinstance(text, list) else text
            if 'class="knack-nb-header"' in text:
                del outputs[i]
                nb.cells = [c for c in nb.cells if not (
                    c.cell_type == "markdown"
                    and "papermill-error-cell-tag" in c.metadata.get("tags", [])
                    and "An Exception was encountered" in c.source)]
                return text
    return ""


def _put_html(client: Any, bucket: str, key: str, page: str) -> str:
    target = key.removesuffix(".ipynb") + ".html"
    try:
        client.put_object(Bucket=bucket, Key=target, Body=page.encode("utf-8"),
                          ContentType="text/html; charset=utf-8")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise translate_s3_error(e, f"cannot write s3://{bucket}/{target}") from None
    logger.debug("rendered s3://%s/%s", bucket, target)
    return f"s3://{bucket}/{target}"


# nbconvert's lab template without what it loads from CDNs: require.js (no output here
# needs it), MathJax (LaTeX in markdown then shows as its source), the widgets' renderer
# and mermaid (the reports have neither). Its CSS is inlined by the template itself.
_OFFLINE_TEMPLATE = "knack_nb_offline.html.j2"
_OFFLINE_SOURCE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
# what a page could still load from elsewhere (an output's own HTML, a later nbconvert)
_REMOTE_SCRIPT = re.compile(
    r"""<script\b[^>]*?\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>.*?</script\s*>""",
    re.IGNORECASE | re.DOTALL,
)
_REMOTE_LINK = re.compile(
    r"""<link\b[^>]*?\bhref\s*=\s*["']?\s*(?:https?:)?//[^>]*>""", re.IGNORECASE
)


def _exporter() -> Any:
    import jinja2
    from nbconvert import HTMLExporter  # slow to import; only this command needs it

    return HTMLExporter(
        template_name="lab",
        template_file=_OFFLINE_TEMPLATE,
        extra_loaders=[jinja2.DictLoader({_OFFLINE_TEMPLATE: _OFFLINE_SOURCE})],
    )


def _offline(page: str, where: str) -> str:
    """The page without scripts or stylesheets loaded from another host, and without
    anything else it would fetch from elsewhere or address it would run as script
    (lib/offline.py)."""
    dropped = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal dropped
        dropped += 1
        return ""

    page = _REMOTE_LINK.sub(drop, _REMOTE_SCRIPT.sub(drop, page))
    page, more = offline(page)
    if dropped or more:
        logger.warning("%s: left out %d script(s)/stylesheet(s) loaded from the web and %d "
                       "other remote or script address(es): the page reads offline", where,
                       dropped, more)
    return page


def _split_url(key: str, bucket: str) -> tuple[str, str]:
    if key.startswith("s3://"):
        found, _, rest = key.removeprefix("s3://").partition("/")
        if not found or not rest:
            raise ConfigError(f"{key!r} is not an s3://bucket/key URL")
        return found, rest
    return bucket, key.lstrip("/")


HEADER_FAILED = 'class="knack-nb-header" data-status="failed"'  # lib/header.py's, failed


def banner_html(entry: ReportEntry) -> str:
    """The block put before the notebook of a run that did not succeed ("" for ok)."""
    if entry.status == OK:
        return ""
    where = ""
    if entry.error_cell is not None:
        where = f' at cell <a href="#papermill-error-cell">In [{entry.error_cell}]</a>'
    headline = {FAILED: "This run failed", INCOMPLETE: "This run did not finish"}.get(
        entry.status, f"This run's status is {entry.status}"
    )
    run = " · ".join(
        html.escape(str(p)) for p in (entry.app_env, entry.notebook, entry.container or APP_WIDE,
                                      _iso(entry.time) or "") if p
    )
    return (
        '<div id="knack-nb-run-status" style="border:2px solid #c00;background:#fee;'
        'padding:1em;margin:1em;font-family:sans-serif">'
        f"<strong>{headline}</strong>{where}:"
        '<pre style="white-space:pre-wrap;font-size:1.1em">'
        f"{html.escape(entry.error or entry.status)}</pre>"
        f"<small>{run}</small></div>\n"
    )


def _with_banner(page: str, entry: ReportEntry, header: str = "") -> str:
    """The page with the report's header first, and the banner of a run that did not
    succeed unless that header already states its error."""
    banner = "" if HEADER_FAILED in header else banner_html(entry)
    banner += header
    if not banner:
        return page
    body = re.search(r"<body[^>]*>", page)
    if body is None:
        return banner + page
    return page[: body.end()] + "\n" + banner + page[body.end() :]


# --- command line ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``knack-nb reports``."""
    parser.add_argument("-a", "--app-name", help="only this app (a params/<app-name>.yaml)")
    parser.add_argument("-e", "--env", choices=config.ENVS, help="only prod or dev")
    parser.add_argument("-n", "--notebook", help="only this notebook, e.g. knack_container_to_s3")
    parser.add_argument("-c", "--container",
                        help="only this container, e.g. view_197 (app: app-wide runs)")
    parser.add_argument(
        "-s", "--since",
        help="only runs started at or after: POSIX seconds or ISO-8601 (no offset: UTC)",
    )
    parser.add_argument("-f", "--failed", action="store_true",
                        help="only runs that did not succeed (failed or incomplete)")
    parser.add_argument("-l", "--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"show the newest N runs (default {DEFAULT_LIMIT}; 0: all)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    parser.add_argument(
        "--html", metavar="KEY",
        help="render this report (a key or s3:// URL) to an offline HTML page: a local file "
        f"(under ./{DEFAULT_HTML_DIR}/, or --out) and beside the report in S3; print both",
    )
    parser.add_argument(
        "-o", "--out", metavar="DIR",
        help=f"with --html: write the page under DIR (default ./{DEFAULT_HTML_DIR}), "
        "mirroring its key under reports/",
    )


# loggers whose INFO lines (credentials found, connections, retries) are no output of this
# command: shown with knack-nb -v only
CHATTY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def main_reports(args: argparse.Namespace) -> int:
    """``knack-nb reports``: 0 when it listed or rendered, 1 when S3 failed, 2 on bad input."""
    quiet = {} if getattr(args, "verbose", False) else {
        name: logging.getLogger(name) for name in CHATTY_LOGGERS
    }
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
            app_name=args.app_name, env=args.env, notebook=args.notebook,
            container=args.container, since=args.since, failed_only=args.failed,
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
        print(f"no run reports match{_describe(args)} in s3://{config.bucket()}/"
              f"{search_prefix(app_name=args.app_name, env=args.env, notebook=args.notebook)}")
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


def _parser() -> argparse.ArgumentParser:  # for ``python -m lib.reports_index``
    parser = argparse.ArgumentParser(prog="knack-nb reports", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return parser


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(main_reports(_parser().parse_args()))
