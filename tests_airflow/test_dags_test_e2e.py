"""``airflow dags test`` runs the demo DAGs end to end with real Airflow and a SQLite database.

The demo stack (moto's S3 server, the Knack, Socrata and ArcGIS emulators) runs in this
process; Airflow runs in subprocesses whose environment is the stack's (credentials in the
environment only, as on a worker). The Airflow home has the pools ``knack-nb airflow-pools``
generates, imported with ``airflow pools import``. Two runs of the demo DAG (``airflow dags
test``, one after the other in one interpreter: ``airflow_commands.py``): the first is a
full run (and fetches the app's metadata), the second an incremental run from the start of
the first (``prev_start_date_success``), which finds the metadata fetched after its tick and
does not fetch it again. Last, runs of two container DAGs of the app go through Airflow's own
scheduling steps (``scheduler_queue.py``) to show the app's pool at work.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest
import requests

from emulators.knack import load_fixture_app
from emulators.knack_pair import DEMO_COPY_APP_ID, DEMO_COPY_MATCH
from emulators.stack import DEMO_AGOL_SERVICE, DEMO_DATASET, Stack
from lib import cli, config

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"
CONTAINER = "object_3"
DAG_ID = f"knack_demo_{CONTAINER}"
OTHER_DAG_ID = "knack_demo_view_6"  # another container DAG of the same app
NOTEBOOKS = (
    "upload_metadata",
    "knack_container_to_s3",
    "upsert_knack_container_to_socrata",
    "knack_container_to_agol",
    "knack_container_to_postgres",
    "knack_container_to_knack",
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
    """This process's Airflow home (``conftest.py``) with its SQLite database migrated and
    the Knack pools imported; the environment of the Airflow commands run in subprocesses.

    The pools file is ``knack-nb airflow-pools -o FILE`` of the shipped params plus one app
    allowed 3 Knack tasks at once (no DAG of it runs here), then ``airflow pools import``,
    as a deployment does before the DAGs run. ``airflow db migrate`` and ``airflow pools
    import`` run in this process (:func:`airflow_cli`), sparing two interpreter starts."""
    from airflow.configuration import conf

    home = Path(os.environ["AIRFLOW_HOME"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KNACK_"))}
    env.update(stack.env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conf.get("database", "sql_alchemy_conn"),
            "KNACK_ENV": "dev",
        }
    )
    airflow_cli("db", "migrate")
    params = tmp_path_factory.mktemp("params")
    for path in config.params_dir().glob("*.yaml"):
        shutil.copy(path, params)
    (params / "busy-app.yaml").write_text(
        "app_id: {dev: 0123456789abcdef01234567}\nconcurrent_knack_tasks: 3\n"
        "containers: {object_1: {}}\n"
    )
    pools = params / "knack-pools.json"
    with mock.patch.dict(os.environ, {"KNACK_PARAMS_DIR": str(params)}):
        assert cli.main(["airflow-pools", "--output", str(pools)]) == 0
    airflow_cli("pools", "import", str(pools))
    return env


def airflow_cli(*args: str) -> None:
    """``airflow ARGS`` in this process: the parser and the command the executable runs,
    on this process's Airflow configuration (the home and database of :func:`airflow`)."""
    from airflow.cli import cli_parser

    parsed = cli_parser.get_parser().parse_args(list(args))
    parsed.func(parsed)


def metadata_requests(stack: Stack) -> int:
    """How many times the Knack emulator was asked for the demo app's metadata (the publish
    to the other Knack app reads that app's own, not counted here)."""
    demo = f"/v1/applications/{stack.fixture_app_id}"
    return sum(r.path == demo for r in stack.knack.requests)


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


class AirflowCommands:
    """``airflow`` commands run one after the other by one interpreter of their own
    (``airflow_commands.py``: the executable's ``main`` for each, Airflow started once), in
    the environment of the Airflow commands; each answers like :func:`run`."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env, self.tmp_path, self.n = env, tmp_path, 0
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("airflow_commands.py"))],
            env=env,
            cwd=env["AIRFLOW_HOME"],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def run(self, args: list[str]) -> subprocess.CompletedProcess:
        self.n += 1
        out, err = (self.tmp_path / f"{self.n}.{name}" for name in ("stdout", "stderr"))
        self.proc.stdin.write(
            json.dumps({"args": args, "stdout": str(out), "stderr": str(err)}) + "\n"
        )
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        answer = self.proc.stdout.readline() if ready else ""
        done = subprocess.CompletedProcess(
            [AIRFLOW, *args],
            json.loads(answer)["returncode"] if answer else None,
            out.read_text() if out.exists() else "",
            err.read_text() if err.exists() else "",
        )
        assert done.returncode == 0, (
            f"airflow {' '.join(args)} failed ({'exit ' if answer else 'no answer in '}"
            f"{done.returncode if answer else TIMEOUT} s):\n"
            f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
        )
        return done

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def demo_runs(airflow, stack, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Two ``airflow dags test`` runs of the demo DAG, an hour apart (logical dates relative
    to now, no full-run tick between them), by one interpreter (:class:`AirflowCommands`);
    S3 and the emulators as the first one left them are captured before the second runs."""
    dates = logical_dates(dt.datetime.now(dt.UTC))
    commands = AirflowCommands(airflow, tmp_path_factory.mktemp("airflow-commands"))
    try:
        first = commands.run(["dags", "test", DAG_ID, dates[0].isoformat()])
        after_first = {
            "records": [k for k in stack.s3_keys("demo-dev/object_3/") if k.endswith(".json")],
            "reports": stack.s3_keys("reports/demo-dev/"),
            "metadata_requests": metadata_requests(stack),
        }
        second = commands.run(["dags", "test", DAG_ID, dates[1].isoformat()])
    finally:
        commands.close()
    yield {"dates": dates, "first": first, "second": second, "after_first": after_first}


def test_dags_test_runs_the_demo_dag_into_s3_socrata_and_arcgis(airflow, stack, demo_runs):
    records = demo_runs["after_first"]["records"]
    ids = {Path(k).stem for k in records}
    assert ids == {r["id"] for r in load_fixture_app()[1]["object_3"]}  # all 25 records
    assert {r["id"] for r in stack.socrata.rows(DEMO_DATASET)} == ids
    features = stack.arcgis.features(DEMO_AGOL_SERVICE, 0)
    assert features and {f["attributes"]["id"] for f in features} <= ids
    with psycopg.connect(stack.postgres.url) as conn:  # the PostgreSQL task's table
        assert {r[0] for r in conn.execute("SELECT id FROM knack.demo_object_3")} == ids
    copies = stack.knack.records(DEMO_COPY_APP_ID, "object_3")  # the other Knack app
    assert {r[f"{DEMO_COPY_MATCH}_raw"] for r in copies} == ids and len(copies) == len(ids)

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
    # the first run's reports and the second's, but for its metadata upload (skipped)
    n_reports = len(NOTEBOOKS) + len(NOTEBOOKS) - 1
    assert len(stack.s3_keys("reports/demo-dev/")) == n_reports

    # no credential in the rendered parameters, the reports, the task logs or the output
    texts = {
        "rendered fields": json.dumps(fields),
        "airflow output": "".join(
            demo_runs[name].stdout + demo_runs[name].stderr for name in ("first", "second")
        ),
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
    assert len(texts) >= 2 + n_reports and all(texts.values())
    assert leaks == set()


def task_states(env: dict[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """{(dag_id, logical date): {task_id: state}} of every task instance Airflow recorded."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as con:
        rows = con.execute(
            "SELECT t.dag_id, d.logical_date, t.task_id, t.state FROM task_instance t "
            "JOIN dag_run d ON d.dag_id = t.dag_id AND d.run_id = t.run_id"
        ).fetchall()
    states: dict[tuple[str, str], dict[str, str]] = {}
    for dag_id, logical_date, task_id, state in rows:
        when = dt.datetime.fromisoformat(logical_date).replace(tzinfo=dt.UTC).isoformat()
        states.setdefault((dag_id, when), {})[task_id] = state
    return states


def test_pools_import_of_the_generated_file_gives_one_pool_per_app(airflow, demo_runs):
    with sqlite3.connect(Path(airflow["AIRFLOW_HOME"]) / "airflow.db") as con:
        pools = dict(con.execute("SELECT pool, slots FROM slot_pool").fetchall())
    expected = {f"knack_{app}": 1 for app in config.known_apps()}  # shipped: the default
    assert pools == {"default_pool": 128, **expected, "knack_busy-app": 3}


def test_the_metadata_is_not_fetched_again_by_a_run_whose_tick_is_before_the_last_fetch(
    airflow, stack, demo_runs
):
    """The first run fetched the metadata (one request to Knack, an upload_metadata report)
    and recorded when; the second run's tick is an hour later but still before that fetch
    (``airflow dags test`` runs past ticks), so its upload_metadata is skipped and the rest
    runs on the stored metadata. (Two DAGs of the app at one tick: the same record, see
    test_knack_pools_and_metadata.py; one after the other through the pool: below.)"""
    first, later = (d.isoformat() for d in demo_runs["dates"])
    states = task_states(airflow)
    assert states[(DAG_ID, first)] == dict.fromkeys(NOTEBOOKS, "success")
    assert states[(DAG_ID, later)] == {
        **dict.fromkeys(NOTEBOOKS, "success"),
        "upload_metadata": "skipped",
    }
    assert demo_runs["after_first"]["metadata_requests"] == 1
    assert metadata_requests(stack) == 1
    output = demo_runs["second"].stdout + demo_runs["second"].stderr
    assert "at or after this run's tick" in output
    assert stack.s3_keys("reports/demo-dev/upload_metadata/") == [
        k for k in demo_runs["after_first"]["reports"] if "/upload_metadata/" in k
    ]
    # when the fetch started, recorded in S3: after the logical dates (they are in the past)
    marker = json.loads(
        stack.s3()
        .get_object(Bucket=stack.bucket, Key="_state/demo-dev/upload_metadata.json")["Body"]
        .read()
    )
    assert marker["app_id"] == config.load_app("demo").app_id_for("dev")
    assert dt.datetime.fromisoformat(marker["started"]) > demo_runs["dates"][1]


def test_last_success_asks_airflows_own_api_server(airflow, demo_runs, tmp_path):
    """``knack-nb last-success`` against ``airflow api-server`` on loopback, on the database
    the runs above left (the recorded-answer tests are tests/emulators/test_last_success.py)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**airflow, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "reviewer:admin"}
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen(
        [AIRFLOW, "api-server", "--port", str(port)],
        env=env,
        cwd=airflow["AIRFLOW_HOME"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + API_SERVER_START
        while True:
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                pass
            assert server.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "airflow api-server did not start in time"
            time.sleep(0.5)
        passwords = Path(airflow["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        cli_env = {
            **airflow,
            "AIRFLOW_API_URL": url,
            "AIRFLOW_USERNAME": "reviewer",
            "AIRFLOW_PASSWORD": json.loads(passwords.read_text())["reviewer"],
        }

        def last_success(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [KNACK_NB, "last-success", *args],
                env=cli_env,
                text=True,
                capture_output=True,
                timeout=60,
            )

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


def test_the_pool_queues_one_knack_task_of_the_app_at_a_time(airflow, demo_runs):
    """Runs of object_3 and view_6 through Airflow's own scheduling steps on this database
    (the DAGs as ``airflow dags test`` serialized them, the pools as imported):
    ``scheduler_queue.py`` lets the scheduler's critical section queue what it may, marks
    what it queued done, and repeats. The app's pool (1 slot) lets one of its Knack tasks
    through at a time, the other DAG's waiting; publishing tasks are not held by it."""
    from scheduler_queue import queue_steps

    steps, runs = queue_steps([DAG_ID, OTHER_DAG_ID])
    assert runs == {DAG_ID: "success", OTHER_DAG_ID: "success"}
    knack = [
        [(dag, task) for dag, task, pool in step["queued"] if pool == "knack_demo"]
        for step in steps
    ]
    assert all(len(queued) == 1 for queued in knack), steps  # never two at once
    assert sorted(sum(knack, [])) == sorted(
        (dag, task)
        for dag in (DAG_ID, OTHER_DAG_ID)
        for task in ("upload_metadata", "knack_container_to_s3")
    )
    # while one DAG's Knack task was queued, the other DAG's waited for the slot
    assert steps[0] == {
        "queued": [(DAG_ID, "upload_metadata", "knack_demo")],
        "waiting": [(OTHER_DAG_ID, "upload_metadata", "knack_demo")],
    }
    # the publishing tasks went with view_6's upload_metadata, in Airflow's default pool, but
    # the publish to the other Knack app, in that app's pool
    publish = {(d, t) for step in steps for d, t, pool in step["queued"] if pool == "default_pool"}
    assert publish == {(DAG_ID, t) for t in NOTEBOOKS[2:] if t != "knack_container_to_knack"}
    copy = {(d, t) for step in steps for d, t, pool in step["queued"] if pool == "knack_demo-copy"}
    assert copy == {(DAG_ID, "knack_container_to_knack")}
    assert any(
        {pool for _, _, pool in step["queued"]} >= {"knack_demo", "default_pool"} for step in steps
    )
