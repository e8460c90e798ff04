"""Runs of container DAGs through Airflow's own scheduling steps, with no executor and no task
code: what a scheduler would queue, step by step. Used by ``test_dags_test_e2e.py``.

The database (this process's Airflow configuration) must hold the DAGs, serialized (e.g. by
``airflow dags test``), and their pools. For each DAG :func:`queue_steps` creates a running
DAG run, then repeats what a scheduler loop does:

- ``DagRun.update_state`` sets the tasks whose upstream is done to ``scheduled`` (as the
  scheduler, and ``airflow dags test``, do);
- ``SchedulerJobRunner._executable_task_instances_to_queued``, the scheduler's critical
  section, queues what it may: this is where Airflow applies pools (and its other limits);
- every task it queued is then marked ``success``, as if a worker had run it;

until every run is done. ``_executable_task_instances_to_queued`` is a private method of
Airflow 3.3, the version pinned in ``requirements-airflow.txt``.
"""

from __future__ import annotations

import datetime as dt

from airflow.jobs.job import Job
from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
from airflow.models.dag import DagModel
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from sqlalchemy import update

MAX_STEPS = 20

Names = list[tuple[str, str, str]]  # (dag_id, task_id, pool) of task instances


def queue_steps(dag_ids: list[str]) -> tuple[list[dict[str, Names]], dict[str, str]]:
    """One run of each DAG through the scheduler's steps: per step, what it ``queued`` and
    what stayed ``waiting`` (scheduled, not queued); and each run's final state."""
    logical_date = dt.datetime.now(dt.UTC).replace(microsecond=0)
    runner = SchedulerJobRunner(job=Job())
    steps = []
    with create_session() as session:
        runs = []
        for dag_id in dag_ids:
            dag = SerializedDagModel.get_dag(dag_id, session=session)
            session.get(DagModel, dag_id).is_paused = False  # a paused DAG's tasks never queue
            run = dag.create_dagrun(
                run_id=f"queue_steps__{logical_date.isoformat()}",
                logical_date=logical_date,
                data_interval=(logical_date, logical_date),
                run_after=logical_date,
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.TEST,
                state=DagRunState.RUNNING,
                session=session,
            )
            run.dag = dag
            runs.append(run)
        session.commit()
        for _ in range(MAX_STEPS):
            session.expire_all()
            for run in runs:
                if run.state == DagRunState.RUNNING:
                    schedulable, _ = run.update_state(session=session)
                    for ti in schedulable:
                        ti.try_number += 1
                        ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            if all(run.state != DagRunState.RUNNING for run in runs):
                return steps, {run.dag_id: str(run.state) for run in runs}
            queued = runner._executable_task_instances_to_queued(max_tis=32, session=session)
            waiting = [
                ti
                for run in runs
                for ti in run.get_task_instances(session=session)
                if ti.state == TaskInstanceState.SCHEDULED
            ]
            steps.append({"queued": _names(queued), "waiting": _names(waiting)})
            if queued:  # the scheduler hands back detached copies: update the rows
                session.execute(
                    update(TaskInstance)
                    .where(TaskInstance.id.in_([ti.id for ti in queued]))
                    .values(state=TaskInstanceState.SUCCESS)
                )
            session.commit()
    raise AssertionError(f"the runs did not finish in {MAX_STEPS} steps: {steps}")


def _names(tis) -> Names:
    return sorted((ti.dag_id, ti.task_id, ti.pool) for ti in tis)
