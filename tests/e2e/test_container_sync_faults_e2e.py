"""knack_container_to_s3.ipynb end to end under faults and bad input.

The runs whose report no test reads (set-up loads, retried faults, reruns, the refusals
and rejections whose report path a papermill run here covers) take the notebook's own steps
in process (``signals.sync``, tests/inprocess.py). Papermill still runs the refused mass
delete, a bad input and the lone surrogate (in the report's sample), and the killed run is a
``knack-nb run`` process."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from inprocess import run as run_in_process
from signals_app import N, Signals

from lib import sync
from lib.state import stale_marks


def test_503_every_third_request_and_429_bursts_still_complete(signals):
    signals.stack.knack.faults.fail_every = 3
    result = signals.sync("view_1")
    assert result.ok, result.error
    assert result.summary["retries"] >= 1
    signals.stack.knack.faults.fail_every = 0
    signals.stack.knack.faults.status = 429
    signals.stack.knack.faults.fail_next = 4
    signals.stack.knack.delete_record(signals.app_id, "object_1", sorted(signals.knack())[0])
    result = signals.sync("view_1")
    assert result.ok, result.error
    assert result.summary["retries"] == 4 and result.summary["deleted"] == 1
    signals.assert_s3_equals_knack("view_1")


KILLED_N = 300  # the one test that needs many writes: the kill must land while they run


def test_killed_half_way_then_rerun_ends_equal(signals, tmp_path):
    signals = Signals(signals.stack, signals.params_dir, n=KILLED_N)  # the same app, bigger
    stack = signals.stack
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lib.cli",
            "run",
            "knack_container_to_s3",
            "-a",
            "signals",
            "-e",
            "dev",
            "-c",
            "object_1",
            "-q",
        ],
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    assert 0 < written < KILLED_N, f"the kill came too late or too early ({written} written)"
    assert signals.state() is None  # an interrupted run recorded no success
    # the killed run left its report: saved at each cell's start, it shows the sync running
    (key,) = stack.s3_keys("reports/signals-dev/knack_container_to_s3/")
    nb = json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read())
    running = [c for c in nb["cells"] if c["metadata"]["papermill"]["status"] == "running"]
    assert len(running) == 1 and "sync.sync_container(" in "".join(running[0]["source"])
    assert nb["metadata"]["papermill"]["parameters"]["container"] == "object_1"

    ids = sorted(signals.knack())
    stack.knack.delete_record(signals.app_id, "object_1", ids[0])  # deleted meanwhile
    signals.touch(ids[1], dt.datetime.now(dt.UTC), change="changed meanwhile")
    result = signals.sync()
    assert result.ok, result.error
    signals.assert_s3_equals_knack()
    # the killed run's stale mark: its heartbeat is recent, so the rerun cannot tell it from
    # a slow run still writing and leaves the snapshot marked stale; once the heartbeat is
    # older than the lease (lib/stale_marks.py), the next sync clears it
    (killed,) = [
        k
        for k in stack.s3_keys("_state/signals-dev/object_1/snapshot-stale/")
        if json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=k)["Body"].read())["status"]
        == "running"
    ]
    assert len(stack.s3_keys("_state/signals-dev/object_1/snapshot-stale/")) == 2  # + rerun's
    body = json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=killed)["Body"].read())
    body["alive_at"] = (dt.datetime.now(dt.UTC) - stale_marks.LEASE * 2).isoformat()
    stack.s3().put_object(Bucket=stack.bucket, Key=killed, Body=json.dumps(body).encode())
    assert signals.sync().ok
    assert stack.s3_keys("_state/signals-dev/object_1/snapshot") == []


def test_mass_delete_guard(signals):
    # a low threshold keeps the deletions (each confirmed by its own request) few
    signals.write_params(object_1={"mass_delete_threshold": 0.05})
    assert signals.sync().ok
    ids = sorted(signals.knack())
    for rid in ids[:10]:  # Knack "loses" 10 of N, more than 5%
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)
    refused = signals.run()
    assert not refused.ok
    assert f"refusing to delete 10 of the {N} stored records" in refused.error
    assert "allow_mass_delete" in refused.error
    assert "a rerun is safe and completes the work" not in refused.error  # it would refuse
    assert "a rerun alone fails the same way" in refused.error
    assert "refusing to delete 10 of the" in signals.report_text(refused)
    assert len(signals.s3()) == N  # nothing deleted
    assert signals.sync().error == refused.error  # indeed

    signals.write_params(object_1={"mass_delete_threshold": 0.05, "allow_mass_delete": True})
    allowed = signals.sync()
    assert allowed.ok and allowed.summary["deleted"] == 10
    assert allowed.summary["confirmations"] == 11  # one probe, then one request per record
    signals.assert_s3_equals_knack()


def test_knack_returning_nothing_never_empties_the_store(signals):
    assert signals.sync().ok
    for rid in list(signals.knack()):
        signals.stack.knack.delete_record(signals.app_id, "object_1", rid)
    refused = signals.sync()  # a refusal's report: test_mass_delete_guard
    assert not refused.ok and "Knack returned 0" in refused.error
    assert len(signals.s3()) == N


BAD_INPUT = [
    (
        "view_9",
        None,
        "container 'view_9' is not configured for app 'signals' "
        "(configured: object_1, view_1, view_99)",
    ),
    ("view_99", None, "view view_99 has no scene"),
    ("object_1", "next tuesday", "date 'next tuesday' does not parse: give POSIX seconds"),
]


@pytest.mark.parametrize("container, date, message", BAD_INPUT)
def test_bad_input(signals, container, date, message):
    signals.containers["view_99"] = {}
    signals.write_params()
    result = signals.sync(container, date=date)
    assert not result.ok
    assert message in result.error
    assert signals.stack.s3_keys() == []  # nothing written


def test_bad_input_fails_the_run_with_its_message_in_the_report(signals):
    """The report path the cases above share (the error raised in the sync's cell)."""
    container, date, message = BAD_INPUT[0]
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
    # the notebook's call; its notes head the report (test_auto_state's papermill runs)
    result = sync.sync_container(
        app_name="signals", container="object_1", env="dev", date="2026-11-01"
    )
    assert result.ok
    assert result.summary()["mode"] == "full" and result.summary()["written"] == N
    assert any("has no modified_date_field" in note for note in result.notes)


def test_records_with_bad_or_no_ids_are_rejected_by_name(signals):
    record = dict(signals.knack()[sorted(signals.knack())[0]])
    record["id"] = "../../escape"
    signals.stack.knack.put_record(signals.app_id, "object_1", record)
    anonymous = {k: v for k, v in record.items() if k != "id"}
    signals.stack.knack.put_record(signals.app_id, "object_1", anonymous, slot="no-id")
    result = signals.sync()
    assert not result.ok
    assert "2 records have no valid id" in result.error
    assert "Reruns reject them again: check these records in Knack" in result.error
    assert "a rerun is safe and completes the work" not in result.error
    assert "id '../../escape'" in result.error and "a record without id" in result.error
    stored = signals.s3()
    assert len(stored) == N  # every valid record written, nothing under a bad key
    assert not [k for k in signals.stack.s3_keys() if "escape" in k or "None" in k]
    assert result.summary["deleted"] == 0 and result.summary["failed"] == 2


def test_a_lone_surrogate_is_stored_as_knack_sent_it_and_the_rest_too(signals):
    ids = sorted(signals.knack())
    record = signals.knack()[ids[0]]
    record["field_2"] = "broken \ud800 text"  # Knack sent "broken \\ud800 text" (valid JSON)
    signals.stack.knack.put_record(signals.app_id, "object_1", record)
    result = signals.run()
    assert result.ok, result.error
    assert result.summary["written"] == N and result.summary["failed"] == 0
    stored = signals.s3()
    assert b'"broken \\ud800 text"' in stored[ids[0]]  # the JSON escape, not invalid UTF-8
    stored[ids[0]].decode("utf-8")  # the object is valid UTF-8
    signals.assert_s3_equals_knack()  # parses back to what Knack sent, every record stored
    assert signals.sync().summary["unchanged"] == N  # and compares equal on the next run


def change_field(signals, key, new_type=None):
    """Field ``key`` of object_1 retyped to ``new_type`` in Knack (None: removed)."""
    knack = signals.stack.knack
    metadata = requests.get(f"{knack.url}/applications/{signals.app_id}", timeout=10).json()
    fields = metadata["application"]["objects"][0]["fields"]
    if new_type is None:
        fields[:] = [f for f in fields if f["key"] != key]
    else:
        next(f for f in fields if f["key"] == key)["type"] = new_type
    knack.add_app(metadata, {"object_1": knack.records(signals.app_id, "object_1")})


def test_a_modified_date_field_retyped_fails_an_incremental_run_by_name_before_any_listing(signals):
    change_field(signals, "field_5", "short_text")  # "Modified Date", a date/time no more
    assert run_in_process("upload_metadata", app_name="signals", env="dev").ok
    signals.stack.knack.reset_log()
    result = signals.run(date="2026-03-01")
    assert not result.ok
    message = (
        'object_1\'s modified_date_field field_5 ("Modified Date") is a short_text '
        "field now, not date/time"
    )
    assert message in result.error
    assert (
        "fix modified_date_field under containers.object_1 in signals.yaml (it has no "
        "date/time field)"
    ) in result.error
    assert "or run a full run (date=None)" in result.error
    assert "Invalid filter operator" not in result.error
    assert "is a short_text field now, not date/time" in signals.report_text(result)
    assert [r.path for r in signals.stack.knack.requests] == []  # metadata from S3, no listing
    assert signals.stack.s3_keys("signals-dev/object_1/") == []


def test_a_modified_date_field_removed_fails_an_incremental_run_by_name(signals):
    change_field(signals, "field_5")  # no metadata stored: the run fetches it
    result = signals.sync("view_1", date="2026-03-01")
    assert not result.ok
    assert (
        "view_1's modified_date_field field_5 is not a field of its object (object_1) now"
    ) in result.error
    assert "fix modified_date_field under containers.view_1 in signals.yaml" in result.error
    assert [r.path for r in signals.stack.knack.requests if "/records" in r.path] == []
    assert signals.sync("view_1").ok  # a full run needs no modified date
