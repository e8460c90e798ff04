"""The alerts a person gets, one of each case, made by the real code (``lib.alerts.messages``)
on a fixed clock: the README shows exactly these (``tests/unit/test_alerts.py`` checks it).

``python -m lib.alerts.examples`` prints them as the README's Markdown.
"""

from __future__ import annotations

import datetime as dt

from lib.alerts.messages import History, Message, Outcome, decide
from lib.alerts.runs import rerun_helps_for
from lib.errors import MissingCredentialError
from lib.health.result import HealthResult
from lib.health.rules import Facts, judge
from lib.reports.stopped import stop_reason

NOW = dt.datetime(2026, 12, 1, 14, 5, tzinfo=dt.UTC)
STARTED = NOW - dt.timedelta(minutes=4, seconds=40)  # the failed run's start
BUCKET = "s3://atd-knack-services"
KEY = "reports/data-tracker-prod/knack_container_to_s3/20261201T140000.113Z_view_197"


class _Timeout(Exception):
    pass


_Timeout.__name__ = "AirflowTaskTimeout"


def examples() -> list[tuple[str, Message]]:
    """(what happened, the message) for each case."""
    ids = {"app_name": "data-tracker", "env": "prod", "container": "view_197"}
    report = {"report": f"{BUCKET}/{KEY}.ipynb", "html": f"{BUCKET}/{KEY}.html"}
    sync = {**ids, "job": "knack_container_to_s3"}
    knack_down = Outcome(
        **sync,
        ok=False,
        error="KnackAPIError: Knack kept failing GET /pages/scene_73/views/view_197/records: "
        "HTTP 503 after 6 attempts (Service Unavailable); retry later: reruns are safe",
        rerun_helps=True,
        attempt=3,
        attempts=3,
        started=STARTED,
        **report,
    )
    missing = MissingCredentialError(
        "KNACK_API_KEY", purpose="the records of object object_12 need the app's REST API key"
    )
    needs_a_person = Outcome(
        **{**sync, "container": "object_12"},
        ok=False,
        error=f"{type(missing).__name__}: {missing}",
        rerun_helps=rerun_helps_for(type(missing).__name__),
        attempt=3,
        attempts=3,
        started=STARTED,
        report=report["report"].replace("view_197", "object_12"),
        html=report["html"].replace("view_197", "object_12"),
    )
    name, text = stop_reason(_Timeout(), limit=dt.timedelta(minutes=120)) or ("", "")
    hung = Outcome(
        **sync,
        ok=False,
        error=f"{name}: {text}",
        rerun_helps=rerun_helps_for(name),
        attempt=3,
        attempts=3,
        started=NOW - dt.timedelta(hours=2, minutes=5),
        **report,
    )
    health = Outcome(
        app_name="data-tracker",
        env="prod",
        job="health",
        container=None,
        ok=False,
        error=_health_error(),
        rerun_helps=False,
        started=NOW.replace(hour=6, minute=30),
        report=f"{BUCKET}/reports/data-tracker-prod/health/20261201T063000.020Z_app.ipynb",
        html=f"{BUCKET}/reports/data-tracker-prod/health/20261201T063000.020Z_app.html",
    )
    first = _said(History(), knack_down, NOW)
    since = NOW - dt.timedelta(hours=3, minutes=5)
    failing = History(since, 3, knack_down.error, NOW - dt.timedelta(hours=1), None)
    ok = Outcome(
        **sync, ok=True, report=f"{BUCKET}/{KEY.replace('140000.113Z', '150000.087Z')}.ipynb"
    )
    return [
        ("A task failed for good, the first time (Knack kept answering 503):", first),
        (
            "A failure a rerun does not fix (a credential missing), failing for 3 hours over "
            "3 runs:",
            _said(History(since, 2, knack_down.error), needs_a_person, NOW),
        ),
        ("A run stopped by its time limit:", _said(History(), hung, NOW)),
        (
            "The app's daily health check found a container failing:",
            _said(History(), health, NOW.replace(hour=6, minute=31, second=12)),
        ),
        (
            "The first success after failures:",
            _said(failing, ok, NOW + dt.timedelta(minutes=55)),
        ),
    ]


def _health_error() -> str:
    """The health check's failure as its notebook raises it: a container synced 3 days ago
    whose 71 sync runs since failed (Knack refused them), its counts otherwise fine."""
    now = NOW.replace(hour=6, minute=30)
    facts = Facts(
        container="view_197",
        last_success=now - dt.timedelta(days=3, minutes=10),
        failed_since=71,
        last_error="KnackAPIError: Knack refused GET /pages/scene_73/views/view_197/records: "
        "HTTP 403: Forbidden",
        s3=9800,
        knack=9800,
        newest_change=now - dt.timedelta(days=3, hours=2),
    )
    result = HealthResult(app_name="data-tracker", env="prod", now=now)
    result.checked.append((facts, judge(facts, now)))
    result.errors.append(f"view_197: {'; '.join(result.checked[0][1].problems)}")
    try:
        result.raise_for_errors()
    except Exception as e:  # noqa: BLE001 - the error the notebook raises, as a line
        return f"{type(e).__name__}: {e}"
    raise AssertionError("the health check did not fail")


def _said(history: History, outcome: Outcome, now: dt.datetime) -> Message:
    message, _ = decide(history, outcome, now)
    assert message is not None
    return message


def markdown() -> str:
    """The examples as the README shows them."""
    parts = []
    for what, message in examples():
        parts.append(f"{what}\n\n```text\n{message.text}\n```")
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(markdown())
