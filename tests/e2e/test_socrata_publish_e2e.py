"""upsert_knack_container_to_socrata.ipynb end to end: papermill → kernel → moto S3 →
sodapy → the Socrata emulator. Setup (metadata and records into S3) runs in-process, and so do
the publishes whose report is not what a test checks (a publish before a change, the runs of
a fault and its rerun): ``publish_in_process`` takes the notebook's own steps
(tests/inprocess.py). Each behaviour the report shows keeps a papermill run: the full
publish, an incremental one, a full one with deletions, no_replace's kept rows, rows Socrata
refuses, the mass-delete refusal, a number field retyped to text and one value a column cannot
take; the full publish's run has a record with a lone surrogate
(in the report's sample)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from inprocess import next_second_after_writes
from inprocess import run as run_in_process

from emulators.knack import load_fixture_app
from emulators.stack import DEMO_DATASET
from lib import reports, sync
from lib.metadata import upload_metadata

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "demo_object_3_socrata_rows.json"
PARAMS = Path(__file__).resolve().parents[2] / "params" / "demo.yaml"
APP_ID = "5d79512148c4af00106d1507"


@pytest.fixture
def demo(demo_env):
    """Metadata and object_3's records in S3, as the sync leaves them."""
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    return demo_env


def publish(date=None) -> reports.RunResult:
    return reports.run_notebook(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date=date,
    )


def publish_in_process(date=None) -> reports.RunResult:
    return run_in_process(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date=date,
    )


def dataset(stack) -> dict[str, dict]:
    return {r["id"]: r for r in stack.socrata.rows(DEMO_DATASET)}


def report_text(stack, result) -> str:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def demo_params(tmp_path, monkeypatch, **socrata) -> None:
    params = yaml.safe_load(PARAMS.read_text())
    params["containers"]["object_3"]["socrata"].update(socrata)
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "demo.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(folder))


SURROGATE_ID = "5f3e05757972ef0015648984"


def test_full_publish_equals_the_expected_rows_column_by_column(demo):
    """The full publish's run, with one record holding a lone surrogate (valid JSON, as Knack
    sends it; not UTF-8): it is published with the others and shown in the report's sample."""
    key = f"demo-dev/object_3/{SURROGATE_ID}.json"
    record = json.loads(demo.s3().get_object(Bucket=demo.bucket, Key=key)["Body"].read())
    record["field_7"] = record["field_7_raw"] = "broken \ud800 text"
    demo.s3().put_object(Bucket=demo.bucket, Key=key, Body=json.dumps(record).encode())

    result = publish()
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["read"], s["created"], s["updated"], s["deleted"]) == (
        "full",
        25,
        25,
        0,
        0,
    )
    expected = {r["id"]: r for r in json.loads(GOLDEN.read_text())}
    expected[SURROGATE_ID] = {**expected[SURROGATE_ID], "short_text": "broken \ud800 text"}
    got = dataset(demo)
    assert got[SURROGATE_ID]["short_text"] == "broken \ud800 text"
    assert set(got) == set(expected)
    columns = sorted({c for r in expected.values() for c in r})
    for column in columns:  # one assertion per column, so a failure names it
        assert {i: r.get(column) for i, r in got.items()} == {
            i: r.get(column) for i, r in expected.items()
        }, column
    # the golden file's checks by type, read off the fixture by hand
    first = got["5d7964422d7159001659b27a"]
    assert first["date_time___w__time_default_current"] == "2018-07-03T10:26:00.000"
    assert first["address_lat_lon"] == {"type": "Point", "coordinates": [10.0, 10.0]}
    assert first["yes_no"] is True and first["currency"] == "100.43"
    assert first["_id"] == "1" and first["customer"] == "Johnny C"
    # a field the dataset lacks is dropped and reported
    assert s["dropped_fields"] == ["signature"]
    text = report_text(demo, result)
    assert "not a column of the dataset" in text
    for secret in demo.secrets:
        assert secret not in text
    # its log line reads as words, not a Python dict (before: "demo-allf: {'app_name': ...")
    (line,) = [ln for ln in text.split("\\n") if "lib.publish.socrata: object_3 →" in ln]
    assert "{'" not in line and "mode full · read 25 · created 25" in line, line
    assert "['" not in line and "dropped_fields signature" in line, line  # before: ['signature']


def test_incremental_publish_after_changes_and_deletions_on_a_full_run(demo):
    assert publish_in_process().ok
    before = next_second_after_writes(demo, "demo-dev/object_3/")  # after the first sync's
    app = demo.knack
    ids = sorted(r["id"] for r in app.records(APP_ID, "object_3"))
    for rid in ids[:2]:
        record = next(r for r in app.records(APP_ID, "object_3") if r["id"] == rid)
        record["field_7"] = record["field_7_raw"] = f"changed {rid[-4:]}"
        app.put_record(APP_ID, "object_3", record)
    app.delete_record(APP_ID, "object_3", ids[-1])
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok  # full

    result = publish(date=before.isoformat())
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["read"], s["updated"], s["created"], s["deleted"]) == (
        "incremental",
        2,
        2,
        0,
        0,
    )
    rows = dataset(demo)
    for rid in ids[:2]:
        assert rows[rid]["short_text"] == f"changed {rid[-4:]}"
    assert ids[-1] in rows  # an incremental publish deletes nothing

    full = publish()
    assert full.ok
    assert full.summary["deleted"] == 1
    assert set(dataset(demo)) == set(ids[:-1])
    assert ids[-1] in report_text(demo, full)


def test_no_replace_keeps_rows_and_lists_them(demo, tmp_path, monkeypatch):
    assert publish_in_process().ok
    gone = sorted(dataset(demo))[0]
    demo.s3().delete_object(Bucket=demo.bucket, Key=f"demo-dev/object_3/{gone}.json")
    demo_params(tmp_path, monkeypatch, no_replace=True)
    result = publish()
    assert result.ok
    assert result.summary["deleted"] == 0 and result.summary["kept"] == 1
    assert gone in dataset(demo)
    assert gone in report_text(demo, result)


def test_errors_in_an_answer_fail_the_run_and_name_the_row(demo):
    bad = "5f3e05757972ef0015648984"
    demo.socrata.faults.error_ids = {bad}
    result = publish()
    assert not result.ok
    assert "PublishError" in result.error and bad in result.error
    assert "a rerun alone fails the same way" in result.error
    assert bad in report_text(demo, result)


def test_a_fault_mid_publish_then_rerun_ends_equal_to_s3(demo, tmp_path, monkeypatch):
    demo_params(tmp_path, monkeypatch, chunk_size=10)
    assert publish_in_process().ok
    # S3 changes: one record gone, the dataset is then interrupted after one chunk
    gone = sorted(dataset(demo))[3]
    demo.s3().delete_object(Bucket=demo.bucket, Key=f"demo-dev/object_3/{gone}.json")
    demo.socrata.faults.status = 500
    demo.socrata.faults.fail_after_writes = 1
    failed = publish_in_process()
    assert not failed.ok and "500" in failed.error
    assert len(dataset(demo)) == 25  # nothing was truncated or lost
    demo.socrata.faults.fail_after_writes = None
    again = publish_in_process()
    assert again.ok, again.error
    assert again.summary["deleted"] == 1
    stored = {k.rsplit("/", 1)[1].removesuffix(".json") for k in demo.s3_keys("demo-dev/object_3/")}
    assert set(dataset(demo)) == stored
    expected = {r["id"]: r for r in json.loads(GOLDEN.read_text())}
    assert all(dataset(demo)[i] == expected[i] for i in stored)


def test_missing_socrata_credential_is_named(demo, monkeypatch):
    monkeypatch.delenv("SOCRATA_API_KEY_SECRET")
    result = publish_in_process()  # a failure's report: test_errors_in_an_answer_...
    assert not result.ok
    assert "SOCRATA_API_KEY_SECRET is not set" in result.error
    assert dataset(demo) == {}


def test_mass_delete_guard_keeps_the_dataset_when_s3_lost_most_records(demo, tmp_path, monkeypatch):
    assert publish_in_process().ok
    ids = sorted(dataset(demo))
    assert len(ids) == 25
    for rid in ids[1:]:  # S3 holds 1 of 25 (say, a first full sync is still filling it)
        demo.s3().delete_object(Bucket=demo.bucket, Key=f"demo-dev/object_3/{rid}.json")
    refused = publish()
    assert not refused.ok
    assert "refusing to delete 24 of the 25 rows of the dataset" in refused.error
    assert "S3 holds 1 records of object_3" in refused.error
    assert "mass_delete_threshold" in refused.error and "allow_mass_delete" in refused.error
    assert "a rerun alone fails the same way" in refused.error
    assert set(dataset(demo)) == set(ids)  # nothing deleted
    assert "refusing to delete 24" in report_text(demo, refused)

    params = yaml.safe_load(PARAMS.read_text())
    params["containers"]["object_3"]["allow_mass_delete"] = True
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "demo.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(folder))
    allowed = publish_in_process()  # a full publish's deletions in a report: above
    assert allowed.ok, allowed.error
    assert allowed.summary["deleted"] == 24 and set(dataset(demo)) == {ids[0]}


def test_a_full_publish_may_delete_up_to_the_threshold(demo):
    assert publish_in_process().ok
    ids = sorted(dataset(demo))
    for rid in ids[:12]:  # 12 of 25: under half
        demo.s3().delete_object(Bucket=demo.bucket, Key=f"demo-dev/object_3/{rid}.json")
    result = publish_in_process()
    assert result.ok, result.error
    assert result.summary["deleted"] == 12 and set(dataset(demo)) == set(ids[12:])


def retype_number(demo, text) -> None:
    """Knack's "Number" field of object_3 (field_10) retyped to short text holding
    ``text(record)`` in each record; then the metadata and object_3 synced to S3 (full)."""
    metadata, records = load_fixture_app()
    (obj,) = [o for o in metadata["application"]["objects"] if o["key"] == "object_3"]
    (number,) = [f for f in obj["fields"] if f["key"] == "field_10"]
    number["type"] = "short_text"
    number.pop("format", None)
    for record in records["object_3"]:
        record["field_10"] = record["field_10_raw"] = text(record)
    demo.knack.add_app(metadata, records)
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok


def writes(stack) -> list:
    return [r for r in stack.socrata.requests if r.method in ("POST", "PUT")]


def test_a_number_field_retyped_to_text_fails_before_any_write(demo):
    """Every value of the field is text like "100 cabinets" now: the run fails before
    writing anything, and says which field holds what and what the column takes."""
    assert publish_in_process().ok
    before = dataset(demo)
    retype_number(demo, lambda r: f"{r['field_10_raw']} cabinets")
    demo.socrata.reset_log()
    result = publish()
    assert not result.ok
    assert re.search(
        r"field_10 'Number' holds text like '\d+ cabinets' but column number is "
        r"number",
        result.error,
    ), result.error
    assert "Nothing was written" in result.error
    assert dataset(demo) == before and writes(demo) == []
    assert "holds text like" in report_text(demo, result)


def test_a_value_its_column_cannot_take_fails_that_record_alone(demo):
    """The field retyped to text still holds numbers, but one record says "3 cabinets": that
    record fails by id (the others are published, the run fails); fixed in Knack, a rerun
    completes the work."""
    bad = SURROGATE_ID
    retype_number(demo, lambda r: "3 cabinets" if r["id"] == bad else str(r["field_10_raw"]))
    result = publish()
    assert not result.ok
    assert f"{bad}: number (number) cannot take '3 cabinets'" in result.error, result.error
    assert "a rerun alone fails the same way" in result.error
    assert bad in report_text(demo, result)
    rows = dataset(demo)
    expected = {r["id"]: r for r in json.loads(GOLDEN.read_text())}
    assert set(rows) == set(expected) - {bad}
    assert all(rows[rid]["number"] == expected[rid]["number"] for rid in rows)

    retype_number(demo, lambda r: "3" if r["id"] == bad else str(r["field_10_raw"]))
    rerun = publish_in_process()
    assert rerun.ok, rerun.error
    assert set(dataset(demo)) == set(expected) and dataset(demo)[bad]["number"] == "3"


def test_a_delete_socrata_refuses_in_part_still_counts_the_rows_it_deleted(demo):
    assert publish_in_process().ok
    ids = sorted(dataset(demo))
    gone = ids[:2]
    for rid in gone:
        demo.s3().delete_object(Bucket=demo.bucket, Key=f"demo-dev/object_3/{rid}.json")
    demo.socrata.faults.error_ids = {gone[0]}  # Socrata refuses one of the two deletions
    result = publish_in_process()
    assert not result.ok and "errors deleting rows" in result.error
    assert set(dataset(demo)) == set(ids) - {gone[1]}
    assert result.summary["deleted"] == 1  # the one it did delete is counted
