"""knack_container_to_s3.ipynb end to end: papermill → kernel → Knack emulator → moto S3."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest
import yaml

from lib import reports
from lib.emulators.knack import generate_app
from lib.store import dumps_stable

CENTRAL = ZoneInfo("America/Chicago")
N = 300  # moto's server takes about 100 PUTs a second here: keep it small
MODIFIED = "field_5"


class Signals:
    """A generated signals app on the stack, with its params file."""

    def __init__(self, stack, params_dir, seed=1):
        self.stack = stack
        self.params_dir = params_dir
        metadata, records = generate_app(N, seed=seed)
        self.app_id = stack.knack.add_app(metadata, records)
        self.containers = {
            "object_1": {"modified_date_field": MODIFIED},
            "view_1": {"scene": "scene_1", "modified_date_field": MODIFIED},
        }
        self.write_params()

    def write_params(self, **container_overrides):
        containers = {k: {**v, **container_overrides.get(k, {})}
                      for k, v in self.containers.items()}
        (self.params_dir / "signals.yaml").write_text(yaml.safe_dump({
            "app_id": {"prod": self.app_id, "dev": self.app_id},
            "containers": containers,
        }))

    def knack(self, container="object_1"):
        return {r["id"]: r for r in self.stack.knack.records(self.app_id, "object_1")}

    def s3(self, container="object_1"):
        s3 = self.stack.s3()
        prefix = f"signals-dev/{container}/"
        out = {}
        for key in self.stack.s3_keys(prefix):
            body = s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()
            out[key[len(prefix):].removesuffix(".json")] = body
        return out

    def assert_s3_equals_knack(self, container="object_1"):
        stored = self.s3(container)
        knack = self.knack(container)
        assert set(stored) == set(knack)
        for rid, body in stored.items():
            assert body == dumps_stable(knack[rid]), rid

    def touch(self, rid, when, change=None):
        if change is not None:
            record = self.knack()[rid]
            record["field_2"] = change
            self.stack.knack.put_record(self.app_id, "object_1", record)
        self.stack.knack.touch(self.app_id, "object_1", rid, field=MODIFIED, when=when)

    def run(self, container="object_1", date=None) -> reports.RunResult:
        return reports.run_notebook("knack_container_to_s3", app_name="signals", env="dev",
                                    container=container, date=date)

    def report_text(self, result):
        key = result.report.removeprefix(f"s3://{self.stack.bucket}/")
        return self.stack.s3().get_object(Bucket=self.stack.bucket, Key=key)["Body"].read().decode()

    def state(self, container="object_1"):
        key = f"_state/signals-dev/{container}/knack_container_to_s3.json"
        if key not in self.stack.s3_keys("_state/"):
            return None
        return json.loads(self.stack.s3().get_object(Bucket=self.stack.bucket, Key=key)["Body"]
                          .read())


@pytest.fixture
def signals(demo_env, tmp_path, monkeypatch):
    params = tmp_path / "params"
    params.mkdir()
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    return Signals(demo_env, params)


def test_full_load_then_unchanged_rerun(signals):
    result = signals.run()
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["fetched"], s["written"], s["unchanged"], s["deleted"]) == (
        "full", N, N, 0, 0)
    # metadata (none stored yet), one page of 300 rows, and the empty page that ends paging
    assert s["requests"] == 3
    signals.assert_s3_equals_knack()
    text = signals.report_text(result)
    for secret in signals.stack.secrets:
        assert secret not in text
    assert "Location Name" in text  # the sample table shows fields by name

    again = signals.run()
    assert again.ok
    assert (again.summary["written"], again.summary["unchanged"]) == (0, N)


def test_view_full_load(signals):
    result = signals.run("view_1")
    assert result.ok, result.error
    assert result.summary["written"] == N
    assert set(signals.s3("view_1")) == set(signals.knack())


def test_incremental_writes_exactly_the_changed_and_deletions_wait_for_a_full_run(signals):
    assert signals.run().ok
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
        signals.stack.knack.touch(signals.app_id, "object_1", record["id"], field=MODIFIED,
                                  when=now)
        added.append(record["id"])
    deleted = ids[-2:]
    for rid in deleted:
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)

    result = signals.run(date=before.isoformat())
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
    first = signals.run(date="auto")
    assert first.ok and first.summary["mode"] == "full"  # no state yet: a full run
    state = signals.state()
    assert state["mode"] == "full"

    signals.stack.knack.faults.status = 400  # a real error: fails at once
    signals.stack.knack.faults.fail_next = 1
    failed = signals.run(date="auto")
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


def test_503_every_third_request_and_429_bursts_still_complete(signals):
    signals.stack.knack.faults.fail_every = 3
    result = signals.run("view_1")
    assert result.ok, result.error
    assert result.summary["retries"] >= 1
    signals.stack.knack.faults.fail_every = 0
    signals.stack.knack.faults.status = 429
    signals.stack.knack.faults.fail_next = 4
    signals.stack.knack.delete_record(signals.app_id, "object_1", sorted(signals.knack())[0])
    result = signals.run("view_1")
    assert result.ok, result.error
    assert result.summary["retries"] == 4 and result.summary["deleted"] == 1
    signals.assert_s3_equals_knack("view_1")


def test_killed_half_way_then_rerun_ends_equal(signals, tmp_path):
    stack = signals.stack
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib.cli", "run", "knack_container_to_s3", "-a", "signals",
         "-e", "dev", "-c", "object_1", "-q"],
        env=os.environ.copy(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    written = 0
    while time.monotonic() < deadline:
        written = len(stack.s3_keys("signals-dev/object_1/"))
        if written >= 30:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel
    proc.wait()
    written = len(stack.s3_keys("signals-dev/object_1/"))
    assert 0 < written < N, f"the kill came too late or too early ({written} written)"
    assert signals.state() is None  # an interrupted run recorded no success

    ids = sorted(signals.knack())
    stack.knack.delete_record(signals.app_id, "object_1", ids[0])  # deleted meanwhile
    signals.touch(ids[1], dt.datetime.now(dt.UTC), change="changed meanwhile")
    result = signals.run()
    assert result.ok, result.error
    signals.assert_s3_equals_knack()


def test_mass_delete_guard(signals):
    assert signals.run().ok
    ids = sorted(signals.knack())
    for rid in ids[: N * 2 // 3]:  # Knack "loses" two thirds of the records
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)
    refused = signals.run()
    assert not refused.ok
    assert "refusing to delete 200 of the 300 stored records" in refused.error
    assert "allow_mass_delete" in refused.error
    assert len(signals.s3()) == N  # nothing deleted

    signals.write_params(object_1={"allow_mass_delete": True})
    allowed = signals.run()
    assert allowed.ok and allowed.summary["deleted"] == 200
    signals.assert_s3_equals_knack()


def test_knack_returning_nothing_never_empties_the_store(signals):
    assert signals.run().ok
    for rid in list(signals.knack()):
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)
    refused = signals.run()
    assert not refused.ok and "Knack returned 0" in refused.error
    assert len(signals.s3()) == N


@pytest.mark.parametrize(
    "container, date, message",
    [
        ("view_9", None, "container 'view_9' is not configured for app 'signals' "
                         "(configured: object_1, view_1, view_99)"),
        ("view_99", None, "view view_99 has no scene"),
        ("object_1", "next tuesday", "date 'next tuesday' does not parse: give POSIX seconds"),
    ],
)
def test_bad_input(signals, container, date, message):
    signals.containers["view_99"] = {}
    signals.write_params()
    result = signals.run(container, date=date)
    assert not result.ok
    assert message in result.error
    assert message in signals.report_text(result)
    assert signals.stack.s3_keys("signals-dev/") == []  # nothing written


def test_no_modified_date_field_with_a_date_runs_full_and_says_so(signals):
    signals.containers["object_1"] = {}
    signals.write_params()
    result = signals.run(date="2026-11-01")
    assert result.ok
    assert result.summary["mode"] == "full" and result.summary["written"] == N
    assert "has no modified_date_field" in signals.report_text(result)


def test_records_with_bad_ids_are_rejected_by_name(signals):
    record = dict(signals.knack()[sorted(signals.knack())[0]])
    record["id"] = "../../escape"
    signals.stack.knack.put_record(signals.app_id, "object_1", record)
    result = signals.run()
    assert not result.ok
    assert "1 records have no valid id" in result.error and "'../../escape'" in result.error
    stored = signals.s3()
    assert len(stored) == N  # every valid record written, nothing under a bad key
    assert not [k for k in signals.stack.s3_keys() if "escape" in k]
    assert result.summary["deleted"] == 0 and result.summary["failed"] == 1
