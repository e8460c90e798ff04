"""The last successful run of a DAG, from Airflow's REST API (v2, Airflow 3).

``knack-nb last-success --dag DAG_ID`` prints its start as POSIX seconds (``--iso``: ISO
8601), so a scheduler other than Airflow can pass it to ``knack-nb run ... --date``.

Airflow 3 serves ``GET /api/v2/dags/{dag_id}/dagRuns`` (``state``, ``order_by``,
``limit``) behind a JWT: ``POST /auth/token`` with a user and password answers
``{"access_token": ...}``. ``AIRFLOW_API_URL`` (default ``http://localhost:8080``) and
either ``AIRFLOW_API_TOKEN`` or ``AIRFLOW_USERNAME`` + ``AIRFLOW_PASSWORD`` configure it.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any
from urllib.parse import quote

import requests

from lib.errors import KnackNbError, MissingCredentialError

DEFAULT_URL = "http://localhost:8080"
TIMEOUT = 30  # seconds


class AirflowAPIError(KnackNbError):
    """Airflow could not be reached or did not answer as expected."""


class NoSuccessfulRun(KnackNbError):
    """The DAG exists but has not succeeded yet."""


def api_url() -> str:
    return (os.environ.get("AIRFLOW_API_URL") or DEFAULT_URL).rstrip("/")


def _token(session: requests.Session, url: str) -> str:
    token = os.environ.get("AIRFLOW_API_TOKEN")
    if token:
        return token
    user, password = os.environ.get("AIRFLOW_USERNAME"), os.environ.get("AIRFLOW_PASSWORD")
    if not user or not password:
        missing = [
            n for n, v in (("AIRFLOW_USERNAME", user), ("AIRFLOW_PASSWORD", password)) if not v
        ]
        raise MissingCredentialError(
            *missing,
            purpose="Airflow's API needs AIRFLOW_API_TOKEN, or a user and password to get a token",
        )
    answer = _request(
        session, "POST", f"{url}/auth/token", json={"username": user, "password": password}
    )
    if answer.status_code in (401, 403):
        raise AirflowAPIError(
            f"Airflow at {url} refused AIRFLOW_USERNAME/AIRFLOW_PASSWORD "
            f"({answer.status_code}): check them"
        )
    token = _json(answer, url).get("access_token")
    if not token:
        raise AirflowAPIError(f"Airflow at {url} answered /auth/token without access_token")
    return str(token)


def _request(session: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
    try:
        return session.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as e:
        raise AirflowAPIError(
            f"cannot reach Airflow's API at {api_url()} ({type(e).__name__}); "
            "check AIRFLOW_API_URL and that the API server is running"
        ) from None


def _json(answer: Any, url: str) -> dict[str, Any]:
    if answer.status_code >= 400:
        detail = answer.text[:300]
        raise AirflowAPIError(f"Airflow at {url} answered {answer.status_code}: {detail}")
    try:
        data = answer.json()
    except ValueError:
        raise AirflowAPIError(
            f"Airflow at {url} answered something that is not JSON; "
            "is AIRFLOW_API_URL the API server?"
        ) from None
    if not isinstance(data, dict):
        raise AirflowAPIError(f"Airflow at {url} answered an unexpected {type(data).__name__}")
    return data


def last_success(dag_id: str, *, session: requests.Session | None = None) -> dt.datetime:
    """The start of the most recent successful run of ``dag_id`` (aware, UTC)."""
    url = api_url()
    session = session or requests.Session()
    session.headers["Authorization"] = f"Bearer {_token(session, url)}"
    answer = _request(
        session,
        "GET",
        f"{url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
        params={"state": "success", "order_by": "-start_date", "limit": 1},
    )
    if answer.status_code == 404:
        raise AirflowAPIError(
            f"Airflow at {url} has no DAG {dag_id!r}: check the DAG id "
            "(knack_<app>_<container>) and that the DAG is loaded"
        )
    if answer.status_code in (401, 403):
        raise AirflowAPIError(
            f"Airflow at {url} refused the request ({answer.status_code}): "
            "check the token or the user's permissions"
        )
    runs = _json(answer, url).get("dag_runs")
    if not isinstance(runs, list):
        raise AirflowAPIError(f"Airflow at {url} answered without dag_runs")
    started = [r.get("start_date") for r in runs if r.get("state") == "success"]
    started = [s for s in started if s]
    if not started:
        raise NoSuccessfulRun(
            f"DAG {dag_id!r} has no successful run yet: run it once in full (no --date) first"
        )
    return max(_parse(s) for s in started)


def _parse(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)
