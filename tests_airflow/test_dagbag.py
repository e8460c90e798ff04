"""Every DAG generated from params imports with real Airflow and has the expected shape.

Loaded through Airflow's own ``DagBag`` (what the DAG processor does), for the shipped params
and for a temporary params folder: a container added to params is a DAG, no Python edit.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import shutil
import typing
from pathlib import Path
from types import SimpleNamespace

import lazy_object_proxy
import pydantic
import pytest

try:  # Airflow 3
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models import DagBag

from airflow.providers.papermill.operators.papermill import PapermillOperator

from emulators.stack import Stack
from lib import config
from lib.alerts import airflow as alert
from lib.jobs import registry

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
UTC = dt.UTC
PUBLISH = {
    "socrata": "upsert_knack_container_to_socrata",
    "agol": "knack_container_to_agol",
    "postgres": "knack_container_to_postgres",
    "knack": "knack_container_to_knack",
}
KNACK_TASKS = {"upload_metadata", "knack_container_to_s3"}  # the tasks that call Knack


def load(monkeypatch, params_dir: Path | None = None, env: str = "dev") -> DagBag:
    monkeypatch.setenv("KNACK_ENV", env)
    if params_dir is not None:
        monkeypatch.setenv("KNACK_PARAMS_DIR", str(params_dir))
    return DagBag(dag_folder=str(DAGS_DIR))


def dags_module():
    """``dags/knack_dags.py`` as a module (its helpers), built from the shipped params."""
    path = DAGS_DIR / "knack_dags.py"
    spec = importlib.util.spec_from_file_location("knack_dags_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def expected_edges(cfg: config.ContainerConfig) -> set[tuple[str, str]]:
    result = {("upload_metadata", "knack_container_to_s3")}
    for key, notebook in PUBLISH.items():
        if getattr(cfg, key) is not None:
            result.add(("knack_container_to_s3", notebook))
    return result


def render(task, prev_success, run_after: dt.datetime) -> dict:
    """The task's templated fields as Airflow renders them for a run."""
    context = {
        "prev_start_date_success": prev_success,
        "dag_run": SimpleNamespace(run_after=run_after, logical_date=run_after),
    }
    task.render_template_fields(context)
    return {"parameters": task.parameters, "output_nb": task.output_nb, "input_nb": task.input_nb}


def test_every_shipped_container_is_a_dag_with_the_expected_tasks_and_order(monkeypatch):
    bag = load(monkeypatch)
    assert bag.import_errors == {}
    expected = {
        f"knack_{app}_{container}": (app, config.load_app(app).container(container))
        for app in config.known_apps()
        for container in config.load_app(app).containers
    }
    backups = {f"{d}_socrata_backup" for d, (_, cfg) in expected.items() if cfg.socrata}
    health = {f"knack_{app}_health" for app in config.known_apps()}  # test_alert_callbacks.py
    assert set(bag.dag_ids) == set(expected) | backups | health  # backups: test_backup_dags.py
    for dag_id, (app, cfg) in expected.items():
        dag = bag.dags[dag_id]
        assert edges(dag) == expected_edges(cfg), dag_id
        assert dag.schedule == cfg.schedule
        assert dag.catchup is False and dag.max_active_runs == 1
        for task in dag.tasks:
            assert isinstance(task, PapermillOperator)
            upload = task.task_id == "upload_metadata"
            assert type(task).__name__ == ("UploadMetadata" if upload else "Notebook") + "Operator"
            # a time limit (the job's own: the shipped params set none) and the alerts
            assert task.execution_timeout == registry.time_limit(task.task_id)
            assert task.on_failure_callback == [alert.on_failure]
            assert task.on_success_callback == [alert.on_success]
            # Knack's limit is per app: its Knack tasks share the app's pool, publishing doesn't
            # (but to another Knack app: in that app's pool)
            pool = f"knack_{app}" if task.task_id in KNACK_TASKS else "default_pool"
            if task.task_id == PUBLISH["knack"]:
                pool = f"knack_{cfg.knack.app_name}"
            assert (task.pool, task.pool_slots) == (pool, 1), (dag_id, task.task_id)
            # the sync runs when upload_metadata is skipped (metadata already fresh)
            assert task.trigger_rule == (
                "none_failed" if task.task_id == "knack_container_to_s3" else "all_success"
            )
            assert task.retries == cfg.retries
            assert task.kernel_name == "python3"
            assert Path(task.input_nb) == ROOT / "notebooks" / f"{task.task_id}.ipynb"
            assert Path(task.input_nb).is_file()
            keys = {"app_name", "env"} | (
                {"container", "date"} if task.task_id != "upload_metadata" else set()
            )
            assert set(task.parameters) == keys
            assert task.parameters["env"] == "dev"


def test_the_demo_dag(monkeypatch):
    dag = load(monkeypatch).dags["knack_demo_object_3"]
    assert sorted(t.task_id for t in dag.tasks) == sorted(
        [
            "upload_metadata",
            "knack_container_to_s3",
            "upsert_knack_container_to_socrata",
            "knack_container_to_agol",
            "knack_container_to_postgres",
            "knack_container_to_knack",
        ]
    )
    assert dag.get_task("upload_metadata").downstream_task_ids == {"knack_container_to_s3"}
    assert dag.get_task("knack_container_to_s3").downstream_task_ids == {
        "upsert_knack_container_to_socrata",
        "knack_container_to_agol",
        "knack_container_to_postgres",
        "knack_container_to_knack",
    }
    # the publish to another Knack app runs in that app's pool (params/demo-copy.yaml)
    assert dag.get_task("knack_container_to_knack").pool == "knack_demo-copy"
    assert dag.schedule == "@hourly"
    assert dag.get_task("knack_container_to_agol").retries == 2
    # PostgreSQL is not Knack: its publish takes no slot of the app's Knack pool
    assert dag.get_task("knack_container_to_postgres").pool == "default_pool"
    assert dag.get_task("upload_metadata").parameters == {"app_name": "demo", "env": "dev"}


def test_a_container_added_to_params_adds_its_dag_with_its_settings(monkeypatch, tmp_path):
    shutil.copy(ROOT / "params" / "demo.yaml", tmp_path / "demo.yaml")
    (tmp_path / "new-app.yaml").write_text(
        "app_id: {prod: 0123456789abcdef01234567}\n"
        "concurrent_knack_tasks: 2\n"
        "containers:\n"
        "  view_12:\n"
        "    scene: scene_3\n"
        "    schedule: '*/15 * * * *'\n"
        "    retries: 0\n"
        "    retry_delay_seconds: 30\n"
        "    execution_timeout_minutes: 45\n"
        "    full_run_schedule: null\n"
        "    socrata: {resource_id: abcd-1234}\n"
        "  object_7:\n"
        "    schedule: null\n"
    )
    bag = load(monkeypatch, tmp_path, env="prod")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "knack_demo_object_3",
        "knack_demo_view_6",
        "knack_new-app_view_12",
        "knack_new-app_object_7",
        "knack_demo_object_3_socrata_backup",  # test_backup_dags.py
        "knack_new-app_view_12_socrata_backup",
        "knack_demo_health",  # one per app: test_alert_callbacks.py
        "knack_new-app_health",
    }
    dag = bag.dags["knack_new-app_view_12"]
    assert dag.schedule == "*/15 * * * *"
    assert edges(dag) == {
        ("upload_metadata", "knack_container_to_s3"),
        ("knack_container_to_s3", "upsert_knack_container_to_socrata"),
    }
    assert {t.retries for t in dag.tasks} == {0}
    assert {t.retry_delay for t in dag.tasks} == {dt.timedelta(seconds=30)}
    # every task of the container's DAGs takes its execution_timeout_minutes, its backup's too
    assert {t.execution_timeout for t in dag.tasks} == {dt.timedelta(minutes=45)}
    backup = bag.dags["knack_new-app_view_12_socrata_backup"].tasks[0]
    assert backup.execution_timeout == dt.timedelta(minutes=45)
    # without it, each job's own limit
    other = bag.dags["knack_new-app_object_7"]
    assert {t.task_id: t.execution_timeout.total_seconds() / 60 for t in other.tasks} == {
        "upload_metadata": 15,
        "knack_container_to_s3": 120,
    }
    assert {t.task_id: t.pool for t in dag.tasks} == {
        "upload_metadata": "knack_new-app",
        "knack_container_to_s3": "knack_new-app",
        "upsert_knack_container_to_socrata": "default_pool",
    }
    assert bag.dags["knack_demo_view_6"].get_task("upload_metadata").pool == "knack_demo"
    assert dag.get_task("knack_container_to_s3").parameters["env"] == "prod"
    assert bag.dags["knack_new-app_object_7"].schedule is None  # manual only
    assert edges(bag.dags["knack_new-app_object_7"]) == {
        ("upload_metadata", "knack_container_to_s3")
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("  object_1: {retries: 99}\n", r"bad\.yaml.*containers\.object_1\.retries"),
        (
            "  object_1: {schedul: '@daily'}\n",
            r"bad\.yaml.*unknown key 'containers\.object_1\.schedul'",
        ),
        (
            "  object_1: {full_run_schedule: monthly}\n",
            r"bad\.yaml: containers\.object_1\.full_run_schedule: 'monthly' is not a cron",
        ),
        (
            "  object_1: {schedule: 'every hour'}\n",
            r"bad\.yaml: containers\.object_1\.schedule: 'every hour' is not a cron",
        ),
    ],
)
def test_bad_params_are_import_errors_that_name_file_and_key(monkeypatch, tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(
        "app_id: {dev: 0123456789abcdef01234567}\ncontainers:\n" + text
    )
    bag = load(monkeypatch, tmp_path)
    assert not bag.dags
    [error] = bag.import_errors.values()
    assert re.search(message, error), error


def test_every_destination_in_params_has_a_publish_notebook():
    module = dags_module()
    destinations = set()
    for name, field in config.ContainerConfig.model_fields.items():
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        if any(isinstance(k, type) and issubclass(k, pydantic.BaseModel) for k in kinds):
            destinations.add(name)
    assert destinations == set(module.PUBLISH_NOTEBOOKS) == set(PUBLISH)
    for notebook in module.PUBLISH_NOTEBOOKS.values():
        assert (ROOT / "notebooks" / f"{notebook}.ipynb").is_file()


def test_run_date_first_run_incremental_and_periodic_full_runs():
    run_date = dags_module().run_date
    monthly = "0 7 1 * *"
    run = SimpleNamespace(run_after=dt.datetime(2026, 11, 15, 10, tzinfo=UTC), logical_date=None)
    prev = dt.datetime(2026, 11, 15, 9, 0, 3, tzinfo=UTC)
    assert run_date(None, run, monthly) == ""  # the first run is full
    assert run_date(lazy_object_proxy.Proxy(lambda: None), run, monthly) == ""  # Airflow 3
    assert run_date(prev, run, monthly) == "2026-11-15T09:00:03+00:00"
    assert run_date(lazy_object_proxy.Proxy(lambda: prev), run, monthly) == prev.isoformat()
    # the first run at or after the monthly tick is full, the next ones incremental again
    at_tick = SimpleNamespace(run_after=dt.datetime(2026, 12, 1, 7, tzinfo=UTC))
    before = dt.datetime(2026, 12, 1, 6, 0, 2, tzinfo=UTC)
    assert run_date(before, at_tick, monthly) == ""
    after = SimpleNamespace(run_after=dt.datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert run_date(dt.datetime(2026, 12, 1, 7, 0, 2, tzinfo=UTC), after, monthly) != ""
    # a failed full run: the next run is full again (its previous success is before the tick)
    assert run_date(before, after, monthly) == ""
    assert run_date(before, at_tick, None) == before.isoformat()  # no periodic full run


def run(*, start_date, run_after, logical_date=None) -> SimpleNamespace:
    """A ``dag_run`` as the Task SDK's template context carries it (the fields read here)."""
    return SimpleNamespace(start_date=start_date, run_after=run_after, logical_date=logical_date)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_run_date_on_a_schedulers_clock():
    """A scheduler sets ``start_date`` to the real time the run starts, ``run_after`` is the
    tick it was due at; the previous success's start is on the same real clock."""
    run_date, monthly = dags_module().run_date, "0 7 1 * *"
    # no full-run tick between the previous success's start and this run's: incremental
    nov = run(start_date=at("2026-11-15T10:00:04"), run_after=at("2026-11-15T10:00"))
    assert run_date(at("2026-11-15T09:00:03"), nov, monthly) == "2026-11-15T09:00:03+00:00"
    # the run due at the tick (07:00 UTC on the 1st) is full, the next incremental again
    tick = run(start_date=at("2026-12-01T07:00:03"), run_after=at("2026-12-01T07:00"))
    assert run_date(at("2026-12-01T06:00:02"), tick, monthly) == ""
    after = run(start_date=at("2026-12-01T08:00:02"), run_after=at("2026-12-01T08:00"))
    assert run_date(at("2026-12-01T07:00:03"), after, monthly) == "2026-12-01T07:00:03+00:00"
    # a run due before the tick that started after it (it waited for a long run: one at a
    # time) is the full run; the next one, due at the tick, is incremental from its start
    late = run(start_date=at("2026-12-01T07:05"), run_after=at("2026-12-01T06:00"))
    assert run_date(at("2026-12-01T05:00:02"), late, monthly) == ""
    next_ = run(start_date=at("2026-12-01T08:10"), run_after=at("2026-12-01T07:00"))
    assert run_date(at("2026-12-01T07:05"), next_, monthly) == "2026-12-01T07:05:00+00:00"


def test_run_date_under_airflow_dags_test_whatever_the_real_now():
    """``airflow dags test`` stores the logical date as the run's ``start_date`` (so as the
    next run's ``prev_start_date_success``) and the real now as ``run_after``: the date
    follows the logical dates, whatever day the test runs on."""
    run_date, monthly = dags_module().run_date, "0 7 1 * *"
    nows = ["2026-12-01T22:21", "2026-11-02T09:30", "2027-03-15T12:00", "2026-10-01T00:00"]
    for now in map(at, nows):
        # logical dates an hour apart with no tick between them: incremental
        second = run(
            start_date=at("2026-11-02T09:00"), run_after=now, logical_date=at("2026-11-02T09:00")
        )
        assert run_date(at("2026-11-02T08:00"), second, monthly) == "2026-11-02T08:00:00+00:00"
        # a tick between the two logical dates: full
        past_tick = run(
            start_date=at("2026-12-01T08:00"), run_after=now, logical_date=at("2026-12-01T08:00")
        )
        assert run_date(at("2026-11-30T23:00"), past_tick, monthly) == ""
        assert run_date(at("2026-12-01T07:00"), past_tick, monthly) == "2026-12-01T07:00:00+00:00"


def test_rendered_templates_hold_no_credential(monkeypatch):
    with Stack() as stack:  # its random credentials, as a worker's environment would hold
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "reports-bucket")
    bag = load(monkeypatch)
    run_after = dt.datetime(2026, 11, 2, 8, tzinfo=UTC)
    prev = dt.datetime(2026, 11, 2, 7, 0, 1, tzinfo=UTC)
    for dag in bag.dags.values():
        for task in dag.tasks:
            rendered = render(task, prev, run_after)
            text = repr(rendered)
            leaked = [s for s in stack.secrets if s in text]
            assert leaked == [], f"{dag.dag_id}.{task.task_id} renders a credential"
            params = rendered["parameters"]
            container = params.get("container")
            assert set(params.values()) <= {params["app_name"], "dev", container, prev.isoformat()}
            assert re.fullmatch(
                rf"s3://reports-bucket/reports/{re.escape(params['app_name'])}-dev/"
                rf"{task.task_id}/\d{{8}}T\d{{6}}\.\d{{3}}Z_{container or 'app'}\.ipynb",
                rendered["output_nb"],
            ), rendered["output_nb"]


def test_first_run_renders_a_full_run(monkeypatch):
    dag = load(monkeypatch).dags["knack_demo_object_3"]
    task = dag.get_task("knack_container_to_agol")
    rendered = render(
        task, lazy_object_proxy.Proxy(lambda: None), dt.datetime(2026, 11, 2, 8, tzinfo=UTC)
    )
    assert rendered["parameters"] == {
        "app_name": "demo",
        "env": "dev",
        "container": "object_3",
        "date": "",
    }
