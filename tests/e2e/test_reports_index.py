"""The reports index against real reports: papermill runs on the demo stack write a
successful and a failed report to S3 (once for this module), then ``list_reports``,
``render_html`` and ``knack-nb reports`` read them back without executing anything."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import nbformat
import papermill.s3
import pytest

from emulators.knack import Faults, load_fixture_app
from emulators.stack import Stack
from lib import reports
from lib import reports as ri
from lib.errors import ConfigError, StoreError

BAD_DATE_ERROR = "ConfigError: date 'not-a-date' does not parse"


@dataclass
class Runs:
    stack: Stack
    bucket: str
    ok: reports.RunResult
    failed: reports.RunResult

    def key(self, result: reports.RunResult) -> str:
        return result.report.removeprefix(f"s3://{self.bucket}/")

    def notebook(self, result: reports.RunResult) -> Any:
        body = self.stack.s3().get_object(Bucket=self.bucket, Key=self.key(result))["Body"]
        return nbformat.reads(body.read().decode(), as_version=4)


@pytest.fixture(scope="module")
def runs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """One successful and one failed run in a fresh bucket (demo_env, for the module)."""
    bucket = f"reports-index-{uuid.uuid4().hex[:8]}"
    stack.s3().create_bucket(Bucket=bucket)
    mp = pytest.MonkeyPatch()
    try:
        for key, value in stack.env.items():
            mp.setenv(key, value)
        mp.setenv("KNACK_SERVICES_BUCKET", bucket)
        mp.setattr(stack, "bucket", bucket)
        mp.chdir(tmp_path_factory.mktemp("reports-index"))
        mp.setattr(papermill.s3.S3, "s3_session", (None, None, None))
        stack.knack.add_app(*load_fixture_app())
        stack.knack.faults = Faults()
        # the two runs at once (each kernel is a process of its own); the failed one starts
        # once the successful one has written its first report, so it is the newer run
        with ThreadPoolExecutor(2) as pool:
            ok_run = pool.submit(
                reports.run_notebook, "upload_metadata", app_name="demo", env="dev"
            )
            deadline = time.monotonic() + 60
            while not stack.s3_keys("reports/") and not ok_run.done():
                assert time.monotonic() < deadline, "the first run wrote no report"
                time.sleep(0.05)
            failed_run = pool.submit(
                reports.run_notebook,
                "knack_container_to_s3",
                app_name="demo",
                env="dev",
                container="object_3",
                date="not-a-date",
            )
            ok, failed = ok_run.result(), failed_run.result()
        assert ok.ok and not failed.ok, (ok, failed)
        yield Runs(stack, bucket, ok, failed)
    finally:
        mp.undo()


@pytest.fixture
def scratch(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> str:
    """Another fresh bucket, for hand-made reports that must not disturb the real two."""
    bucket = f"reports-scratch-{uuid.uuid4().hex[:8]}"
    runs.stack.s3().create_bucket(Bucket=bucket)
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", bucket)
    return bucket


def put(runs: Runs, bucket: str, key: str, body: bytes | str) -> None:
    runs.stack.s3().put_object(Bucket=bucket, Key=key, Body=body)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="knack-nb reports")
    ri.add_arguments(parser)
    return ri.main_reports(parser.parse_args(list(argv)))


# --- listing -----------------------------------------------------------------------------


def test_lists_both_runs_newest_first_with_status_error_and_counts(runs: Runs):
    entries = ri.list_reports()
    assert [e.key for e in entries] == [runs.key(runs.failed), runs.key(runs.ok)]
    failed, ok = entries

    assert ok.status == "ok" and ok.error is None and ok.error_cell is None
    assert ok.notebook == "upload_metadata" and ok.app_env == "demo-dev"
    assert (ok.app_name, ok.env, ok.container) == ("demo", "dev", None)
    assert ok.summary == runs.ok.summary  # the glued scrap, as the runner read it
    assert ok.counts == {
        "fetched": 1,
        "written": 1,
        "unchanged": 0,
        "errors": 0,
        "objects": 7,
        "schema_changes": 0,
        "views": 9,
    }
    assert ok.parameters == {"app_name": "demo", "env": "dev"}
    assert ok.url == runs.ok.report

    assert failed.status == "failed"
    assert failed.error == runs.failed.error  # what `knack-nb run` printed
    assert failed.error.startswith(BAD_DATE_ERROR)
    assert failed.notebook == "knack_container_to_s3" and failed.container == "object_3"
    assert failed.summary == {} and failed.counts == {}  # it failed before gluing
    # the failing cell's number is the one papermill's error cell at the top points at
    top = runs.notebook(runs.failed).cells[0]
    assert f"In [{failed.error_cell}]" in top.source

    for entry in entries:  # the run's time from the key, papermill's times from the report
        assert entry.time is not None and entry.start_time is not None
        assert abs((entry.start_time - entry.time).total_seconds()) < 5
        assert entry.end_time > entry.start_time and entry.duration > 0
    assert failed.time > ok.time


def test_filters(runs: Runs):
    ok_key, failed_key = runs.key(runs.ok), runs.key(runs.failed)

    def keys(**filters: Any) -> list[str]:
        return [e.key for e in ri.list_reports(**filters)]

    assert keys(failed_only=True) == [failed_key]
    assert keys(notebook="upload_metadata") == [ok_key]
    assert keys(notebook="knack_container_to_s3.ipynb") == [failed_key]
    assert keys(container="object_3") == [failed_key]
    assert keys(container="app") == [ok_key]  # app-wide runs, as report keys name them
    assert keys(app_name="demo", env="dev") == [failed_key, ok_key]
    assert keys(app_name="demo", env="dev", notebook="upload_metadata") == [ok_key]
    assert keys(app_name="demo") == [failed_key, ok_key]
    assert keys(app_name="dem") == []  # a prefix of the app name is not the app
    assert keys(env="prod") == [] and keys(env="dev") == [failed_key, ok_key]
    assert keys(limit=1) == [failed_key]

    ok_time = ri.list_reports(notebook="upload_metadata")[0].time
    failed_time = ri.list_reports(failed_only=True)[0].time
    assert ok_time < failed_time
    between = ok_time + (failed_time - ok_time) / 2
    assert keys(since=between.isoformat()) == [failed_key]
    assert keys(since=failed_time.isoformat()) == [failed_key]  # at or after
    assert keys(since=int(ok_time.timestamp())) == [failed_key, ok_key]  # POSIX seconds
    assert keys(since=str(int(failed_time.timestamp()) + 3600)) == []
    # the same instant in another zone
    central = ok_time.astimezone(dt.timezone(dt.timedelta(hours=-6)))
    assert keys(since=central.isoformat()) == [failed_key, ok_key]

    with pytest.raises(ConfigError, match="does not parse"):
        ri.list_reports(since="yesterday")
    with pytest.raises(ConfigError, match="prod' or 'dev"):
        ri.list_reports(env="staging")


def test_reads_odd_reports_and_skips_html(runs: Runs, scratch: str):
    ok_nb, failed_nb = runs.notebook(runs.ok), runs.notebook(runs.failed)
    base = "reports/data-tracker-prod/knack_container_to_s3"

    killed = copy.deepcopy(ok_nb)  # the process was killed during a cell: no end time
    killed.metadata.papermill.update(end_time=None, duration=None, exception=None)
    code = [c for c in killed.cells if c.cell_type == "code"]
    code[-1].metadata.papermill.status = "running"
    code[-1].outputs = []

    died = copy.deepcopy(ok_nb)  # the kernel died: papermill records no exception
    code = [c for c in died.cells if c.cell_type == "code"]
    for cell in code[-2:]:
        cell.execution_count, cell.outputs = None, []

    put(runs, scratch, f"{base}/20261101T060000.000Z_view_197.ipynb", nbformat.writes(killed))
    put(runs, scratch, f"{base}/20261102T060000.000Z_view_197.ipynb", nbformat.writes(died))
    put(runs, scratch, f"{base}/20261103T060000.000Z_view_197.ipynb", "{not json")
    put(runs, scratch, f"{base}/20261103T060000.000Z_view_197.html", "<html></html>")
    # plain papermill (Airflow) names the output itself: the rest comes from the metadata
    put(
        runs,
        scratch,
        "reports/demo-dev/knack_container_to_s3/manual.ipynb",
        nbformat.writes(failed_nb),
    )

    entries = ri.list_reports()
    by_key = {e.key.rsplit("/", 1)[1]: e for e in entries}
    assert sorted(by_key) == [
        "20261101T060000.000Z_view_197.ipynb",
        "20261102T060000.000Z_view_197.ipynb",
        "20261103T060000.000Z_view_197.ipynb",
        "manual.ipynb",
    ]
    assert [e.key.rsplit("/", 1)[1][:8] for e in entries] == [
        "manual.i",
        "20261103",
        "20261102",
        "20261101",
    ]  # manual's time is its run's (papermill's start_time): the newest

    killed_e = by_key["20261101T060000.000Z_view_197.ipynb"]
    assert killed_e.status == "incomplete" and "no end time" in killed_e.error
    assert killed_e.duration is None
    assert (killed_e.app_env, killed_e.app_name, killed_e.env) == (
        "data-tracker-prod",
        "data-tracker",
        "prod",
    )
    assert killed_e.container == "view_197"
    assert killed_e.time == dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)
    died_e = by_key["20261102T060000.000Z_view_197.ipynb"]
    assert died_e.status == "incomplete" and "never executed" in died_e.error
    junk = by_key["20261103T060000.000Z_view_197.ipynb"]
    assert junk.status == "unreadable" and "not a notebook" in junk.error
    manual = by_key["manual.ipynb"]
    assert manual.status == "failed" and manual.error.startswith(BAD_DATE_ERROR)
    assert manual.container == "object_3" and manual.notebook == "knack_container_to_s3"
    assert manual.time == manual.start_time

    assert [
        e.key for e in ri.list_reports(app_name="data-tracker", env="prod", failed_only=True)
    ] == [
        e.key for e in entries if e.app_env == "data-tracker-prod"
    ]  # not ok: incomplete and unreadable runs too
    assert [e.key for e in ri.list_reports(container="object_3")] == [manual.key]


def test_missing_bucket_names_it_and_the_variable(runs: Runs):
    with pytest.raises(StoreError, match="no-such-bucket.*KNACK_SERVICES_BUCKET"):
        ri.list_reports(bucket="no-such-bucket")


# --- HTML -----------------------------------------------------------------------------------


def test_html_of_a_failed_run_shows_the_error_first(runs: Runs):
    url = ri.render_html(runs.key(runs.failed))
    html_key = runs.key(runs.failed).removesuffix(".ipynb") + ".html"
    assert url == f"s3://{runs.bucket}/{html_key}"
    obj = runs.stack.s3().get_object(Bucket=runs.bucket, Key=html_key)
    assert obj["ContentType"].startswith("text/html")
    page = obj["Body"].read().decode()
    body = page[page.index("<body") :]
    error_at = body.index("ConfigError: date &#x27;not-a-date&#x27; does not parse")
    first_cell = body.index('class="jp-Cell ')
    assert error_at < first_cell
    entry = ri.list_reports(failed_only=True)[0]
    assert body.index(f"In [{entry.error_cell}]") < first_cell
    assert "# Knack container" not in body[:first_cell]
    assert "Knack container → S3" in body  # the notebook itself follows
    for secret in runs.stack.secrets:
        assert secret not in page
    # the HTML sits beside the report and is no run of its own
    assert [e.key for e in ri.list_reports()] == [runs.key(runs.failed), runs.key(runs.ok)]


def test_html_of_a_successful_run_by_url_has_no_banner(runs: Runs):
    url = ri.render_html(runs.ok.report)  # an s3:// URL works as well as a key
    assert url == runs.ok.report.removesuffix(".ipynb") + ".html"
    key = url.removeprefix(f"s3://{runs.bucket}/")
    page = runs.stack.s3().get_object(Bucket=runs.bucket, Key=key)["Body"].read().decode()
    assert "knack-nb-run-status" not in page and "all_fields_test" in page


def test_html_of_a_missing_report_says_so(runs: Runs):
    with pytest.raises(StoreError, match="no report at .*knack-nb reports"):
        ri.render_html("reports/demo-dev/upload_metadata/19990101T000000.000Z_app.ipynb")
    with pytest.raises(ConfigError, match="not a report"):
        ri.render_html("reports/demo-dev/upload_metadata/x.html")


# --- command line -----------------------------------------------------------------------------


def test_cli_table(runs: Runs, capsys: pytest.CaptureFixture[str]):
    assert cli() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "app-env", "notebook", "container", "status", "secs"]
    # each run: its row, then indented its key (what --html takes), counts and error
    failed_line, failed_key, failed_error, ok_line, ok_key, ok_counts = lines[1:]
    assert failed_line.split()[1:5] == ["demo-dev", "knack_container_to_s3", "object_3", "failed"]
    assert failed_key == f"  {runs.key(runs.failed)}"
    assert failed_error.startswith("  error: In [")
    assert BAD_DATE_ERROR in failed_error
    assert failed_error.endswith("…")  # the long message is cut; --json has all of it
    assert ok_line.split()[1:5] == ["demo-dev", "upload_metadata", "-", "ok"]
    assert ok_key == f"  {runs.key(runs.ok)}"
    assert ok_counts.startswith("  counts: fetched=1 written=1 unchanged=0 errors=0")
    ok_time = ok_line.split()[0]
    assert dt.datetime.strptime(ok_time, "%Y-%m-%dT%H:%M:%SZ")
    assert all(len(line) <= ri.TABLE_WIDTH for line in lines)

    def rows(out: str) -> list[str]:
        return [line for line in out.splitlines()[1:] if not line.startswith(" ")]

    assert cli("--failed", "--app-name", "demo", "--env", "dev") == 0
    assert [line.split()[4] for line in rows(capsys.readouterr().out)] == ["failed"]
    assert cli("--limit", "1") == 0
    out = capsys.readouterr().out
    assert "knack_container_to_s3" in out and "upload_metadata" not in out.splitlines()[1]
    assert len(rows(out)) == 2 and "--limit 0" in rows(out)[-1]


def test_cli_json_has_everything_and_no_secret(runs: Runs, capsys: pytest.CaptureFixture[str]):
    assert cli("--json", "--notebook", "knack_container_to_s3") == 0
    out = capsys.readouterr().out
    (entry,) = json.loads(out)
    assert entry["status"] == "failed" and entry["error"] == runs.failed.error
    assert entry["url"] == runs.failed.report and entry["container"] == "object_3"
    assert entry["parameters"]["date"] == "not-a-date"
    assert dt.datetime.fromisoformat(entry["time"]).tzinfo is not None
    for secret in runs.stack.secrets:
        assert secret not in out


def test_cli_nothing_matches_and_bad_input(
    runs: Runs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    assert cli("--app-name", "demo", "--env", "prod") == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        f"no run reports match --app-name demo --env prod in s3://{runs.bucket}/reports/demo-prod/"
    )
    assert cli("--json", "--since", "2999-01-01") == 0
    assert json.loads(capsys.readouterr().out) == []

    assert cli("--since", "soon") == 2
    assert "date 'soon' does not parse" in capsys.readouterr().err
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "gone-bucket")
    assert cli() == 1
    err = capsys.readouterr().err
    assert "s3://gone-bucket/reports/" in err and "KNACK_SERVICES_BUCKET" in err


def test_cli_html(runs: Runs, capsys: pytest.CaptureFixture[str]):
    assert cli("--html", runs.key(runs.failed)) == 0
    local = runs.key(runs.failed).replace("reports/", "reports-html/", 1).removesuffix(".ipynb")
    assert capsys.readouterr().out.strip() == (
        f"wrote {local}.html (also {runs.failed.report.removesuffix('.ipynb')}.html)"
    )
    assert cli("--html", "reports/nope.ipynb") == 1
    assert "no report at" in capsys.readouterr().err


def test_key_names_with_dashed_app_names():
    c = ri._parse_key("reports/data-tracker-dev/upload_metadata/20261129T090503.120Z_app.ipynb")
    assert (c.app_env, c.app_name, c.env, c.notebook, c.container) == (
        "data-tracker-dev",
        "data-tracker",
        "dev",
        "upload_metadata",
        "app",
    )
    assert c.time == dt.datetime(2026, 11, 29, 9, 5, 3, 120000, tzinfo=dt.UTC)
    assert ri.search_prefix(app_name="data-tracker") == "reports/data-tracker-"
    assert ri.search_prefix(
        app_name="data-tracker", env="prod", notebook="knack_container_to_s3.ipynb"
    ) == ("reports/data-tracker-prod/knack_container_to_s3/")
