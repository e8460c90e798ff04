"""The run set-up (lib/jobs/context.py): what it checks before any request, and the mode
decision (``date`` → full or incremental, ``"auto"`` from the job's state)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from lib import dates
from lib.errors import ConfigError, UnknownContainerError
from lib.jobs import context

POINT = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)
NOTE = 'date "auto": resuming from the last successful run, 2026-11-01T06:00:00+00:00'


def never() -> tuple[dt.datetime | None, str]:
    raise AssertionError("only an auto run asks for the state")


@pytest.mark.parametrize("given", [None, 0, "", "0", "none"])
def test_no_date_is_a_full_run(given):
    since, note = context.decide_mode(dates.parse_date(given), never)
    assert (since, note, context.mode_of(since)) == (None, None, "full")


@pytest.mark.parametrize("given", ["2026-11-01T06:00:00Z", 1793512800, "2026-11-01T00:00-06:00"])
def test_a_date_is_an_incremental_run_from_that_instant(given):
    since, note = context.decide_mode(dates.parse_date(given), never)
    assert (since, note, context.mode_of(since)) == (POINT, None, "incremental")


def test_auto_resumes_from_the_state_or_runs_full_before_the_first_success():
    first = (None, 'date "auto": no successful run recorded yet, so a full run')
    assert context.decide_mode(dates.AUTO, lambda: first) == first
    assert context.decide_mode(dates.parse_date(" Auto "), lambda: (POINT, NOTE)) == (POINT, NOTE)


def test_a_run_resolves_its_mode_from_its_jobs_state():
    asked = []

    def resume_point(job, container):
        asked.append((job, container))
        return POINT, NOTE

    run = context.start(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3", date="auto"
    )
    assert (run.date, run.since, run.mode) == (dates.AUTO, None, "full")  # not resolved yet
    run.store = SimpleNamespace(resume_point=resume_point)
    run.resolve_mode()
    assert asked == [("knack_container_to_s3", "object_3")]
    assert (run.since, run.mode, run.notes) == (POINT, "incremental", [NOTE])
    run.full_run_instead("object_3 has nothing to filter on")
    assert (run.since, run.mode) == (None, "full")
    assert run.notes == [NOTE, "object_3 has nothing to filter on"]


def test_the_params_are_checked_before_any_request():
    run = context.start(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        needs=("socrata", "nothing to publish"),
        app_id=True,
    )
    assert (run.app_name, run.env, run.container, run.app_id) == (
        "demo",
        "dev",
        "object_3",
        "5d79512148c4af00106d1507",
    )
    assert run.cfg is not None and run.cfg.socrata is not None
    with pytest.raises(
        ConfigError, match="view_6 has no `socrata:` settings in demo.yaml: nothing to publish"
    ):
        context.start(
            "x",
            app_name="demo",
            env="dev",
            container="view_6",
            needs=("socrata", "nothing to publish"),
        )
    with pytest.raises(UnknownContainerError, match="object_99"):
        context.start("x", app_name="demo", env="dev", container="object_99")
    with pytest.raises(ConfigError, match="env must be 'prod' or 'dev'"):
        context.start("x", app_name="demo", env="test")
    with pytest.raises(ConfigError, match="not-a-date"):
        context.start("x", app_name="demo", env="dev", date="not-a-date")


def test_missing_metadata_is_fetched_with_a_note_or_refused():
    run = context.start("x", app_name="demo", env="dev", app_id=True)
    run.store = SimpleNamespace(get_json=lambda key: None, metadata_key=lambda app_id: app_id)
    with pytest.raises(ConfigError, match="no metadata of demo-dev in S3: run upload_metadata"):
        run.load_metadata()
    assert run.load_metadata(fetch=lambda: {"name": "fetched"}) == {"name": "fetched"}
    assert run.metadata == {"name": "fetched"} and "fetched it from Knack" in run.notes[0]
