"""The container snapshot (``_snapshots/<app>-<env>/<container>.parquet``, DESIGN.md) end to
end: after a full run of knack_container_to_s3 through papermill, then incremental and
deleting runs (the notebook's steps in process, tests/inprocess.py: no report is read) it
equals the store (ids, ``record`` bytes, typed values of every field type of the knackpy
fixture); a failed run leaves it as it was, marked stale, and the next run rebuilds it; a
corrupted or missing snapshot is rebuilt; an incremental run after the fields changed says a
full run is needed, which makes the columns follow; publishing from the snapshot equals
publishing record by record."""

from __future__ import annotations

import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from inprocess import run as run_in_process

from emulators.knack import load_fixture_app
from emulators.stack import DEMO_AGOL_SERVICE, DEMO_DATASET
from lib import reports, sync
from lib.clients.s3_records import dumps_stable
from lib.metadata import upload_metadata
from lib.publish import get_publisher
from lib.records import format_records
from lib.snapshot import read_frame

APP_ID = "5d79512148c4af00106d1507"
CHICAGO = ZoneInfo("America/Chicago")
FLOAT, BOOL, TIME = {"number", "currency", "rating", "auto_increment"}, {"boolean"}, {"date_time"}


def snapshot(stack, prefix, container) -> pa.Table:
    body = (
        stack.s3()
        .get_object(Bucket=stack.bucket, Key=f"_snapshots/{prefix}/{container}.parquet")["Body"]
        .read()
    )
    return pq.read_table(io.BytesIO(body))


def stored(stack, prefix, container) -> dict[str, bytes]:
    s3, out = stack.s3(), {}
    for key in stack.s3_keys(f"{prefix}/{container}/"):
        out[key.rsplit("/", 1)[1].removesuffix(".json")] = s3.get_object(
            Bucket=stack.bucket, Key=key
        )["Body"].read()
    return out


def assert_snapshot_equals_store(stack, prefix, container) -> pa.Table:
    table = snapshot(stack, prefix, container)
    store = stored(stack, prefix, container)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == len(store)
    assert set(ids) == set(store)
    for rid, text in zip(ids, table.column("record").to_pylist(), strict=True):
        assert text.encode() == store[rid], rid  # byte-equal to the record's object
    return table


def stale_mark(stack, prefix, container) -> bool:
    """Whether the snapshot is marked stale: a run's mark (``snapshot-stale/<run id>.json``)
    or the single mark of earlier versions (``snapshot.json``), lib/stale_marks.py."""
    return bool(stack.s3_keys(f"_state/{prefix}/{container}/snapshot"))


def run(container="object_3", date=None, app="demo"):
    return reports.run_notebook(
        "knack_container_to_s3", app_name=app, env="dev", container=container, date=date
    )


def run_without_kernel(container="object_3", date=None, app="demo"):
    """:func:`run`'s steps in process (tests/inprocess.py), for runs whose report is not read."""
    return run_in_process(
        "knack_container_to_s3", app_name=app, env="dev", container=container, date=date
    )


def notes(result) -> str:
    return json.dumps(result.summary)


@pytest.fixture
def demo(demo_env):
    upload_metadata(app_name="demo", env="dev")
    return demo_env


def expected_typed(record: dict, key: str, knack_type: str):
    """The typed value of a field, from the record's raw value (not the code under test)."""
    raw = record.get(f"{key}_raw")
    if knack_type in FLOAT:
        return None if raw in (None, "") else float(raw)
    if knack_type in BOOL:
        return raw if isinstance(raw, bool) else None
    if knack_type in TIME:
        if not raw:
            return None
        # Knack's iso_timestamp is the app's local wall time written as if it were UTC
        wall = dt.datetime.fromisoformat(raw["iso_timestamp"].replace("Z", ""))
        return wall.replace(tzinfo=CHICAGO)
    raise AssertionError(knack_type)


def test_full_incremental_and_deleting_runs_keep_the_snapshot_equal_to_the_store(demo):
    metadata = load_fixture_app()[0]["application"]
    fields = {
        f["key"]: f for o in metadata["objects"] if o["key"] == "object_3" for f in o["fields"]
    }
    full = run()
    assert full.ok, full.error
    assert full.summary["snapshot_rows"] == 25
    table = assert_snapshot_equals_store(demo, "demo-dev", "object_3")
    assert not stale_mark(demo, "demo-dev", "object_3")

    # every field of the object has its column, typed by the field's type
    spec = json.loads(table.schema.metadata[b"knack_nb"])
    assert {key for key, _, _ in spec["columns"]} == set(fields)
    assert table.column_names[:2] == ["id", "record"]
    assert len(table.column_names) == 2 + len(fields)
    by_id = {r["id"]: r for r in demo.knack.records(APP_ID, "object_3")}  # what was synced
    formatted = {f.id: f for f in format_records(metadata, "object_3", list(by_id.values()))}
    rows = {r["id"]: r for r in table.to_pylist()}
    for key, name, knack_type in spec["columns"]:
        assert knack_type == fields[key]["type"]
        column_type = table.schema.field(name).type
        if knack_type in FLOAT:
            assert column_type == pa.float64()
        elif knack_type in BOOL:
            assert column_type == pa.bool_()
        elif knack_type in TIME:
            assert column_type == pa.timestamp("us", tz="America/Chicago")
        else:
            assert column_type == pa.string()
        for rid, row in rows.items():
            if knack_type in FLOAT | BOOL | TIME:
                assert row[name] == expected_typed(by_id[rid], key, knack_type), (rid, key)
            else:  # knackpy's formatted value, as text
                value = formatted[rid].values[name]
                assert row[name] == (None if value is None else str(value)), (rid, key)
    types = {fields[k]["type"] for k in fields}
    assert {
        "number",
        "currency",
        "rating",
        "auto_increment",
        "boolean",
        "date_time",
        "address",
        "connection",
        "multiple_choice",
    } <= types  # every kind is covered

    # read_frame: Knack's integers as integers (the file keeps float64, checked above)
    frame = read_frame(app_name="demo", container="object_3", env="dev")
    counters = [name for _, name, knack_type in spec["columns"] if knack_type == "auto_increment"]
    assert counters
    for name in counters:
        assert str(frame[name].dtype) == "Int64", frame[name].dtype  # before: float64
        ids = frame["id"].tolist()
        assert frame[name].tolist() == [
            None if rows[rid][name] is None else int(rows[rid][name]) for rid in ids
        ]
        assert all(type(v) is int for v in frame[name].dropna().tolist())

    # incremental: two records changed in Knack
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    changed = sorted(by_id)[:2]
    for i, rid in enumerate(changed):
        record = dict(by_id[rid])
        record["field_7"] = record["field_7_raw"] = f"changed {i}"
        demo.knack.put_record(APP_ID, "object_3", record)
        demo.knack.touch(APP_ID, "object_3", rid, field="field_13", when=dt.datetime.now(dt.UTC))
    inc = run_without_kernel(date=before.isoformat())
    assert inc.ok, inc.error
    assert (inc.summary["mode"], inc.summary["written"], inc.summary["snapshot_rows"]) == (
        "incremental",
        2,
        25,
    )
    table = assert_snapshot_equals_store(demo, "demo-dev", "object_3")
    rows = {r["id"]: r for r in table.to_pylist()}
    assert [rows[rid]["short_text"] for rid in changed] == ["changed 0", "changed 1"]

    # a full run with deletions
    gone = sorted(by_id)[-3:]
    for rid in gone:
        demo.knack.delete_record(APP_ID, "object_3", rid)
    deleting = run_without_kernel()
    assert deleting.ok, deleting.error
    assert (deleting.summary["deleted"], deleting.summary["snapshot_rows"]) == (3, 22)
    table = assert_snapshot_equals_store(demo, "demo-dev", "object_3")
    assert not set(gone) & set(table.column("id").to_pylist())


def test_a_failed_run_leaves_the_snapshot_and_the_next_run_rebuilds_it(signals):
    assert signals.sync().ok
    before = snapshot(signals.stack, "signals-dev", "object_1")
    ids = sorted(signals.knack())
    now = dt.datetime.now(dt.UTC)
    for i, rid in enumerate(ids[:3]):
        signals.touch(rid, now, change=f"changed {i}")
    bad = dict(signals.knack()[ids[4]], id="not-a-knack-id")
    signals.stack.knack.put_record(signals.app_id, "object_1", bad)
    signals.stack.knack.touch(
        signals.app_id, "object_1", "not-a-knack-id", field="field_5", when=now
    )
    since = (now - dt.timedelta(seconds=1)).isoformat()
    failed = signals.sync(date=since)
    assert not failed.ok and "no valid id" in failed.error
    assert failed.summary["written"] == 3  # the valid records were written ...
    assert snapshot(signals.stack, "signals-dev", "object_1").equals(before)  # ... not this
    assert stale_mark(signals.stack, "signals-dev", "object_1")

    signals.stack.knack.delete_record(signals.app_id, "object_1", "not-a-knack-id")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()  # Knack: by date
    rerun = signals.run(date=later)  # fetches nothing: the snapshot must come from S3
    assert rerun.ok, rerun.error
    assert rerun.summary["fetched"] == 0
    assert "rebuilt from the stored records" in signals.report_text(rerun)
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert len(table) == len(ids)
    assert not stale_mark(signals.stack, "signals-dev", "object_1")


@pytest.mark.parametrize("damage", ["corrupt", "missing", "foreign"])
def test_an_unusable_snapshot_is_rebuilt_by_an_incremental_run(signals, damage):
    assert signals.sync().ok
    s3, key = signals.stack.s3(), "_snapshots/signals-dev/object_1.parquet"
    if damage == "corrupt":
        s3.put_object(Bucket=signals.stack.bucket, Key=key, Body=b"PAR1 not parquet at all")
    elif damage == "missing":
        s3.delete_object(Bucket=signals.stack.bucket, Key=key)
    else:  # a Parquet file, but not one of ours
        out = io.BytesIO()
        pq.write_table(pa.table({"x": [1, 2]}), out)
        s3.put_object(Bucket=signals.stack.bucket, Key=key, Body=out.getvalue())
    rid = sorted(signals.knack())[7]
    now = dt.datetime.now(dt.UTC)
    signals.touch(rid, now, change="after the damage")
    result = signals.sync(date=(now - dt.timedelta(seconds=1)).isoformat())
    assert result.ok, result.error
    assert result.summary["written"] == 1
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert len(table) == len(signals.knack())


def test_an_unchanged_full_rerun_keeps_the_snapshot_as_it_is(signals):
    assert signals.sync().ok
    s3, key = signals.stack.s3(), "_snapshots/signals-dev/object_1.parquet"
    etag = s3.head_object(Bucket=signals.stack.bucket, Key=key)["ETag"]
    again = sync.sync_container(app_name="signals", container="object_1", env="dev")
    assert again.ok and again.written == 0
    assert any("(unchanged)" in n for n in again.notes)
    assert s3.head_object(Bucket=signals.stack.bucket, Key=key)["ETag"] == etag
    assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    # one record changed: the snapshot is written again, the other rows copied
    rid = sorted(signals.knack())[2]
    signals.touch(rid, dt.datetime.now(dt.UTC), change="changed once")
    changed = sync.sync_container(app_name="signals", container="object_1", env="dev")
    assert changed.ok and changed.written == 1
    assert any("(built)" in n for n in changed.notes)
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert len(table) == len(signals.knack())


def test_a_full_rerun_takes_unchanged_rows_only_when_they_match_the_stored_object(signals):
    assert signals.sync().ok
    s3, key = signals.stack.s3(), "_snapshots/signals-dev/object_1.parquet"
    table = snapshot(signals.stack, "signals-dev", "object_1")
    # tamper with one row of the snapshot: its record and a typed column no longer match S3
    rid = table.column("id")[0].as_py()
    records = table.column("record").to_pylist()
    records[0] = records[0].replace('"id"', '"id" ', 1)
    notes_col = table.schema.get_field_index("notes")
    tampered = table.set_column(1, "record", pa.array(records, pa.string()))
    if notes_col >= 0:
        values = tampered.column("notes").to_pylist()
        values[0] = "tampered"
        tampered = tampered.set_column(notes_col, "notes", pa.array(values, pa.string()))
    out = io.BytesIO()
    pq.write_table(tampered, out)
    s3.put_object(Bucket=signals.stack.bucket, Key=key, Body=out.getvalue())

    again = signals.sync()
    assert again.ok, again.error
    assert (again.summary["written"], again.summary["unchanged"]) == (0, len(signals.knack()))
    rebuilt = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    # the tampered row came from S3 again, typed columns included
    fresh = {r["id"]: r for r in rebuilt.to_pylist()}[rid]
    first = {r["id"]: r for r in table.to_pylist()}[rid]
    assert fresh == first


def test_schema_drift_an_incremental_run_keeps_the_columns_and_asks_for_a_full_run(signals):
    assert signals.sync().ok  # no metadata in S3 yet: the sync fetched it from Knack
    assert run_in_process("upload_metadata", app_name="signals", env="dev").ok
    s3 = signals.stack.s3()
    key = f"signals-dev/{signals.app_id}.json"
    metadata = json.loads(s3.get_object(Bucket=signals.stack.bucket, Key=key)["Body"].read())
    obj = next(o for o in metadata["objects"] if o["key"] == "object_1")
    renamed = obj["fields"][1]
    old_name = snapshot(signals.stack, "signals-dev", "object_1").column_names[3]
    renamed["name"] = "Renamed Field"
    obj["fields"].append({"key": "field_99", "name": "Added Later", "type": "short_text"})
    s3.put_object(Bucket=signals.stack.bucket, Key=key, Body=json.dumps(metadata).encode())
    columns_before = snapshot(signals.stack, "signals-dev", "object_1").column_names

    rid = sorted(signals.knack())[3]
    now = dt.datetime.now(dt.UTC)
    signals.touch(rid, now, change="after the rename")
    inc = signals.run(date=(now - dt.timedelta(seconds=1)).isoformat())
    assert inc.ok, inc.error
    text = signals.report_text(inc)
    assert "run a full sync" in text and "field_99 added" in text
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert table.column_names == columns_before  # kept: the renamed field under its old name
    assert old_name in table.column_names

    full = sync.sync_container(app_name="signals", container="object_1", env="dev")
    assert full.ok, full.errors
    assert any("rebuilt it with the new columns" in n and "field_99 added" in n for n in full.notes)
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert "renamed_field" in table.column_names and "added_later" in table.column_names
    assert old_name not in table.column_names


def test_a_view_snapshot_has_the_source_objects_columns(signals):
    assert signals.sync("view_1").ok
    table = assert_snapshot_equals_store(signals.stack, "signals-dev", "view_1")
    assert len(table) == len(signals.knack())
    spec = json.loads(table.schema.metadata[b"knack_nb"])
    assert spec["container"] == "view_1" and spec["columns"]


@pytest.mark.parametrize("destination", ["socrata", "agol"])
def test_a_full_publish_from_the_snapshot_equals_one_from_the_records(demo, destination):
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    notebook = {"socrata": "upsert_knack_container_to_socrata", "agol": "knack_container_to_agol"}[
        destination
    ]

    def published():
        if destination == "socrata":
            return {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
        features = demo.arcgis.features(DEMO_AGOL_SERVICE, 0)
        return sorted(
            (
                json.dumps(
                    {
                        k: v
                        for k, v in f["attributes"].items()
                        if k.lower() not in ("objectid", "fid")
                    },
                    sort_keys=True,
                ),
                json.dumps(f.get("geometry"), sort_keys=True),
            )
            for f in features
        )

    from_snapshot = get_publisher(destination)(app_name="demo", env="dev", container="object_3")
    assert from_snapshot.ok, from_snapshot.errors
    assert any("25 from the snapshot" in n and "0 one by one" in n for n in from_snapshot.notes)
    rows_snapshot = published()
    assert rows_snapshot

    demo.reset_socrata()
    demo.reset_arcgis()
    demo.s3().delete_object(Bucket=demo.bucket, Key="_snapshots/demo-dev/object_3.parquet")
    by_record = reports.run_notebook(notebook, app_name="demo", env="dev", container="object_3")
    assert by_record.ok, by_record.error
    assert published() == rows_snapshot
    assert from_snapshot.read == by_record.summary["read"] == 25
    key = by_record.report.removeprefix(f"s3://{demo.bucket}/")
    text = demo.s3().get_object(Bucket=demo.bucket, Key=key)["Body"].read().decode()
    assert "0 from the snapshot" in text and "25 one by one" in text and "does not exist" in text


def test_a_publish_reads_what_s3_holds_when_the_store_changed_after_the_snapshot(demo):
    """Records deleted, changed and added in S3 outside a sync: the snapshot serves the
    others, and the publish equals S3, not the snapshot."""
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    s3, bucket = demo.s3(), demo.bucket
    ids = sorted(stored(demo, "demo-dev", "object_3"))
    s3.delete_object(Bucket=bucket, Key=f"demo-dev/object_3/{ids[0]}.json")
    changed = json.loads(stored(demo, "demo-dev", "object_3")[ids[1]])
    changed["field_7"] = changed["field_7_raw"] = "changed in S3"
    s3.put_object(Bucket=bucket, Key=f"demo-dev/object_3/{ids[1]}.json", Body=dumps_stable(changed))
    added = dict(changed, id="0" * 24)
    s3.put_object(Bucket=bucket, Key=f"demo-dev/object_3/{'0' * 24}.json", Body=dumps_stable(added))
    result = get_publisher("socrata")(app_name="demo", env="dev", container="object_3")
    assert result.ok, result.errors
    assert result.read == 25
    assert any("23 from the snapshot" in n and "2 one by one" in n for n in result.notes)
    rows = {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
    assert set(rows) == set(stored(demo, "demo-dev", "object_3"))
    assert rows[ids[1]]["short_text"] == "changed in S3" and ids[0] not in rows


@pytest.mark.parametrize("damage", ["row dropped", "row twice"])
def test_a_full_rerun_completes_a_snapshot_that_lacks_or_repeats_a_row(signals, damage):
    assert signals.sync().ok
    s3, key = signals.stack.s3(), "_snapshots/signals-dev/object_1.parquet"
    table = snapshot(signals.stack, "signals-dev", "object_1")
    damaged = (
        table.slice(1)
        if damage == "row dropped"
        else pa.concat_tables([table.slice(1), table.slice(1, 1)])
    )  # the first row gone, the second twice
    out = io.BytesIO()
    pq.write_table(damaged, out)
    s3.put_object(Bucket=signals.stack.bucket, Key=key, Body=out.getvalue())
    again = sync.sync_container(app_name="signals", container="object_1", env="dev")
    assert again.ok and (again.written, again.unchanged) == (0, len(signals.knack()))
    rebuilt = assert_snapshot_equals_store(signals.stack, "signals-dev", "object_1")
    assert rebuilt.to_pylist() and {r["id"]: r for r in rebuilt.to_pylist()} == {
        r["id"]: r for r in table.to_pylist()
    }
    if damage == "row twice":
        assert any("held an id twice" in n for n in again.notes)
