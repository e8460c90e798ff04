"""knack_container_to_s3.ipynb end to end: papermill → kernel → Knack emulator → moto S3.

The ``signals`` fixture (conftest) serves a generated app of ``N`` records. Runs whose report
no test reads (a load before a change, an unchanged rerun, the view's load, the failed and
first ``auto`` runs, the incremental run before the full one with deletions) take the
notebook's own steps in process (``signals.sync``, tests/inprocess.py); papermill runs the
full load, the full run with deletions, the incremental run in another timezone (the
kernel's own TZ; an ISO date through papermill's parameters) and the resumed ``auto`` run.
"""

from __future__ import annotations

import datetime as dt

from signals_app import CENTRAL, MODIFIED, N

from lib.clients.s3_records import dumps_stable


def test_full_load_then_unchanged_rerun(signals):
    result = signals.run()
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["fetched"], s["written"], s["unchanged"], s["deleted"]) == (
        "full",
        N,
        N,
        0,
        0,
    )
    # metadata (none stored yet), one page of N rows, and the empty page that ends paging
    assert s["requests"] == 3
    signals.assert_s3_equals_knack()
    text = signals.report_text(result)
    for secret in signals.stack.secrets:
        assert secret not in text
    assert "Location Name" in text  # the sample table shows fields by name

    again = signals.sync()
    assert again.ok
    assert (again.summary["written"], again.summary["unchanged"]) == (0, N)


def test_view_full_load(signals):
    result = signals.sync("view_1")
    assert result.ok, result.error
    assert result.summary["written"] == N
    assert set(signals.s3("view_1")) == set(signals.knack())


def test_incremental_writes_exactly_the_changed_and_deletions_wait_for_a_full_run(signals):
    assert signals.sync().ok
    ids = sorted(signals.knack())
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    now = dt.datetime.now(dt.UTC)
    changed = ids[:3]
    for i, rid in enumerate(changed):
        signals.touch(rid, now, change=f"changed {i}")
    added = []
    for i in range(2):
        record = dict(signals.knack()[ids[10]])
        record["id"] = signals.stack.knack.new_record_id()
        record["field_2"] = f"new {i}"
        signals.stack.knack.put_record(signals.app_id, "object_1", record)
        signals.stack.knack.touch(
            signals.app_id, "object_1", record["id"], field=MODIFIED, when=now
        )
        added.append(record["id"])
    deleted = ids[-2:]
    for rid in deleted:
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)

    result = signals.sync(date=before.isoformat())
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["fetched"], s["written"], s["deleted"]) == ("incremental", 5, 5, 0)
    stored = signals.s3()
    for rid in changed + added:
        assert stored[rid] == dumps_stable(signals.knack()[rid])
    assert set(deleted) <= set(stored)  # an incremental run deletes nothing

    full = signals.run()
    assert full.ok
    assert (full.summary["written"], full.summary["deleted"]) == (0, 2)
    signals.assert_s3_equals_knack()
    assert all(rid in signals.report_text(full) for rid in deleted)  # listed in the report


def test_timezone_calendar_date_in_the_apps_zone(signals, monkeypatch):
    # date = 03:00 UTC on day D+1 = 21:00 on day D in Central time (D in winter: UTC-6)
    day = dt.date(2026, 12, 15)  # all generated records are older (2026-01..06)
    ids = sorted(signals.knack())
    early, late, day_before = ids[0], ids[1], ids[2]
    signals.touch(early, dt.datetime(2026, 12, 15, 1, 0, tzinfo=CENTRAL))
    signals.touch(late, dt.datetime(2026, 12, 15, 23, 30, tzinfo=CENTRAL))
    signals.touch(day_before, dt.datetime(2026, 12, 14, 23, 30, tzinfo=CENTRAL))
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # the worker's own zone must not matter
    result = signals.run(date="2026-12-16T03:00:00Z")
    assert result.ok, result.error
    assert result.summary["knack_date"] == day.strftime("%m/%d/%Y")
    assert set(signals.s3()) == {early, late}


def test_auto_resumes_from_the_last_success_and_a_failure_does_not_advance_it(signals):
    first = signals.sync(date="auto")
    assert first.ok and first.summary["mode"] == "full"  # no state yet: a full run
    state = signals.state()
    assert state["mode"] == "full"

    signals.stack.knack.faults.status = 400  # a real error: fails at once
    signals.stack.knack.faults.fail_next = 1
    failed = signals.sync(date="auto")
    assert not failed.ok and "HTTP 400" in failed.error
    assert signals.state() == state  # not advanced

    rid = sorted(signals.knack())[5]
    signals.touch(rid, dt.datetime.now(dt.UTC), change="after the failure")
    resumed = signals.run(date="auto")
    assert resumed.ok
    assert resumed.summary["mode"] == "incremental"
    assert resumed.summary["since"] == state["last_success_start"]
    assert resumed.summary["written"] == 1
    assert signals.state()["last_success_start"] > state["last_success_start"]
