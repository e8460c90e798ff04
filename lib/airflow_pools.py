"""Airflow pools, one per Knack app, so the app's container DAGs share its request budget.

Knack allows 10 requests per second per app. The tasks that call Knack (``upload_metadata``
and ``knack_container_to_s3`` of every container DAG of an app) run in the pool
``knack_<app>`` with ``concurrent_knack_tasks`` slots (params, default 1), and each of
their clients paces itself at ``requests_per_second / concurrent_knack_tasks``
(``AppConfig.client_requests_per_second``): however many workers, the app stays under its
``requests_per_second``. Publishing tasks never call Knack and stay in Airflow's default pool.

Airflow does not create pools from DAG files. ``knack-nb airflow-pools`` prints them in the
JSON that ``airflow pools import FILE`` takes (also to update the sizes after a params edit):

    knack-nb airflow-pools -o knack-pools.json && airflow pools import knack-pools.json

A task whose pool does not exist is never scheduled (the scheduler logs "Tasks using
non-existent pool").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib import config

POOL_PREFIX = "knack_"


def pool_name(app_name: str) -> str:
    """The pool of the app's Knack tasks, e.g. ``knack_data-tracker``."""
    return f"{POOL_PREFIX}{app_name}"


def pools(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """One pool per params file, as ``airflow pools import`` reads them."""
    result = {}
    for app_name in config.known_apps(directory):
        app = config.load_app(app_name, directory)
        slots = app.concurrent_knack_tasks
        result[pool_name(app.name)] = {
            "slots": slots,
            "description": (
                f"Knack tasks of {app.name} (upload_metadata, knack_container_to_s3): "
                f"{slots} at once, each pacing at {app.client_requests_per_second:g} of the "
                f"app's {app.requests_per_second:g} requests/s (concurrent_knack_tasks in "
                f"{app.name}.yaml; knack-nb airflow-pools)"
            ),
            "include_deferred": False,
        }
    return result


def pools_json(found: dict[str, dict[str, Any]]) -> str:
    """Pools as stable JSON (sorted keys), the file ``airflow pools import`` takes."""
    return json.dumps(found, indent=2, sort_keys=True) + "\n"
