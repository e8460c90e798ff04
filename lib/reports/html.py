"""One run report as an HTML page that reads offline (``knack-nb reports --html``).

The page is rendered beside the report in S3 (``<key minus .ipynb>.html``) and, with
``--html``, written to a local file too. Nothing is executed. The report's header opens the
page, and a run that did not succeed gets a banner with its error. The page loads nothing
from elsewhere: nbconvert's template without what it takes from CDNs, and whatever an
output would still fetch or run removed (``lib.reports.offline``).
"""

from __future__ import annotations

import html
import logging
import re
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

from lib import config
from lib.clients.s3 import Bucket
from lib.errors import ConfigError, StoreError
from lib.reports.entry import (
    APP_WIDE,
    FAILED,
    INCOMPLETE,
    OK,
    ReportEntry,
    entry_from_notebook,
    iso,
)
from lib.reports.offline import offline
from lib.reports.run import REPORTS_PREFIX

logger = logging.getLogger(__name__)

DEFAULT_HTML_DIR = "reports-html"  # where --html writes pages, unless --out says


def render_html(key: str, *, bucket: str | None = None, client: Any = None) -> str:
    """Render one report to HTML beside it in S3 (``<key minus .ipynb>.html``); its URL.

    ``key`` is a key or an ``s3://bucket/key`` URL. Nothing is executed. A run that did not
    succeed gets a banner at the top, before the notebook, with the error and the failing
    cell's number (linking to papermill's anchor at that cell). The page reads offline: it
    loads nothing (no require.js, MathJax or mermaid from a CDN; the CSS is inlined).
    """
    s3, key, page, _ = _render(key, bucket, client)
    return _put_html(s3, key, page)


def write_html(
    key: str,
    *,
    out_dir: str | Path = DEFAULT_HTML_DIR,
    bucket: str | None = None,
    client: Any = None,
) -> tuple[Path, str]:
    """``render_html``, and the page written to a local file too: (its path, the S3 URL).

    The file mirrors the key under ``out_dir``: ``reports/<app>-<env>/<notebook>/<name>.ipynb``
    is written to ``<out_dir>/<app>-<env>/<notebook>/<name>.html`` (directories created).
    The local file is written first: when S3 then refuses the copy, the StoreError says
    where the page is.
    """
    s3, key, page, _ = _render(key, bucket, client)
    path = html_path(key, out_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        url = _put_html(s3, key, page)
    except StoreError as e:
        raise StoreError(f"wrote {path}, but {e}") from None
    return path, url


def html_path(key: str, out_dir: str | Path = DEFAULT_HTML_DIR) -> Path:
    """Where ``write_html`` puts a report's page: its key under ``reports/``, in ``out_dir``."""
    parts = PurePosixPath(key).parts
    if parts and parts[0] == REPORTS_PREFIX:
        parts = parts[1:]
    safe = [part if part not in (".", "..") else "_" for part in parts if part != "/"]
    if not safe:
        raise ConfigError(f"{key!r} is not a report: give the key of an .ipynb under reports/")
    safe[-1] = PurePosixPath(safe[-1]).with_suffix(".html").name
    return Path(out_dir).joinpath(*safe)


def _render(key: str, bucket: str | None, client: Any) -> tuple[Bucket, str, str, ReportEntry]:
    """(its bucket, its key, the offline HTML page, the run's entry) of one report."""
    bucket, key = _split_url(key, bucket or config.bucket())
    s3 = Bucket(bucket, client=client)
    if not key.endswith(".ipynb"):
        raise ConfigError(f"{key!r} is not a report: give the key of an .ipynb under reports/")
    body = s3.get_body(key)
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
    return s3, key, page, entry


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
                nb.cells = [
                    c
                    for c in nb.cells
                    if not (
                        c.cell_type == "markdown"
                        and "papermill-error-cell-tag" in c.metadata.get("tags", [])
                        and "An Exception was encountered" in c.source
                    )
                ]
                return text
    return ""


def _put_html(s3: Bucket, key: str, page: str) -> str:
    target = key.removesuffix(".ipynb") + ".html"
    s3.put_body(target, page.encode("utf-8"), "text/html; charset=utf-8")
    logger.debug("rendered %s", s3.url(target))
    return s3.url(target)


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
    (lib.reports.offline)."""
    dropped = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal dropped
        dropped += 1
        return ""

    page = _REMOTE_LINK.sub(drop, _REMOTE_SCRIPT.sub(drop, page))
    page, more = offline(page)
    if dropped or more:
        logger.warning(
            "%s: left out %d script(s)/stylesheet(s) loaded from the web and %d "
            "other remote or script address(es): the page reads offline",
            where,
            dropped,
            more,
        )
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
        html.escape(str(p))
        for p in (entry.app_env, entry.notebook, entry.container or APP_WIDE, iso(entry.time) or "")
        if p
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
