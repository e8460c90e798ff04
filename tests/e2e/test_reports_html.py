"""``knack-nb reports --html`` on real reports: the runs of ``test_reports_index`` (one
successful, one failed papermill run on the demo stack, once for this module) rendered by
the command line, in process and as a process of its own, to a local file and to S3."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_reports_index import Runs, runs  # noqa: F401 - the module's real runs

from lib import cli
from lib import reports as ri

KNACK_NB = Path(sys.executable).with_name("knack-nb")
WROTE = re.compile(r"^wrote (?P<path>.+\.html) \(also (?P<url>s3://\S+\.html)\)$")
TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
CHATTY = re.compile(r"\b(botocore|boto3|urllib3|s3transfer)\b")


def s3_page(runs: Runs, url: str) -> bytes:  # noqa: F811
    key = url.removeprefix(f"s3://{runs.bucket}/")
    return runs.stack.s3().get_object(Bucket=runs.bucket, Key=key)["Body"].read()


def wrote(out: str) -> tuple[Path, str]:
    (line,) = out.strip().splitlines()
    match = WROTE.match(line)
    assert match, line
    return Path(match["path"]), match["url"]


def assert_reads_offline(page: str) -> None:
    """Nothing loaded from elsewhere: no remote script or stylesheet, no CDN, no MathJax."""
    for tag in TAG.findall(page):
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", tag, re.I), tag
        assert "cdn" not in tag.lower() and "https://" not in tag, tag
    for body in SCRIPT.findall(page):  # inline scripts import nothing either
        assert "https://" not in body and "cdn" not in body.lower(), body[:200]
    lowered = page.lower()
    assert "cdn" not in lowered
    assert "mathjax" not in lowered and "require.min.js" not in lowered
    assert "<style" in page and "jp-Notebook" in page  # the lab template's look, inlined


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``knack-nb`` as a process of its own (its logging as a user sees it)."""
    return subprocess.run(
        [str(KNACK_NB), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


def checked_page(runs: Runs, result, path: Path, url: str, out: Path) -> str:  # noqa: F811
    """The page written for ``result``: at ``out`` mirroring its key, equal to the S3 copy
    beside the report, offline and without NaN."""
    key = runs.key(result)
    assert path == out.joinpath(*key.split("/")[1:]).with_suffix(".html")
    assert url == result.report.removesuffix(".ipynb") + ".html"
    local = path.read_bytes()
    assert local == s3_page(runs, url)
    page = local.decode()
    assert_reads_offline(page)
    assert "NaN" not in page
    return page


def test_html_of_a_failed_run_is_a_local_file_like_the_s3_copy(
    runs: Runs,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
):
    key = runs.key(runs.failed)
    assert cli.main(["reports", "--html", key]) == 0
    path, url = wrote(capsys.readouterr().out)
    # the default directory, mirroring the key under reports/, relative to where it ran
    page = checked_page(runs, runs.failed, path, url, Path("reports-html"))
    entry = ri.list_reports(failed_only=True)[0]
    # the report's own header states the failure, once, near the top: no banner beside it
    assert page.count(ri.HEADER_FAILED) == 1 and "knack-nb-run-status" not in page
    assert page.index(ri.HEADER_FAILED) < page.index('class="jp-Cell ')  # first, on top
    assert "An Exception was encountered" not in page  # papermill's heading: the header says it
    message = html.escape(entry.error.split(": ", 1)[1])
    assert page.count(message) == 1, entry.error
    for secret in runs.stack.secrets:
        assert secret not in page

    # again: the same place, overwritten
    assert cli.main(["reports", "--html", runs.failed.report]) == 0
    assert wrote(capsys.readouterr().out) == (path, url)
    assert path.read_bytes().count(ri.HEADER_FAILED.encode()) == 1


def test_html_out_dir_as_its_own_process(runs: Runs, tmp_path: Path):  # noqa: F811
    out = tmp_path / "new" / "pages"  # not there yet
    done = run_cli("reports", "--html", runs.ok.report, "--out", str(out))
    assert done.returncode == 0, done.stderr
    path, url = wrote(done.stdout)
    key = runs.key(runs.ok)
    page = checked_page(runs, runs.ok, path, url, out)
    assert "knack-nb-run-status" not in page and "all_fields_test" in page  # ok: no banner
    assert 'class="knack-nb-header" data-status="ok"' in page  # the header, with its counts
    assert 'class="knack-nb-counts"' in page
    assert not CHATTY.search(done.stderr), done.stderr
    assert not Path("reports-html", *key.split("/")[1:]).with_suffix(".html").exists()


def test_listing_fits_and_has_no_library_chatter(runs: Runs):  # noqa: F811
    done = run_cli("reports")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= ri.TABLE_WIDTH for line in lines), done.stdout
    # each run's key alone on a line: what --html takes
    keys = [line.strip() for line in lines if line.strip().startswith("reports/")]
    assert keys == [runs.key(runs.failed), runs.key(runs.ok)]
    assert not CHATTY.search(done.stderr), done.stderr


def test_html_bad_input(
    runs: Runs,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    assert cli.main(["reports", "--out", str(tmp_path)]) == 2
    assert "--out goes with --html" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["reports", "--html", runs.key(runs.ok), "--out", str(blocker)]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert cli.main(["reports", "--html", "reports/demo-dev/x/nope.ipynb"]) == 1
    err = capsys.readouterr().err
    assert "no report at" in err and not Path("reports-html/demo-dev/x").exists()


def test_html_path_mirrors_the_key_and_stays_inside(tmp_path: Path):
    key = "reports/demo-dev/upload_metadata/20261129T123435.855Z_app.ipynb"
    assert ri.html_path(key, tmp_path) == (
        tmp_path / "demo-dev" / "upload_metadata" / "20261129T123435.855Z_app.html"
    )
    assert ri.html_path(key) == Path(
        "reports-html/demo-dev/upload_metadata/20261129T123435.855Z_app.html"
    )
    assert ri.html_path("other/x.ipynb", tmp_path) == tmp_path / "other" / "x.html"
    escaped = ri.html_path("reports/../../etc/x.ipynb", tmp_path)
    assert escaped.resolve().is_relative_to(tmp_path.resolve())


def test_table_lines_fit_with_long_names_and_errors():
    when = dt.datetime(2026, 11, 29, 12, 34, 35, tzinfo=dt.UTC)
    key = (
        "reports/a-very-long-application-name-prod/upsert_knack_container_to_socrata/"
        "20261129T123435.855Z_view_1234567.ipynb"
    )
    failed = ri.ReportEntry(
        bucket="b",
        key=key,
        time=when,
        app_env="a-very-long-application-name-prod",
        app_name="a-very-long-application-name",
        env="prod",
        notebook="upsert_knack_container_to_socrata",
        container="view_1234567",
        status="failed",
        error="SocrataError: " + "x " * 300,
        error_cell=12,
        duration=1234.5,
        summary={
            "fetched": 123456,
            "written": 123456,
            "unchanged": 0,
            "errors": 7,
            **{f"count_{i}": i for i in range(30)},
        },
    )
    ok = ri.ReportEntry(
        bucket="b",
        key="reports/d-dev/n/20261129T000000.000Z_app.ipynb",
        time=when,
        app_env="d-dev",
        app_name="d",
        env="dev",
        notebook="n",
        container=None,
        status="ok",
        duration=1.0,
    )
    lines = ri.format_table([failed, ok]).splitlines()
    assert all(len(line) <= ri.TABLE_WIDTH for line in lines if line.strip() != key)
    assert f"  {key}" in lines  # the key is never cut
    assert lines[1].split()[4:] == ["failed", "1234.5"]
    counts = next(line for line in lines if line.startswith("  counts: "))
    assert counts.startswith("  counts: fetched=123456 written=123456 unchanged=0 errors=7")
    assert counts.endswith("…")
    error = next(line for line in lines if line.startswith("  error: "))
    assert error.startswith("  error: In [12] SocrataError: x x") and error.endswith("…")
    assert lines[-2].split() == ["2026-11-29T12:34:35Z", "d-dev", "n", "-", "ok", "1.0"]
    assert lines[-1] == "  reports/d-dev/n/20261129T000000.000Z_app.ipynb"  # no counts line


def test_remote_scripts_and_stylesheets_are_left_out(caplog: pytest.LogCaptureFixture):
    page = (
        '<head><script src="https://cdn.example/x.js"></script>'
        "<SCRIPT type='text/javascript' src='//cdn.example/y.js'>\n</SCRIPT>"
        '<link rel="stylesheet" href="http://cdn.example/s.css">'
        '<script>var here = 1;</script><link rel="icon" href="data:,"></head>'
    )
    kept = ri._offline(page, "s3://b/k.ipynb")
    assert kept == '<head><script>var here = 1;</script><link rel="icon" href="data:,"></head>'
    assert "left out 3" in caplog.text and "s3://b/k.ipynb" in caplog.text
    assert ri._offline(kept, "s3://b/k.ipynb") == kept
