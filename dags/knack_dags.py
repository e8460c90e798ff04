"""Airflow DAGs built from params: one DAG per app × container (and one per Socrata
backup), no Python edit per container.

For each container of each ``params/<app>.yaml`` (or ``KNACK_PARAMS_DIR``), the DAG
``knack_<app>_<container>`` runs the notebooks with ``PapermillOperator``::

    upload_metadata >> knack_container_to_s3 >> [one publish task per destination configured]

and each container with ``socrata:`` and a ``socrata.backup_schedule`` (daily at 06:00 UTC
by default; null: none) has the DAG ``knack_<app>_<container>_socrata_backup``: one task,
``backup_socrata``, that copies the dataset to ``_backups/`` in S3 and keeps the newest
``socrata.backup_keep``. It reads Socrata only (no Knack pool) and does not wait for the
container DAG: a backup of the public dataset is independent of the sync.

- The tasks come from the jobs' registry (``lib/jobs/registry.py``): each task's notebook
  and parameters, a publish task per registered destination the container configures, and
  the Knack pool for the jobs that call Knack.
- Schedule and retries come from the container's params (``schedule``, or
  ``socrata.backup_schedule``; ``retries``, ``retry_delay_seconds``; see ``lib/config.py`` for
  the defaults). One run at a time, no catch-up.
- Time limits: every task has an ``execution_timeout``, the container's
  ``execution_timeout_minutes`` or else its job's own (``lib/jobs/registry.py``). A task
  stopped by it, or whose kernel dies, fails with its report saying so
  (``lib/reports/stopped.py``).
- Alerts: every task's ``on_failure_callback`` and ``on_success_callback`` are
  ``lib.alerts.airflow``'s: a task that failed for good (no retry left) is said to the apprise
  URLs of ``KNACK_ALERT_URLS`` (none set: nothing is said), the same error of the same task
  once a day, and the first success after failures as recovered.
- Health: each app has the DAG ``knack_<app>_health`` (one task, ``health``, daily at
  ``HEALTH_SCHEDULE``, in the app's Knack pool, no retry): the health notebook checks every
  container, and fails (so alerts) when one fails.
- The tasks that call Knack (``upload_metadata``, ``knack_container_to_s3``) run in the
  app's pool ``knack_<app>`` (``lib/airflow_pools.py``: ``concurrent_knack_tasks`` slots,
  the clients sharing the app's ``requests_per_second``), so the container DAGs of one app
  stay under Knack's per-app limit together. Publishing tasks never call the source app;
  the publish to another Knack app (``knack_container_to_knack``) runs in the pool of that
  destination app (``knack.app_name``), whose limit its writes count against.
- Metadata once per app per schedule tick: ``upload_metadata`` runs its notebook only if
  the metadata was last fetched before this run's tick (``_state/<app>-<env>/
  upload_metadata.json``, written when it succeeds), else it is skipped and the container
  task (trigger rule ``none_failed``) uses the stored metadata, fetched after the tick.
- ``date``: the start of the previous successful run of the DAG (``prev_start_date_success``),
  so a failed run's records are taken again by the next one. The first run is full, and so
  is the first run at or after each tick of the container's ``full_run_schedule`` (monthly
  by default), so records deleted in Knack leave every destination. A full run passes
  ``date=""``, which the notebooks read as a full run (like None or 0).
- Reports: ``output_nb`` is ``s3://<bucket>/reports/<app>-<env>/<notebook>/<UTC time>_<container
  or app>.ipynb``, the layout of ``lib.reports.report_key`` (``knack-nb run`` writes the same),
  stamped when the attempt starts so a retry keeps the failed attempt's report.
- Parameters are non-secret identifiers only (app_name, env, container, and date but for
  the backup): papermill writes every parameter into the report. Credentials reach the
  kernel through the task's environment (DESIGN.md's variables), which the kernel inherits.

Deployment: the ``knack-notebooks`` package installed in Airflow's environment (the kernel
``python3`` is that environment's Python, and it imports ``lib``), this repository's
``notebooks/`` next to ``dags/`` (or ``KNACK_NOTEBOOKS_DIR``), and ``KNACK_ENV`` (``prod``,
the default, or ``dev``) plus the service variables in the environment of the DAG processor
and the workers.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from croniter import croniter

try:  # Airflow 3
    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.exceptions import AirflowSkipException
from airflow.providers.papermill.operators.papermill import PapermillOperator

from lib import config
from lib.airflow_pools import pool_name
from lib.alerts import airflow as alert
from lib.errors import ConfigError
from lib.jobs import registry
from lib.reports import report_key
from lib.reports.stopped import mark_stopped, stop_reason
from lib.state import RunStore

NOTEBOOKS_DIR = Path(
    os.environ.get("KNACK_NOTEBOOKS_DIR") or Path(__file__).resolve().parent.parent / "notebooks"
)
ENV = config.check_env(os.environ.get("KNACK_ENV") or "prod")
# The jobs of the DAGs, from the jobs' registry (lib/jobs/registry.py): a job's parameters
# are its notebook's, and a job that calls Knack runs in the app's Knack pool.
UPLOAD_METADATA = registry.get("upload_metadata")
CONTAINER_TO_S3 = registry.get("knack_container_to_s3")
BACKUP_SOCRATA = registry.get("backup_socrata")
HEALTH = registry.get("health")
HEALTH_SCHEDULE = "30 6 * * *"  # daily, 06:30 UTC: after the backups (06:00 by default)
# A ContainerConfig destination key -> the notebook that publishes to it: every registered
# destination (tests_airflow checks every destination in params has one).
PUBLISH_NOTEBOOKS = {key: job.name for key, job in registry.destinations().items()}
# Airflow's schedule presets that are not cron expressions to croniter
AIRFLOW_PRESETS = {"@once", "@continuous", "@quarterly"}
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # no catch-up: only sets the first tick


# --- what the templates call (DAG user macros) -----------------------------------------


def run_date(prev_success: Any, dag_run: Any, full_run_schedule: str | None) -> str:
    """The ``date`` parameter of a run: ISO start of the previous successful run, or ``""``
    (a full run) for the first run and the first run at or after a ``full_run_schedule`` tick.

    The tick is looked for between the previous success's start and this run's own start,
    both ``DagRun.start_date``, so one clock on both sides: a scheduler's (when it set the
    run running) or ``airflow dags test``'s (the logical date, while ``run_after`` is the real
    now). A run that waited past a tick (``max_active_runs=1``) is full, though due before it.

    ``prev_success`` may be a lazy proxy of None (Airflow 3): test it by truth, not identity.
    """
    if not prev_success:
        return ""
    prev = _utc(prev_success)
    if full_run_schedule and prev < last_tick(full_run_schedule, _run_start(dag_run)):
        return ""
    return prev.isoformat()


def last_tick(schedule: str, now: dt.datetime) -> dt.datetime:
    """The latest tick of cron ``schedule`` (UTC) at or before ``now``."""
    return croniter(schedule, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)


def report_url(notebook: str, app_name: str, env: str, container: str | None = None) -> str:
    """Where this attempt's report goes: the bucket and key ``knack-nb run`` would use.

    Rendered when the attempt starts, in the worker, so the bucket is the one the notebook
    itself reads (``KNACK_SERVICES_BUCKET``) and each attempt keeps its own report.
    """
    key = report_key(app_name=app_name, env=env, notebook=notebook, container=container)
    return f"s3://{config.bucket()}/{key}"


def schedule_tick(dag_run: Any) -> dt.datetime:
    """The schedule tick a run is for: when it was due, ``data_interval_end`` (with Airflow
    3's cron schedules the logical date; under ``airflow dags test`` the date given), else
    its logical date, else when it was triggered (``run_after``)."""
    return _first_time(dag_run, "data_interval_end", "logical_date", "run_after")


def _run_start(dag_run: Any) -> dt.datetime:
    """When this run started, on the clock ``prev_start_date_success`` comes from.

    ``dag_run.start_date`` is what the previous success's start was read from: the scheduler
    sets it to the real time when it sets the run running, ``airflow dags test`` to the
    logical date (and ``run_after`` to the real now). A run not started yet (no start_date)
    falls back to when it was due: ``run_after`` (Airflow 3), the logical date, or now.
    """
    return _first_time(dag_run, "start_date", "run_after", "logical_date")


def _first_time(dag_run: Any, *names: str) -> dt.datetime:
    """The first of the run's times ``names`` that is set (UTC), else now."""
    for name in names:
        when = getattr(dag_run, name, None)
        if when:
            return _utc(when)
    return dt.datetime.now(dt.UTC)


def _utc(when: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(when) if isinstance(when, str) else when
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


# --- the tasks -------------------------------------------------------------------------


class NotebookOperator(PapermillOperator):
    """``PapermillOperator`` whose report says why a run was stopped from outside its cells:
    its ``execution_timeout`` passed (Airflow's ``AirflowTaskTimeout``) or its kernel died
    (nbclient's ``DeadKernelError``); papermill leaves such a report with no error."""

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except BaseException as e:  # AirflowTaskTimeout is a BaseException
            stop = stop_reason(e, limit=self.execution_timeout)
            if stop is not None:
                mark_stopped(str(getattr(self.output_nb, "url", self.output_nb)), *stop)
            raise


class UploadMetadataOperator(NotebookOperator):
    """``upload_metadata``, run once per app per schedule tick.

    Every container DAG of an app starts with this task, in the app's pool. The first one
    of a tick runs the notebook (which writes its report) and, when it succeeds, records in
    S3 when it started; one that then finds that record at or after its own tick is skipped
    (the stored metadata is newer than the tick) and its container task runs against the
    stored metadata. With one pool slot the Knack tasks of a tick run one after another, so
    the first fetches and the others skip; with more, two may fetch at once (harmless).
    """

    def execute(self, context: Any) -> Any:
        app_name, env = self.parameters["app_name"], self.parameters["env"]
        app_id = config.load_app(app_name).app_id_for(env)
        store = RunStore(app_name=app_name, env=env)
        tick = schedule_tick(context["dag_run"])
        fetched = store.metadata_fetched(app_id)
        if fetched is not None and fetched >= tick:
            raise AirflowSkipException(
                f"the metadata of {app_name} ({env}) was fetched by a run that started at "
                f"{fetched.isoformat()}, at or after this run's tick {tick.isoformat()}: "
                "the container task uses it as stored"
            )
        started = dt.datetime.now(dt.UTC)
        result = super().execute(context)
        store.record_metadata_fetch(app_id, started)
        return result


# --- the DAGs --------------------------------------------------------------------------


def dag_id(app_name: str, container: str) -> str:
    return f"knack_{app_name}_{container}"


def build_dag(app: config.AppConfig, container: str, *, env: str = ENV) -> DAG:
    cfg = app.container(container)
    _check_cron(app.name, container, "schedule", cfg.schedule, AIRFLOW_PRESETS)
    _check_cron(app.name, container, "full_run_schedule", cfg.full_run_schedule)
    destinations = [key for key in PUBLISH_NOTEBOOKS if getattr(cfg, key) is not None]
    dag = _dag(
        dag_id(app.name, container),
        cfg,
        cfg.schedule,
        description=cfg.description or f"{app.name} {container}: Knack → S3 → destinations",
        macros={"knack_run_date": run_date, "knack_full_run_schedule": cfg.full_run_schedule},
        tags=["knack", app.name, env, container, *destinations],
        doc_md=f"`{container}` of `{app.name}` ({env}): upload the app's metadata, sync the "
        f"container to S3, then publish to {', '.join(destinations) or 'no destination'}. "
        f"The Knack tasks run in the pool `{pool_name(app.name)}`; the metadata upload is "
        "skipped when another container DAG of the app fetched it since this run's tick.",
    )
    date = "{{ knack_run_date(prev_start_date_success, dag_run, knack_full_run_schedule) }}"
    given = {"app_name": app.name, "env": env, "container": container, "date": date}
    with dag:
        upload = _notebook_task(UPLOAD_METADATA, given, cfg, UploadMetadataOperator)
        # runs when upload_metadata is skipped (the metadata is already fresh), not if it fails
        sync = _notebook_task(CONTAINER_TO_S3, given, cfg, trigger_rule="none_failed")
        publish = [
            _notebook_task(registry.publisher(d), given, cfg, **_destination_pool(d, cfg))
            for d in destinations
        ]
        upload >> sync >> publish
    return dag


def _destination_pool(destination: str, cfg: config.ContainerConfig) -> dict[str, str]:
    """The pool of a publish task that calls Knack: publishing to another Knack app runs in
    that app's pool (its requests count against that app's limit, not the source's)."""
    if destination == "knack" and cfg.knack is not None:
        return {"pool": pool_name(cfg.knack.app_name)}
    return {}


def backup_dag_id(app_name: str, container: str) -> str:
    return f"{dag_id(app_name, container)}_socrata_backup"


def build_backup_dag(app: config.AppConfig, container: str, *, env: str = ENV) -> DAG | None:
    """The container's Socrata backup DAG, or None (no ``socrata:`` or no backup_schedule).

    Independent of the container DAG (it backs up the public dataset, whatever the sync
    did) and it never calls Knack, so no Knack pool."""
    cfg = app.container(container)
    if cfg.socrata is None or cfg.socrata.backup_schedule is None:
        return None
    schedule = cfg.socrata.backup_schedule
    _check_cron(app.name, container, "socrata.backup_schedule", schedule, AIRFLOW_PRESETS)
    resource_id = cfg.socrata.resource_id
    dag = _dag(
        backup_dag_id(app.name, container),
        cfg,
        schedule,
        description=f"{app.name} {container}: Socrata {resource_id} → a CSV backup in S3",
        tags=["knack", app.name, env, container, "socrata", "backup"],
        doc_md=f"Back up the Socrata dataset `{resource_id}` of `{container}` of `{app.name}` "
        f"({env}) to `_backups/{app.name}-{env}/{container}/socrata-{resource_id}/` in S3, "
        f"keeping the newest {cfg.socrata.backup_keep} (`socrata.backup_keep`). It reads "
        "Socrata only: no Knack call, no dependency on the container DAG.",
    )
    with dag:
        given = {"app_name": app.name, "env": env, "container": container}
        _notebook_task(BACKUP_SOCRATA, given, cfg)
    return dag


def health_dag_id(app_name: str) -> str:
    return f"knack_{app_name}_health"


def build_health_dag(app: config.AppConfig, *, env: str = ENV) -> DAG:
    """The app's daily health check: one task, the health notebook; it fails (and so alerts)
    when a container fails. No retry: a rerun finds the same."""
    dag = DAG(
        dag_id=health_dag_id(app.name),
        description=f"{app.name}: every container fresh, not failing, counts that agree",
        schedule=HEALTH_SCHEDULE,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 0},
        user_defined_macros={"knack_report_url": report_url},
        tags=["knack", app.name, env, "health"],
        doc_md=f"The health of every container of `{app.name}` ({env}): the last sync, stale "
        "or failing, records in S3 against Knack's count, Socrata and ArcGIS against S3, "
        "drops since the last check. Fails when a container fails. Generated from params by "
        "`dags/knack_dags.py`.",
    )
    with dag:
        _notebook_task(HEALTH, {"app_name": app.name, "env": env})
    return dag


def _dag(
    name: str,
    cfg: config.ContainerConfig,
    schedule: str | None,
    *,
    description: str,
    tags: list[str],
    doc_md: str,
    macros: dict[str, Any] | None = None,
) -> DAG:
    """A DAG of a container: its schedule, the container's retries, one run at a time (the
    date follows the runs; two backups never prune at once), no catch-up."""
    return DAG(
        dag_id=name,
        description=description,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args={
            "retries": cfg.retries,
            "retry_delay": dt.timedelta(seconds=cfg.retry_delay_seconds),
        },
        user_defined_macros={"knack_report_url": report_url, **(macros or {})},
        tags=tags,
        doc_md=f"{doc_md} Generated from params by `dags/knack_dags.py`.",
    )


def _notebook_task(
    job: registry.Job,
    given: dict[str, str],
    cfg: config.ContainerConfig | None = None,
    operator: type[PapermillOperator] = NotebookOperator,
    **kwargs: Any,
) -> PapermillOperator:
    """The task that runs ``job``'s notebook with the parameters it takes of ``given`` (in
    the app's Knack pool when the job calls Knack), its time limit (the container's
    ``execution_timeout_minutes`` of ``cfg``, else the job's) and the alert callbacks."""
    parameters = job.arguments(**given)
    container = parameters.get("container")
    args = ", ".join(repr(v) for v in (job.name, parameters["app_name"], parameters["env"]))
    args += f", {container!r}" if container else ""
    if job.calls_knack:
        kwargs["pool"] = pool_name(parameters["app_name"])
    return operator(
        task_id=job.name,
        input_nb=str(NOTEBOOKS_DIR / f"{job.name}.ipynb"),
        output_nb="{{ knack_report_url(" + args + ") }}",
        parameters=parameters,
        kernel_name="python3",
        log_output=True,
        execution_timeout=registry.time_limit(
            job.name, cfg.execution_timeout_minutes if cfg is not None else None
        ),
        on_failure_callback=alert.on_failure,
        on_success_callback=alert.on_success,
        **kwargs,
    )


def _check_cron(
    app_name: str, container: str, key: str, value: str | None, presets: set[str] = frozenset()
) -> None:
    if value is not None and value not in presets and not croniter.is_valid(value):
        raise ConfigError(
            f"{app_name}.yaml: containers.{container}.{key}: {value!r} is not a cron expression"
        )


def build_dags(directory: Path | None = None, *, env: str = ENV) -> dict[str, DAG]:
    """Every DAG of every params file, the backup and health DAGs included (a bad file fails
    the import, naming file and key)."""
    dags = {}
    for app_name in config.known_apps(directory):
        app = config.load_app(app_name, directory)
        health = build_health_dag(app, env=env)
        dags[health.dag_id] = health
        for container in app.containers:
            built = build_dag(app, container, env=env), build_backup_dag(app, container, env=env)
            dags.update((dag.dag_id, dag) for dag in built if dag is not None)
    return dags


globals().update(build_dags())  # Airflow finds DAGs among the module's globals
