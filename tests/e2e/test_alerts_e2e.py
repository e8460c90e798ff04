"""Alerts through ``knack-nb run ... --alert`` (papermill, the reports in S3) to a webhook
receiver on 127.0.0.1 (apprise's ``json://``), and the time limits of ``knack-nb run``.

A container whose Knack answers 500 fails twice, then succeeds twice: the receiver gets one
failure message (the second failure is the same error on the same day) and one recovered
message (the first success after it), each naming app-env, container and job, the error's
line, whether a rerun helps, the attempts, how long and how many runs, and the report (its
key exists in S3, and the HTML page of the failed run's report). No credential is in any
message. A run that hangs past its limit, and one whose kernel dies, fail with a report
that says so.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from inprocess import run
from webhook import Receiver

from lib import alerts
from lib.alerts.history import AlertHistory
from lib.alerts.messages import Outcome
from lib.clients.app_store import AppStore
from lib.reports import entry_from_notebook, run_notebook

KNACK_NB = str(Path(sys.executable).with_name("knack-nb"))
JOB, CONTAINER = "knack_container_to_s3", "view_6"
FAULT = {"status": 500, "fail_next": 6}  # every attempt of the client's first request


@pytest.fixture
def receiver(demo_env, monkeypatch):
    with Receiver() as r:
        monkeypatch.setenv("KNACK_ALERT_URLS", f"  {r.url}, ")
        yield r


def knack_nb_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KNACK_NB, "run", JOB, "-a", "demo", "-e", "dev", "-c", CONTAINER, "-q", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def s3_key(stack, url: str) -> str:
    prefix = f"s3://{stack.bucket}/"
    assert url.startswith(prefix), url
    return url.removeprefix(prefix)


def test_one_failure_message_then_one_recovered_message(demo_env, receiver):
    stack = demo_env
    assert run("upload_metadata", app_name="demo", env="dev").ok
    outputs = []
    for failing in (True, True, False, False):
        if failing:
            stack.knack.faults.update(FAULT)
        done = knack_nb_run("--alert")
        assert done.returncode == (1 if failing else 0), done.stderr
        outputs.append(done.stdout + done.stderr)

    failed, recovered = receiver.messages  # nothing for the repeat, nothing for the 2nd ok
    assert failed["type"] == "failure" and recovered["type"] == "success"
    assert failed["title"] == f"✗ demo-dev · {CONTAINER} · {JOB} failed"
    lines = failed["message"].splitlines()
    assert lines[0] == (
        "Error: KnackAPIError: Knack kept failing GET /pages/scene_1/views/view_6/records: "
        "HTTP 500 after 6 attempts (Internal Server Error (emulated fault)); retry later: "
        "reruns are safe"
    )
    assert lines[1] == (
        "Will a rerun alone help? yes: a service or the machine failed for a while; a rerun "
        "completes the work"
    )
    assert lines[2] == "Attempts: 1 of 1"
    assert lines[3].startswith("Failing since ") and lines[3].endswith(" s), 1 run failed")
    report, page = lines[4].removeprefix("Report: "), lines[5].removeprefix("Report as a page: ")
    assert (
        report.endswith(f"_{CONTAINER}.ipynb") and page == report.removesuffix(".ipynb") + ".html"
    )
    keys = stack.s3_keys("reports/")
    assert s3_key(stack, report) in keys and s3_key(stack, page) in keys
    body = stack.s3().get_object(Bucket=stack.bucket, Key=s3_key(stack, report))["Body"].read()
    entry = entry_from_notebook(
        nbformat.reads(body.decode(), as_version=4), bucket=stack.bucket, key=s3_key(stack, report)
    )
    assert entry.status == "failed" and lines[0] == f"Error: {entry.error}"

    assert recovered["title"] == f"✓ demo-dev · {CONTAINER} · {JOB} recovered"
    rlines = recovered["message"].splitlines()
    assert rlines[0].startswith("Succeeded after 2 runs failed, failing since ")
    assert rlines[1] == f"Last error: {entry.error}"
    ok_report = rlines[2].removeprefix("Report: ")
    assert s3_key(stack, ok_report) in keys and ok_report != report

    # what each run printed about its alert
    assert f"alert: sent: {failed['title']}" in outputs[0]
    assert "alert: none (nothing new to say)" in outputs[1]
    assert f"alert: sent: {recovered['title']}" in outputs[2]
    assert "alert: none (nothing new to say)" in outputs[3]
    # no credential, and not the alert URL, in anything a person received or was shown
    texts = receiver.raw + outputs
    for secret in [*stack.secrets, receiver.url]:
        assert not [t for t in texts if secret in t], secret[:6]


def test_without_alert_urls_nothing_is_said_or_kept(demo_env, monkeypatch):
    monkeypatch.delenv("KNACK_ALERT_URLS", raising=False)
    assert run("upload_metadata", app_name="demo", env="dev").ok
    demo_env.knack.faults.update({"status": 400, "fail_next": 1})
    done = knack_nb_run("--alert")
    assert done.returncode == 1
    assert "alert: none sent: KNACK_ALERT_URLS is not set" in done.stderr
    assert demo_env.s3_keys("_state/demo-dev/alerts/") == []


def test_the_same_error_is_said_again_a_day_later_and_a_new_error_at_once(demo_env, receiver):
    """The alert path in process on an injected clock (its history in S3)."""
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    store = AppStore(app_name="demo", env="dev")

    def failed(error: str, hours: float) -> str | None:
        outcome = Outcome("demo", "dev", JOB, CONTAINER, ok=False, error=error, rerun_helps=False)
        said = alerts.notify(outcome, now=start + dt.timedelta(hours=hours), store=store)
        return said.title if said else None

    error = "ConfigError: field_9 is gone from object_3"
    assert failed(error, 0) is not None
    assert failed(error, 1) is None and failed(error, 23.9) is None
    assert failed(error, 24) is not None  # a day after it was said
    assert failed("StoreError: access denied", 25) is not None  # another error: at once
    history = AlertHistory(store, JOB, CONTAINER).read()
    assert history.failed_runs == 5 and history.failing_since == start
    assert [m["message"].splitlines()[3] for m in receiver.messages] == [
        "Failing since 2026-03-01 12:00 UTC (0 s), 1 run failed",
        "Failing since 2026-03-01 12:00 UTC (24 h), 4 runs failed",
        "Failing since 2026-03-01 12:00 UTC (25 h), 5 runs failed",
    ]
    ok = Outcome("demo", "dev", JOB, CONTAINER, ok=True, report="s3://b/reports/x.ipynb")
    assert alerts.notify(ok, now=start + dt.timedelta(hours=26), store=store) is not None
    assert alerts.notify(ok, now=start + dt.timedelta(hours=27), store=store) is None
    assert [m["type"] for m in receiver.messages] == ["failure"] * 3 + ["success"]


HANG = "import time\ntime.sleep(120)"
DIE = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"


def stopping_notebook(tmp_path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('app_name = "demo"\nenv = "dev"')
    params.metadata["tags"] = ["parameters"]
    start = nbformat.v4.new_code_cell(
        'from lib import notebook\nnotebook.start("stops", app_name=app_name, env=env)'
    )
    nb.cells = [params, start, nbformat.v4.new_code_cell(source), nbformat.v4.new_code_cell("1")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    path = tmp_path / "stops.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("source", "ename", "says"),
    [
        (HANG, "TimeoutError", "it ran past its time limit of 3 s"),
        (DIE, "DeadKernelError", "its kernel died"),
    ],
    ids=["hangs", "dies"],
)
def test_a_run_that_hangs_or_whose_kernel_dies_ends_with_a_report_saying_so(
    demo_env, tmp_path, source, ename, says
):
    path = stopping_notebook(tmp_path, source)
    out = tmp_path / "report.ipynb"
    done = run_notebook(
        str(path), app_name="demo", env="dev", output=str(out), limit=dt.timedelta(seconds=3)
    )
    assert not done.ok
    assert done.error.startswith(f"{ename}: the run was stopped: {says}")
    nb = nbformat.read(out, as_version=4)
    entry = entry_from_notebook(nb, bucket="", key=str(out))
    assert (entry.status, entry.error) == ("failed", done.error)
    # the error is on the cell that was running: In [4] (the parameters, papermill's
    # injected ones, notebook.start, then it), unless the kernel died before it echoed the
    # cell's input (then it has no number)
    (stopped,) = [c for c in nb.cells if c.get("source") == source]
    assert stopped["outputs"][-1]["ename"] == ename
    assert entry.error_cell == stopped.get("execution_count") in (4, None)
    (header,) = [
        o["data"]["text/html"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "knack-nb-header" in o.get("data", {}).get("text/html", "")
    ]
    assert 'data-status="failed"' in header and f"{ename}: the run was stopped" in header
    assert nb.cells[0]["metadata"]["tags"] == ["papermill-error-cell-tag"]
    assert nb.cells[-1]["execution_count"] is None  # the cell after it never ran
