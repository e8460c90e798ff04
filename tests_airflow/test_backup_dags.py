"""The Socrata backup DAGs (issue 14) with real Airflow: one per container that publishes to
Socrata and has a ``socrata.backup_schedule``, from params with no Python edit.

Loaded through Airflow's ``DagBag`` for the shipped params and for temporary params folders;
last, ``airflow dags test`` runs the demo's backup DAG against the stand-ins (a stack of
this module's own, the session's Airflow home), writing a backup to S3.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.papermill.operators.papermill import PapermillOperator
from test_dagbag import ROOT, load
from test_dags_test_e2e import airflow_cli, run

from emulators.stack import DEMO_DATASET, Stack
from lib import config

BACKUP_DAG_ID = "knack_demo_object_3_socrata_backup"
BACKUP_PREFIX = f"_backups/demo-dev/object_3/socrata-{DEMO_DATASET}/"
APP_ID = "0123456789abcdef01234567"
BACKUP_BUCKET = "knack-backup-dags-test"


def rendered_output_nb(task) -> str:
    """The report URL the task's ``output_nb`` renders to (its macros are the DAG's)."""
    now = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
    task.render_template_fields({"dag_run": SimpleNamespace(run_after=now, logical_date=now)})
    return task.output_nb


def assert_backup_dag(dag, app: str, container: str, cfg: config.ContainerConfig, env: str):
    assert dag.dag_id == f"knack_{app}_{container}_socrata_backup"
    [task] = dag.tasks  # one task, no upstream: it waits for nothing, not the container DAG
    assert isinstance(task, PapermillOperator) and task.task_id == "backup_socrata"
    assert task.execution_timeout == dt.timedelta(minutes=60)  # the job's own limit
    assert task.parameters == {"app_name": app, "env": env, "container": container}
    assert Path(task.input_nb) == ROOT / "notebooks" / "backup_socrata.ipynb"
    assert task.output_nb == (
        f"{{{{ knack_report_url('backup_socrata', '{app}', '{env}', '{container}') }}}}"
    )
    assert re.fullmatch(
        rf"s3://reports-bucket/reports/{re.escape(app)}-{env}/backup_socrata/"
        rf"\d{{8}}T\d{{6}}\.\d{{3}}Z_{container}\.ipynb",
        rendered_output_nb(task),
    )
    assert (task.pool, task.pool_slots) == ("default_pool", 1)  # never calls Knack
    assert task.retries == cfg.retries and task.retry_delay == dt.timedelta(minutes=5)
    assert task.kernel_name == "python3"
    assert dag.schedule == cfg.socrata.backup_schedule
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.start_date == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert {"knack", "backup", "socrata", app, container, env} <= set(dag.tags)
    assert cfg.socrata.resource_id in dag.doc_md


def test_the_shipped_params_give_a_backup_dag_for_each_socrata_container(monkeypatch):
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "reports-bucket")
    bag = load(monkeypatch)
    assert bag.import_errors == {}
    expected = {
        f"knack_{app}_{container}_socrata_backup": (app, container, cfg)
        for app in config.known_apps()
        for container, cfg in config.load_app(app).containers.items()
        if cfg.socrata is not None
    }
    # the shipped params keep the default schedule: every Socrata container is backed up
    assert {cfg.socrata.backup_schedule for _, _, cfg in expected.values()} == {"0 6 * * *"}
    assert {d for d in bag.dag_ids if d.endswith("_socrata_backup")} == set(expected)
    assert BACKUP_DAG_ID in expected and len(expected) == 4
    for dag_id, (app, container, cfg) in expected.items():
        assert_backup_dag(bag.dags[dag_id], app, container, cfg, "dev")
    assert Path(bag.dags[BACKUP_DAG_ID].tasks[0].input_nb).is_file()
    # the container DAGs are unchanged: no backup task in them
    assert all(
        "backup_socrata" not in dag.task_ids
        for dag_id, dag in bag.dags.items()
        if dag_id not in expected
    )


def test_backup_schedule_null_gives_no_backup_dag_and_a_preset_is_the_schedule(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "reports-bucket")
    (tmp_path / "my-app.yaml").write_text(
        f"app_id: {{prod: {APP_ID}}}\n"
        "containers:\n"
        "  object_1:\n"
        "    socrata: {resource_id: abcd-0001, backup_schedule: null}\n"
        "  object_2:\n"
        "    retries: 0\n"
        "    socrata: {resource_id: abcd-0002, backup_schedule: '@weekly', backup_keep: 5}\n"
        "  view_3:\n"
        "    scene: scene_1\n"
        "    schedule: null\n"
        "    socrata: {resource_id: abcd-0003}\n"
        "  object_4: {}\n"
    )
    bag = load(monkeypatch, tmp_path, env="prod")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "knack_my-app_object_1",
        "knack_my-app_object_2",
        "knack_my-app_view_3",
        "knack_my-app_object_4",
        "knack_my-app_object_2_socrata_backup",
        # the default daily backup, though the container DAG itself runs only by hand
        "knack_my-app_view_3_socrata_backup",
        "knack_my-app_health",  # the app's health check (test_alert_callbacks.py)
    }
    app = config.load_app("my-app", tmp_path)
    weekly = bag.dags["knack_my-app_object_2_socrata_backup"]
    assert_backup_dag(weekly, "my-app", "object_2", app.container("object_2"), "prod")
    assert weekly.schedule == "@weekly"
    assert weekly.tasks[0].retries == 0
    assert "newest 5" in weekly.doc_md
    daily = bag.dags["knack_my-app_view_3_socrata_backup"]
    assert_backup_dag(daily, "my-app", "view_3", app.container("view_3"), "prod")
    assert daily.schedule == "0 6 * * *"
    assert bag.dags["knack_my-app_view_3"].schedule is None


@pytest.mark.parametrize("value", ["every day", "61 6 * * *", "@fortnightly"])
def test_an_invalid_backup_schedule_fails_the_import_naming_file_and_key(
    monkeypatch, tmp_path, value
):
    (tmp_path / "bad.yaml").write_text(
        f"app_id: {{dev: {APP_ID}}}\ncontainers:\n"
        f"  object_1: {{socrata: {{resource_id: abcd-1234, backup_schedule: '{value}'}}}}\n"
    )
    bag = load(monkeypatch, tmp_path)
    assert not bag.dags
    [error] = bag.import_errors.values()
    key = r"bad\.yaml: containers\.object_1\.socrata\.backup_schedule"
    assert re.search(rf"{key}: {re.escape(repr(value))} is not a cron expression", error), error


# --- airflow dags test of the demo's backup DAG ------------------------------------------

DEMO_ROWS = [  # a few rows of the demo dataset (text with a comma, a quote and a line break)
    {"id": "6000a0000000000000000001", "short_text": "one", "number": 1, "yes_no": True},
    {"id": "6000a0000000000000000002", "short_text": 'two, "2"\nlines', "number": 2.5},
    {
        "id": "6000a0000000000000000003",
        "short_text": "three",
        "address_lat_lon": {"type": "Point", "coordinates": [-97.74, 30.27]},
    },
]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The demo stack with a bucket of its own: moto's servers in one process share one
    store, so the other modules' stacks would see (and count) what this one writes."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with Stack(bucket=BACKUP_BUCKET) as s:
        yield s


@pytest.fixture(scope="module")
def airflow(stack: Stack) -> dict[str, str]:
    """The environment of ``airflow`` subprocesses on this session's Airflow home
    (``conftest.py``), its database migrated; the stack's variables, as on a worker. The
    backup task runs in Airflow's default pool: no Knack pool to import."""
    from airflow.configuration import conf

    airflow_cli("db", "migrate")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KNACK_"))}
    database = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conf.get("database", "sql_alchemy_conn")}
    return {**env, **stack.env, **database, "KNACK_ENV": "dev"}


def test_dags_test_backs_the_demo_dataset_up_to_s3(airflow, stack):
    assert stack.socrata.upsert_rows(DEMO_DATASET, DEMO_ROWS)["Rows Created"] == len(DEMO_ROWS)
    logical_date = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    done = run(["dags", "test", BACKUP_DAG_ID, logical_date.isoformat()], airflow)

    [key] = stack.s3_keys(BACKUP_PREFIX)
    assert re.fullmatch(re.escape(BACKUP_PREFIX) + r"\d{8}T\d{6}Z\.csv\.gz", key), key
    body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    header, *rows = csv.reader(io.StringIO(gzip.decompress(body).decode("utf-8")))
    assert "id" in header
    served = stack.socrata.rows(DEMO_DATASET)
    assert len(rows) == len(served) == len(DEMO_ROWS)
    ids = [row[header.index("id")] for row in rows]
    assert sorted(ids) == sorted(r["id"] for r in served)
    texts = {row[header.index("short_text")] for row in rows}
    assert texts == {r["short_text"] for r in DEMO_ROWS}  # the comma, quote and line break kept

    [report] = stack.s3_keys("reports/demo-dev/backup_socrata/")
    assert report.endswith("_object_3.ipynb")
    assert stack.s3_keys("reports/") == [report]  # the backup DAG's only task
    assert stack.knack.requests == []  # it never calls Knack

    with sqlite3.connect(Path(airflow["AIRFLOW_HOME"]) / "airflow.db") as con:
        states = con.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (BACKUP_DAG_ID,)
        ).fetchall()
        [(fields,)] = con.execute(
            "SELECT rendered_fields FROM rendered_task_instance_fields WHERE dag_id = ?",
            (BACKUP_DAG_ID,),
        ).fetchall()
    assert states == [("backup_socrata", "success")]
    assert json.loads(fields)["parameters"] == {
        "app_name": "demo",
        "env": "dev",
        "container": "object_3",
    }
    # no credential in the report, the rendered fields or Airflow's output
    texts = [
        stack.s3().get_object(Bucket=stack.bucket, Key=report)["Body"].read().decode(),
        fields,
        done.stdout + done.stderr,
    ]
    assert [s[:6] for s in stack.secrets if any(s in text for text in texts)] == []
