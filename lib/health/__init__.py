"""The health check of an app-env (``health.ipynb``, ``knack-nb health``, the health DAG):
for every container, is it fresh, is it failing, do the counts agree.

- ``facts``: what is found (S3 read, one cheap question per service);
- ``rules``: what it means (ok, warn, fail, and why; pure);
- ``result``: the table, the summary (``containers``) and the errors.

The counts of each check are kept in S3 (``_state/<app>-<env>/health.json``) for the next
check's drop test.
"""

from __future__ import annotations

import datetime as dt
import logging

from lib.clients.s3 import STATE_PREFIX
from lib.errors import StoreError
from lib.health.facts import Finder
from lib.health.result import HealthResult
from lib.health.rules import FAIL, Health, judge
from lib.jobs import context
from lib.state import RunStore

logger = logging.getLogger(__name__)

JOB = "health"

__all__ = ["HealthResult", "check_app", "state_key"]


def state_key(store: RunStore) -> str:
    return f"{STATE_PREFIX}/{store.prefix}/health.json"


def check_app(*, app_name: str, env: str, now: dt.datetime | None = None) -> HealthResult:
    """Check every container of the app-env; ``now``: the clock (default: the run's start)."""
    run = context.start(JOB, app_name=app_name, env=env, app_id=True)
    now = now or run.started
    result = HealthResult(app_name=app_name, env=run.env, notes=run.notes, now=now)
    metadata = run.store.get_json(run.store.metadata_key(run.app_id or ""))
    if metadata is None:
        run.notes.append(
            "no metadata in S3 (run upload_metadata): views with no scene in params are not counted"
        )
    previous = _previous(run.store)
    finder = Finder(run.app, run.env, run.store, metadata, now)
    try:
        for container in run.app.containers:
            facts = finder.facts(container)
            kept = previous.get("containers", {}).get(container) or {}
            facts.previous = {k: v for k, v in kept.items() if isinstance(v, int)}
            facts.previous_at = _time(previous.get("checked_at"))
            health = judge(facts, now)
            result.checked.append((facts, health))
            if health.status == FAIL:
                result.errors.append(_error(health))
    finally:
        finder.close()
        result.requests, result.retries = finder.knack.requests, finder.knack.retries
    result.rerun_helps = False
    _keep_counts(run.store, result, previous, now)
    result.seconds = run.elapsed()
    return result


def _error(health: Health) -> str:
    return f"{health.container}: " + "; ".join(health.problems)


def _previous(store: RunStore) -> dict:
    try:
        found = store.get_json(state_key(store))
    except StoreError as e:
        logger.warning("the last check's counts cannot be read (%s): no drop test", e)
        return {}
    return found if isinstance(found, dict) else {}


def _keep_counts(store: RunStore, result: HealthResult, previous: dict, now: dt.datetime) -> None:
    """This check's counts for the next one (a count not found keeps the last one)."""
    containers = dict(previous.get("containers") or {})
    for facts, _ in result.checked:
        containers[facts.container] = {**(containers.get(facts.container) or {}), **facts.counts()}
    try:
        store.put_json(state_key(store), {"checked_at": now.isoformat(), "containers": containers})
    except StoreError as e:
        result.notes.append(f"this check's counts were not kept for the next one: {e}")


def _time(value: object) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return when if when is None or when.tzinfo else when.replace(tzinfo=dt.UTC)
