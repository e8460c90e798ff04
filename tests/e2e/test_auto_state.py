"""The ``date="auto"`` state: only a run that looked at every change since the stored point
moves it forward (DESIGN: an explicit date later than the point never moves it).

Dates are relative to now, so the tests do not depend on today's date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from inprocess import run as run_in_process

from lib import reports, sync
from lib.metadata import upload_metadata
from lib.publish import run as publish_run
from lib.state import RunStore

SYNC = "knack_container_to_s3"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def set_state(key: str, when: dt.datetime, job: str = SYNC) -> None:
    """Put the ``auto`` state at ``key`` (``_state/<app>-dev/...``) to ``when``."""
    RunStore(app_name=key.split("/")[1].removesuffix("-dev"), env="dev").put_json(
        key, {"job": job, "last_success_start": when.isoformat(), "mode": "full"}
    )


# --- the rule, on the RunStore ------------------------------------------------------------


@pytest.fixture
def store(demo_env) -> RunStore:
    return RunStore(app_name="demo", env="dev")


def point(store: RunStore, job: str = SYNC) -> dt.datetime | None:
    since, _ = store.resume_point(job, "object_3")
    return since


def test_full_run_and_runs_from_at_or_before_the_point_advance_it(store):
    started = now()
    assert (
        store.record_success(SYNC, "object_3", started - dt.timedelta(days=10), since=None) is None
    )  # a full run: the first point
    assert point(store) == started - dt.timedelta(days=10)
    # an explicit date at the point, then one before it: both looked at every change since
    at = started - dt.timedelta(days=10)
    assert store.record_success(SYNC, "object_3", started - dt.timedelta(days=5), since=at) is None
    assert point(store) == started - dt.timedelta(days=5)
    assert (
        store.record_success(SYNC, "object_3", started, since=started - dt.timedelta(days=30))
        is None
    )
    assert point(store) == started


def test_a_later_explicit_date_or_no_point_leaves_the_state(store):
    started = now()
    note = store.record_success(SYNC, "object_3", started, since=started - dt.timedelta(days=1))
    assert note and "not" in note and "full run" in note  # no point yet: none is started
    assert point(store) is None
    assert store.state_key(SYNC, "object_3") not in [
        o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
    ]

    ten_days_back = started - dt.timedelta(days=10)
    store.record_success(SYNC, "object_3", ten_days_back, since=None)
    for later in (started - dt.timedelta(days=1), started + dt.timedelta(days=365 * 36)):
        note = store.record_success(SYNC, "object_3", started, since=later)
        assert note and ten_days_back.isoformat() in note and later.isoformat() in note
        assert point(store) == ten_days_back


def test_a_full_run_never_moves_the_point_back(store):
    started = now()
    store.record_success(SYNC, "object_3", started, since=None)
    store.record_success(SYNC, "object_3", started - dt.timedelta(hours=1), since=None)
    assert point(store) == started


def test_publishers_keep_the_same_rule(demo_env):
    upload_metadata(app_name="demo", env="dev")
    store = RunStore(app_name="demo", env="dev")
    for job, destination in (
        ("knack_container_to_agol", "agol"),
        ("upsert_knack_container_to_socrata", "socrata"),
    ):
        ten_days_back = now() - dt.timedelta(days=10)
        key = store.state_key(job, "object_3")
        set_state(key, ten_days_back, job)
        for date in ((now() - dt.timedelta(days=1)).date().isoformat(), "2062-01-01"):
            run = publish_run.start(
                app_name="demo",
                container="object_3",
                env="dev",
                date=date,
                job=job,
                destination=destination,
            )
            run.record_success(read=0)
            assert any("left" in n and ten_days_back.isoformat() in n for n in run.notes)
            assert point(store, job) == ten_days_back
        run = publish_run.start(
            app_name="demo",
            container="object_3",
            env="dev",
            date="auto",
            job=job,
            destination=destination,
        )
        assert run.since == ten_days_back
        run.record_success(read=0)
        assert point(store, job) == run.started


# --- end to end, through papermill ----------------------------------------------------
# (one papermill run per test shows the note in the report; the runs around it take the
# notebook's own steps in process, tests/inprocess.py)


def test_explicit_date_runs_do_not_advance_auto_and_auto_picks_up_the_change(signals):
    assert signals.sync().ok  # a full load; then the state is put 10 days back
    key = "_state/signals-dev/object_1/knack_container_to_s3.json"
    ten_days_back = now() - dt.timedelta(days=10)
    set_state(key, ten_days_back)
    rid = sorted(signals.knack())[7]
    signals.touch(rid, now() - dt.timedelta(days=5), change="changed 5 days ago")

    yesterday = (now() - dt.timedelta(days=1)).date().isoformat()
    far = (now() + dt.timedelta(days=365 * 36)).date().isoformat()
    result = signals.run(date=yesterday)  # through papermill: the note is in the report
    assert result.ok, result.error
    assert result.summary["mode"] == "incremental"
    assert signals.state()["last_success_start"] == ten_days_back.isoformat()
    text = signals.report_text(result)
    assert "auto" in text and "left" in text and ten_days_back.isoformat() in text
    # the same note for a date far ahead, from the notebook's call in process
    result = sync.sync_container(app_name="signals", container="object_1", env="dev", date=far)
    assert result.ok, result.errors
    assert result.summary()["mode"] == "incremental"
    assert signals.state()["last_success_start"] == ten_days_back.isoformat(), far
    assert any(
        "auto" in note and "left" in note and ten_days_back.isoformat() in note
        for note in result.notes
    )

    resumed = signals.sync(date="auto")
    assert resumed.ok, resumed.error
    assert resumed.summary["since"] == ten_days_back.isoformat()
    assert resumed.summary["written"] == 1
    signals.assert_s3_equals_knack()
    assert signals.state()["last_success_start"] > ten_days_back.isoformat()


def test_socrata_publish_with_a_later_date_leaves_its_state_and_says_so(demo_env):
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    first = run_in_process(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date="auto",
    )
    assert first.ok, first.error
    store = RunStore(app_name="demo", env="dev")
    job = "upsert_knack_container_to_socrata"
    recorded = point(store, job)
    assert recorded is not None
    later = reports.run_notebook(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date="2062-01-01",
    )
    assert later.ok, later.error
    assert point(store, job) == recorded
    key = later.report.removeprefix(f"s3://{demo_env.bucket}/")
    text = demo_env.s3().get_object(Bucket=demo_env.bucket, Key=key)["Body"].read().decode()
    assert recorded.isoformat() in text and "left" in text
