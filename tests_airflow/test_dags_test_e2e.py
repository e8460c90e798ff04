"""``airflow dags test`` runs the demo DAG end to end with real Airflow and a SQLite database.

The demo stack (moto's S3 server, the Knack, Socrata and ArcGIS emulators) runs in this
process; Airflow runs in subprocesses whose environment is the stack's (credentials in the
environment only, as on a worker). Two runs: the first is a full run, the second an
incremental run from the start of the first (``prev_start_date_success``).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lib import config
from lib.emulators.knack import load_fixture_app
from lib.emulators.stack import DEMO_AGOL_SERVICE, DEMO_DATASET, Stack

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"
CONTAINER = "object_3"
DAG_ID = f"knack_demo_{CONTAINER}"
NOTEBOOKS = (
    "upload_metadata",
    "knack_container_to_s3",
    "upsert_knack_container_to_socrata",
    "knack_container_to_agol",
)
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
TIMEOUT = 600  # seconds for one `airflow dags test` (a run takes well under a minute here)
KNACK_NB = str(Path(sys.executable).with_name("knack-nb"))
API_SERVER_START = 90  # seconds; it starts in ~15 s here


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with Stack() as s:
        yield s


@pytest.fixture(scope="module")
def airflow(stack: Stack, tmp_path_factory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite database; the environment of its commands."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KNACK_"))}
    env.update(stack.env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "KNACK_ENV": "dev",
        }
    )
    run(["db", "migrate"], env)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [AIRFLOW, *args],
        env=env,
        cwd=env["AIRFLOW_HOME"],
        text=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, (
        f"airflow {' '.join(args)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    )
    return done


def rendered(env: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(run_id, task_id, rendered fields) as Airflow stored them, in run order."""
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT r.run_id, r.task_id, r.rendered_fields FROM rendered_task_instance_fields r "
            "JOIN dag_run d ON d.dag_id = r.dag_id AND d.run_id = r.run_id "
            "WHERE r.dag_id = ? ORDER BY d.logical_date",
            (DAG_ID,),
        ).fetchall()
        starts = dict(
            con.execute(
                "SELECT run_id, start_date FROM dag_run WHERE dag_id = ?", (DAG_ID,)
            ).fetchall()
        )
    return [(run_id, task, json.loads(fields)) for run_id, task, fields in rows], starts


def logical_dates(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Two logical dates an hour apart, in the past, with no ``full_run_schedule`` tick of
    the demo container between them, whatever ``now`` is: the hours after the latest tick
    at least three hours ago (``airflow dags test`` takes a run's logical date as its
    start, so as the next run's ``prev_start_date_success``)."""
    knack_dags = dags_module()
    schedule = config.load_app("demo").container(CONTAINER).full_run_schedule
    if schedule:
        anchor = knack_dags.last_tick(schedule, now - dt.timedelta(hours=3))
    else:
        anchor = (now - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    first, second = anchor + dt.timedelta(hours=1), anchor + dt.timedelta(hours=2)
    assert second < now
    assert not schedule or knack_dags.last_tick(schedule, second) < first
    return first, second


def dags_module():
    """``dags/knack_dags.py`` as a module (its cron helper), built from the shipped params."""
    spec = importlib.util.spec_from_file_location("knack_dags_e2e", DAGS_DIR / "knack_dags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_runs(airflow, stack) -> dict[str, subprocess.CompletedProcess]:
    """Two ``airflow dags test`` runs of the demo DAG, an hour apart (logical dates relative
    to now, no full-run tick between them); S3 and the emulators as the first one left them
    are captured before the second runs."""
    dates = logical_dates(dt.datetime.now(dt.UTC))
    first = run(["dags", "test", DAG_ID, dates[0].isoformat()], airflow)
    after_first = {
        "records": [k for k in stack.s3_keys("demo-dev/object_3/") if k.endswith(".json")],
        "reports": stack.s3_keys("reports/demo-dev/"),
    }
    second = run(["dags", "test", DAG_ID, dates[1].isoformat()], airflow)
    return {"first": first, "second": second, "after_first": after_first}


def test_dags_test_runs_the_demo_dag_into_s3_socrata_and_arcgis(airflow, stack, demo_runs):
    first, second = demo_runs["first"], demo_runs["second"]

    records = demo_runs["after_first"]["records"]
    ids = {Path(k).stem for k in records}
    assert ids == {r["id"] for r in load_fixture_app()[1]["object_3"]}  # all 25 records
    assert {r["id"] for r in stack.socrata.rows(DEMO_DATASET)} == ids
    features = stack.arcgis.features(DEMO_AGOL_SERVICE, 0)
    assert features and {f["attributes"]["id"] for f in features} <= ids

    reports = demo_runs["after_first"]["reports"]
    for notebook in NOTEBOOKS:
        suffix = "_app.ipynb" if notebook == "upload_metadata" else "_object_3.ipynb"
        assert [
            k
            for k in reports
            if k.startswith(f"reports/demo-dev/{notebook}/") and k.endswith(suffix)
        ], f"no report of {notebook} in {reports}"

    # the second run starts from the first's start: an incremental run
    fields, starts = rendered(airflow)
    by_run: dict[str, dict[str, dict]] = {}
    for run_id, task, values in fields:
        by_run.setdefault(run_id, {})[task] = values
    assert len(by_run) == 2 and all(set(tasks) == set(NOTEBOOKS) for tasks in by_run.values())
    (run1, tasks1), (run2, tasks2) = by_run.items()
    for task in NOTEBOOKS[1:]:
        assert tasks1[task]["parameters"]["date"] == ""  # the first run is full
        incremental = tasks2[task]["parameters"]["date"]
        assert incremental and incremental[:19] == starts[run1].replace(" ", "T")[:19]
        assert tasks2[task]["parameters"] == {
            "app_name": "demo",
            "env": "dev",
            "container": "object_3",
            "date": incremental,
        }
    assert len(stack.s3_keys("reports/demo-dev/")) == 2 * len(NOTEBOOKS)

    # no credential in the rendered parameters, the reports, the task logs or the output
    texts = {
        "rendered fields": json.dumps(fields),
        "airflow output": first.stdout + first.stderr + second.stdout + second.stderr,
    }
    for key in stack.s3_keys("reports/"):
        body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        texts[key] = body.decode()
    for log in (Path(airflow["AIRFLOW_HOME"]) / "logs").rglob("*"):
        if log.is_file():
            texts[str(log)] = log.read_text(errors="replace")
    leaks = {
        (where, secret[:6])
        for where, text in texts.items()
        for secret in stack.secrets
        if secret in text
    }
    assert len(texts) >= 2 + 2 * len(NOTEBOOKS) and all(texts.values())
    assert leaks == set()


def test_last_success_asks_airflows_own_api_server(airflow, demo_runs, tmp_path):
    """``knack-nb last-success`` against ``airflow api-server`` on loopback, on the database
    the two runs above left (the recorded-answer tests are tests/test_last_success.py)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**airflow, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "reviewer:admin"}
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen([AIRFLOW, "api-server", "--port", str(port)], env=env,
                              cwd=airflow["AIRFLOW_HOME"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + API_SERVER_START
        while True:
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "airflow api-server did not start in time"
            time.sleep(0.5)
        passwords = Path(airflow["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        cli_env = {**airflow, "AIRFLOW_API_URL": url, "AIRFLOW_USERNAME": "reviewer",
                   "AIRFLOW_PASSWORD": json.loads(passwords.read_text())["reviewer"]}

        def last_success(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([KNACK_NB, "last-success", *args], env=cli_env, text=True,
                                  capture_output=True, timeout=60)

        with sqlite3.connect(Path(airflow["AIRFLOW_HOME"]) / "airflow.db") as con:
            (newest,) = con.execute(
                "SELECT MAX(start_date) FROM dag_run WHERE dag_id = ? AND state = 'success'",
                (DAG_ID,),
            ).fetchone()
        expected = dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC)
        seconds = last_success("--dag", DAG_ID)
        assert seconds.returncode == 0, seconds.stderr
        assert int(seconds.stdout) == int(expected.timestamp())
        iso = last_success("--dag", DAG_ID, "--iso")
        assert dt.datetime.fromisoformat(iso.stdout.strip()) == expected
        unknown = last_success("--dag", "knack_demo_object_999")
        assert unknown.returncode == 1 and "no DAG 'knack_demo_object_999'" in unknown.stderr
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
