"""What the alerts say and when (``lib.alerts.messages``, pure, on a given clock), the
targets of ``KNACK_ALERT_URLS`` kept out of every text, and the README's examples."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lib.alerts import examples
from lib.alerts.messages import FAILED, RECOVERED, History, Outcome, decide, error_key
from lib.alerts.runs import rerun_helps_for
from lib.alerts.send import alert_urls
from lib.redact import redact

README = Path(__file__).resolve().parents[2] / "README.md"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ERROR = "KnackAPIError: Knack kept failing GET /objects/object_3/records: HTTP 500 after 6 attempts"


def failure(error: str = ERROR, **kw) -> Outcome:
    return Outcome("demo", "dev", "knack_container_to_s3", "object_3", ok=False, error=error, **kw)


def success() -> Outcome:
    return Outcome("demo", "dev", "knack_container_to_s3", "object_3", ok=True, report="s3://b/r")


def run_all(outcomes: list[tuple[float, Outcome]]) -> list[str | None]:
    """The kind of message said for each (hours after T0, outcome), in order."""
    history, said = History(), []
    for hours, outcome in outcomes:
        message, history = decide(history, outcome, T0 + dt.timedelta(hours=hours))
        said.append(message.kind if message else None)
    return said


def test_an_ordinary_success_says_nothing():
    assert run_all([(0, success()), (1, success())]) == [None, None]


def test_a_repeated_failure_is_said_once_a_day_and_the_first_success_after_once():
    said = run_all(
        [(0, failure()), (1, failure()), (23.99, failure()), (24, failure())]
        + [(25, success()), (26, success())]
    )
    assert said == [FAILED, None, None, FAILED, RECOVERED, None]


def test_another_error_is_said_at_once_and_numbers_or_times_do_not_make_a_new_one():
    again = ERROR.replace("500", "503")
    other = "StoreError: cannot write s3://b/k: access denied"
    assert error_key(ERROR) == error_key(again)
    timed = "TimeoutError: at 2026-03-01T12:00:05Z after 61 s"
    assert error_key(timed) == error_key("TimeoutError: at 2026-03-02T01:10:00Z after 7 s")
    said = run_all([(0, failure()), (1, failure(again)), (2, failure(other))])
    assert said == [FAILED, None, FAILED]


def test_the_failure_message_counts_runs_and_time_since_the_first_failure():
    started = T0 - dt.timedelta(minutes=3)
    history = History()
    _, history = decide(history, failure(started=started), T0)
    message, history = decide(
        history,
        failure("ConfigError: bad key", rerun_helps=False, attempt=3, attempts=3),
        T0 + dt.timedelta(hours=2),
    )
    assert message is not None and message.title == (
        "✗ demo-dev · object_3 · knack_container_to_s3 failed"
    )
    assert message.lines[:4] == [
        "Error: ConfigError: bad key",
        "Will a rerun alone help? no: a rerun fails the same way; do what the error says first",
        "Attempts: 3 of 3 (no retry left)",
        "Failing since 2026-03-01 11:57 UTC (2 h 3 min), 2 runs failed",
    ]
    assert message.lines[4] == "Report: none was written"
    recovered, cleared = decide(history, success(), T0 + dt.timedelta(hours=3))
    assert recovered.lines[0] == (
        "Succeeded after 2 runs failed, failing since 2026-03-01 11:57 UTC (3 h 3 min)"
    )
    assert cleared == History()


def test_a_stored_history_reads_back_and_a_bad_one_counts_as_none():
    history = History(T0, 4, ERROR, T0, error_key(ERROR))
    assert History.from_json(history.to_json()) == history
    assert History.from_json({"failing_since": "not a time"}) == History()
    assert History.from_json(["a list"]) == History()


@pytest.mark.parametrize(
    ("error", "helps"),
    [
        ("MissingCredentialError: KNACK_API_KEY is not set", False),
        ("ConfigError: bad", False),
        ("TypeError: a bug", False),
        ("KnackAPIError: HTTP 503", True),
        ("DeadKernelError: the kernel died", True),
        ("TimeoutError: the run was stopped", True),
        ("SomethingElse: ?", None),
        (None, None),
    ],
)
def test_whether_a_rerun_helps_by_the_errors_kind(error, helps):
    assert rerun_helps_for(error) is helps


def test_the_alert_urls_are_split_and_their_tokens_never_shown(monkeypatch):
    slack = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts"
    teams = "msteams://outlook-host/3b8f1a2c9d/abcdefghijklmnopqrstuvwx"
    hook = "json://127.0.0.1:8080/alerts"
    monkeypatch.setenv("KNACK_ALERT_URLS", f" {slack},{teams}\n {hook} ")
    assert alert_urls() == [slack, teams, hook]
    text = f"sent to {slack} and {teams} via {hook}; tokens T1JJ3T3L2 TIiajkdnlazkcOXrIdevi7FQ"
    shown = redact(text)
    for secret in (slack, teams, hook, "T1JJ3T3L2", "TIiajkdnlazkcOXrIdevi7FQ", "3b8f1a2c9d"):
        assert secret not in shown, secret
    # words and the host stay readable: atd-knack-services, 127.0.0.1
    assert (
        redact("bucket atd-knack-services at 127.0.0.1") == "bucket atd-knack-services at 127.0.0.1"
    )
    monkeypatch.delenv("KNACK_ALERT_URLS")
    assert alert_urls() == []


def test_the_readme_shows_each_case_as_the_code_says_it():
    """The README's alert examples are ``python -m lib.alerts.examples``'s output."""
    readme = README.read_text(encoding="utf-8")
    assert examples.markdown() in readme
    kinds = [m.kind for _, m in examples.examples()]
    assert kinds.count(FAILED) == 4 and kinds.count(RECOVERED) == 1
