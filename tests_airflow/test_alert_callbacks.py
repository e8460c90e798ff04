"""Alerts from the generated DAGs with real Airflow: the callbacks, the health DAG, and a
real scheduler run.

The scheduler run: Airflow's own scheduler (LocalExecutor), DAG processor and API server
(the tasks' execution API) run as processes of their own on a SQLite database, on the demo
app's ``view_6`` DAG with a schedule of every minute, one retry a second after a failure.
Knack answers 500 for view_6's records (the emulator's fault on that path) until a person
has been told; then it answers again. A webhook receiver on 127.0.0.1 (apprise's ``json://``
in ``KNACK_ALERT_URLS``) must get exactly one failure message, sent once the retry failed
too, then one recovered message; the reports they name are in S3, and no credential is in
anything it received.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests
import yaml

try:  # Airflow 3
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models import DagBag

from emulators.stack import Stack
from lib import config
from lib.alerts import airflow as alert
from lib.jobs import registry
from lib.reports import entry_from_notebook

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
sys.path.insert(0, str(ROOT / "tests"))  # the webhook receiver, shared with tests/
from webhook import Receiver  # noqa: E402

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID, JOB, CONTAINER = "knack_demo_view_6", "knack_container_to_s3", "view_6"
WAIT = 300  # seconds at most for each message (each comes within a minute or two here)
FAULT = {"status": 500, "fail_next": 10_000, "fail_path": f"/views/{CONTAINER}/"}


def test_the_health_dag_of_each_app(monkeypatch):
    monkeypatch.setenv("KNACK_ENV", "dev")
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    for app in config.known_apps():
        dag = bag.dags[f"knack_{app}_health"]
        (task,) = dag.tasks
        assert task.task_id == "health" and dag.schedule == "30 6 * * *"
        assert task.parameters == {"app_name": app, "env": "dev"}
        assert (task.pool, task.retries) == (f"knack_{app}", 0)  # a rerun finds the same
        assert task.execution_timeout == registry.time_limit("health")
        assert task.on_failure_callback == [alert.on_failure]


def test_a_try_that_will_be_retried_is_not_said():
    # Airflow retries a failed try while its number (1-based) is at most the task's retries
    assert alert.will_retry(1, 2) and alert.will_retry(2, 2) and not alert.will_retry(3, 2)
    assert not alert.will_retry(1, 0)
    error = RuntimeError("Kernel died\nmore lines")
    assert alert.error_line(error) == "RuntimeError: Kernel died"


# --- the scheduler run ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # a bucket of its own: moto's S3 lives in this process, and the stacks of the modules
    # after this one (their atd-knack-services) must not see what these runs wrote
    with Stack(bucket="alert-callbacks-test") as s:
        yield s


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def airflow_env(stack, receiver, tmp_path_factory) -> dict[str, str]:
    """An Airflow home of its own: a copy of this process's SQLite database (``conftest.py``)
    once migrated here (``test_dags_test_e2e.py`` uses it after: migrating it once serves
    both) with the app's pool; LocalExecutor; the demo's params with view_6 alone, due every
    minute, one retry a second after a failure."""
    airflow_cli("db", "migrate")
    airflow_cli("pools", "set", "knack_demo", "1", "the demo's Knack tasks")
    home = tmp_path_factory.mktemp("airflow-scheduler-home")
    source = sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")
    with contextlib.closing(source), contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        source.backup(db)  # what its write-ahead log holds too
    params = tmp_path_factory.mktemp("params")
    demo = yaml.safe_load((config.params_dir() / "demo.yaml").read_text())
    demo["containers"] = {
        CONTAINER: {
            **demo["containers"][CONTAINER],
            "schedule": "* * * * *",
            "retries": 1,
            "retry_delay_seconds": 1,
        }
    }
    (params / "demo.yaml").write_text(yaml.safe_dump(demo))
    api = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KNACK_"))}
    env.update(stack.env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            # the app's health DAG (due daily, its last tick passed) must not run here
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
            "AIRFLOW__API__PORT": str(api),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "KNACK_PARAMS_DIR": str(params),
            "KNACK_ENV": "dev",
            "KNACK_ALERT_URLS": receiver.url,
        }
    )
    return env


def airflow_cli(*args: str) -> None:
    """``airflow ARGS`` in this process, on its Airflow configuration."""
    from airflow.cli import cli_parser

    parsed = cli_parser.get_parser().parse_args(list(args))
    parsed.func(parsed)


def start(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    """``airflow NAME`` in a process group of its own (its workers and kernels with it)."""
    with (logs / f"{name}.log").open("w") as out:
        return subprocess.Popen(
            [AIRFLOW, name],
            env=env,
            cwd=env["AIRFLOW_HOME"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(processes: dict[str, subprocess.Popen]) -> None:
    for proc in reversed(processes.values()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in processes.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def until(what: str, done, processes: dict[str, subprocess.Popen]) -> None:
    """Wait (at most ``WAIT`` seconds) until ``done()``, the processes running meanwhile."""
    deadline = time.monotonic() + WAIT
    while not done():
        for name, proc in processes.items():
            assert proc.poll() is None, f"airflow {name} ended"
        assert time.monotonic() < deadline, f"not {what} in {WAIT} s"
        time.sleep(0.5)


def api_up(env: dict[str, str]) -> bool:
    url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].removesuffix("/execution/")
    try:
        return requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok
    except (requests.ConnectionError, requests.Timeout):
        return False


def unpaused(env: dict[str, str], dag_id: str) -> bool:
    """Unpause ``dag_id`` once the DAG processor has written it; whether it is."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db", timeout=30) as con:
        return con.execute("UPDATE dag SET is_paused = 0 WHERE dag_id = ?", (dag_id,)).rowcount == 1


@pytest.fixture(scope="module")
def scheduled(stack, receiver, airflow_env, tmp_path_factory) -> Iterator[dict]:
    """The scheduler run: the failure's message, then the recovery's (see the docstring)."""
    logs = tmp_path_factory.mktemp("airflow-logs")
    stack.knack.faults.update(FAULT)
    processes: dict[str, subprocess.Popen] = {}
    try:
        # the tasks reach the API server (the execution API): up before any task starts
        processes["api-server"] = start("api-server", airflow_env, logs)
        until("the API server up", lambda: api_up(airflow_env), processes)
        for name in ("dag-processor", "scheduler"):
            processes[name] = start(name, airflow_env, logs)
        until(f"{DAG_ID} written", lambda: unpaused(airflow_env, DAG_ID), processes)
        until("a failure said", lambda: len(receiver.messages) >= 1, processes)
        failed_tries = task_tries(airflow_env)
        stack.knack.faults.update({"fail_next": 0, "fail_path": None})  # Knack answers again
        until("a recovery said", lambda: len(receiver.messages) >= 2, processes)
    except AssertionError:
        for path in sorted(logs.glob("*.log")):
            print(f"--- {path.name}\n{path.read_text()[-3000:]}")
        raise
    finally:
        stop(processes)
    yield {"failed_tries": failed_tries, "logs": logs}


def task_tries(env: dict[str, str]) -> list[tuple[str, int, str]]:
    """(run_id, try_number, state) of the sync task, as the database holds them now."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as con:
        return con.execute(
            "SELECT run_id, try_number, state FROM task_instance WHERE dag_id = ? AND task_id = ?"
            " ORDER BY run_id",
            (DAG_ID, JOB),
        ).fetchall()


def report_entry(stack: Stack, url: str):
    key = url.removeprefix(f"s3://{stack.bucket}/")
    body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    return entry_from_notebook(nbformat.reads(body, as_version=4), bucket=stack.bucket, key=key)


def test_a_person_gets_one_failure_after_the_retries_then_one_recovery(stack, receiver, scheduled):
    failed, recovered = receiver.messages
    assert (failed["type"], recovered["type"]) == ("failure", "success")
    assert failed["title"] == f"✗ demo-dev · {CONTAINER} · {JOB} failed"
    assert recovered["title"] == f"✓ demo-dev · {CONTAINER} · {JOB} recovered"
    # said once its last try failed: the failing run's sync was on its second try (one retry)
    first_run = scheduled["failed_tries"][0]
    assert first_run[1] == 2, scheduled["failed_tries"]
    lines = failed["message"].splitlines()
    assert lines[0].startswith(
        f"Error: KnackAPIError: Knack kept failing GET /pages/scene_1/views/{CONTAINER}/records:"
        " HTTP 500 after 6 attempts"
    )
    assert lines[1].startswith("Will a rerun alone help? yes")
    assert lines[2] == "Attempts: 2 of 2 (no retry left)"
    assert lines[3].startswith("Failing since ") and lines[3].endswith(", 1 run failed")
    report = lines[4].removeprefix("Report: ")
    page = lines[5].removeprefix("Report as a page: ")
    entry = report_entry(stack, report)
    assert entry.status == "failed" and lines[0] == f"Error: {entry.error}"
    assert entry.container == CONTAINER and entry.notebook == JOB
    assert page.removeprefix(f"s3://{stack.bucket}/") in stack.s3_keys("reports/")

    rlines = recovered["message"].splitlines()
    assert rlines[0].startswith("Succeeded after ") and " failed, failing since " in rlines[0]
    assert rlines[1] == f"Last error: {entry.error}"
    ok = report_entry(stack, rlines[2].removeprefix("Report: "))
    assert ok.status == "ok" and ok.time > entry.time

    for secret in [*stack.secrets, receiver.url]:
        assert not [text for text in receiver.raw if secret in text], secret[:6]


def test_the_history_is_cleared_after_the_recovery(stack, scheduled):
    key = f"_state/demo-dev/alerts/{JOB}/{CONTAINER}.json"
    history = json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read())
    assert history == {
        "failing_since": None,
        "failed_runs": 0,
        "last_error": None,
        "said_at": None,
        "said_error": None,
    }
