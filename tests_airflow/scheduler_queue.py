"""Run two container DAGs of one app through Airflow's own scheduling steps; print each step.

``python tests_airflow/scheduler_queue.py DAG_ID DAG_ID`` in an Airflow environment whose
database holds the DAGs (serialized, e.g. by ``airflow dags test``) and the pools. For each
DAG it creates a running DAG run, then repeats what a scheduler loop does, with no executor
and no task code:

- ``DagRun.update_state`` sets the tasks whose upstream is done to ``scheduled`` (as the
  scheduler, and ``airflow dags test``, do);
- ``SchedulerJobRunner._executable_task_instances_to_queued``, the scheduler's critical
  section, picks the scheduled tasks it may queue: this is where Airflow applies pools;
- every queued task is then marked ``success``, as if a worker had run it;

until both runs are done. Each step is printed as one JSON line: ``{"queued": [[dag_id,
task_id, pool], ...], "waiting": [...]}`` (waiting: scheduled but not queued). Used by
``test_dags_test_e2e.py``; ``_executable_task_instances_to_queued`` is a private method of
Airflow 3.3, the version pinned in ``requirements-airflow.txt``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

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


def main(dag_ids: list[str]) -> int:
    logical_date = dt.datetime.now(dt.UTC).replace(microsecond=0)
    runner = SchedulerJobRunner(job=Job())
    with create_session() as session:
        runs = []
        for dag_id in dag_ids:
            dag = SerializedDagModel.get_dag(dag_id, session=session)
            session.get(DagModel, dag_id).is_paused = False  # a paused DAG's tasks never queue
            run = dag.create_dagrun(
                run_id=f"pool_check__{logical_date.isoformat()}",
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
                break
            queued = runner._executable_task_instances_to_queued(max_tis=32, session=session)
            waiting = [
                ti
                for run in runs
                for ti in run.get_task_instances(session=session)
                if ti.state == TaskInstanceState.SCHEDULED
            ]
            print(json.dumps({"queued": _names(queued), "waiting": _names(waiting)}), flush=True)
            if queued:  # (the scheduler hands back detached copies: update the rows)
                session.execute(
                    update(TaskInstance)
                    .where(TaskInstance.id.in_([ti.id for ti in queued]))
                    .values(state=TaskInstanceState.SUCCESS)
                )
            session.commit()
        else:
            print(f"the runs did not finish in {MAX_STEPS} steps", file=sys.stderr)
            return 1
        print(json.dumps({"runs": {run.dag_id: str(run.state) for run in runs}}), flush=True)
    return 0


def _names(tis) -> list[list[str]]:
    return sorted([ti.dag_id, ti.task_id, ti.pool] for ti in tis)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
