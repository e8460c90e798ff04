"""Fields whose labels map to one name, end to end: the generated signals app with six more
fields whose labels collide by the label rule ("Signal ID" and "signal-id", "ID" and "_ID",
two two-character CJK labels, and a label that is the suffixed name of another field).

The sync and explore run through papermill (the snapshot must be a file pyarrow and pandas
read, holding every field's values); a Socrata dataset and an ArcGIS table that lack the
column of the later field refuse the publish before any write, naming both fields (through
papermill: the report's error); with a column for every name, the publish (in process: the
notebook's own steps, tests/inprocess.py) fills each column with its own field's values.
"""

from __future__ import annotations

import copy
import dataclasses
import io

import pyarrow.parquet as pq
import pytest
from inprocess import next_second_after_writes
from inprocess import run as run_in_process

from emulators.knack import generate_app
from lib import reports, snapshot, sync
from lib.clients.app_store import AppStore
from lib.metadata import upload_metadata

N = 12
DATASET = "clsh-sgnl"
TABLE = "c1a5e0c3d4e5f60718293a4b5c6d7e8f"
# field key -> label, and the column each must end up in (lib.records.column_names)
EXTRA = {
    "field_9": ("Signal ID field_10", "signal_id_field_10"),  # the suffixed name of field_10
    "field_10": ("signal-id", "signal_id_field_10_field_10"),  # "Signal ID" is field_1
    "field_11": ("ID", "_id"),
    "field_12": ("_ID", "_id_field_12"),
    "field_13": ("名前", "field_13"),
    "field_14": ("住所", "field_14"),
}
NAMES = {
    "field_1": "signal_id",
    "field_2": "location_name",
    "field_3": "location",
    "field_4": "signal_status",
    "field_5": "modified_date",
    "field_6": "is_flashing",
    "field_7": "cabinet_count",
    "field_8": "notes",
    **{key: name for key, (_, name) in EXTRA.items()},
}
UNRESOLVED = "signal_id_field_10_field_10"  # the column field_10 needs in a destination


def value(key: str, i: int) -> str:
    return f"{key} of record {i}"


@pytest.fixture
def clash(signals):
    """The signals app (object_1) with the colliding fields, their values distinct per field
    and record, and a Socrata dataset and an ArcGIS table in the params."""
    metadata, records = generate_app(N, seed=1)
    obj = metadata["application"]["objects"][0]
    template = next(f for f in obj["fields"] if f["key"] == "field_2")  # short text
    for key, (label, _) in EXTRA.items():
        obj["fields"].append(
            {
                **copy.deepcopy(template),
                "key": key,
                "name": label,
                "_id": f"{template['_id'][:-2]}{key[-2:]}",
            }
        )
    for i, record in enumerate(records["object_1"]):
        for key in EXTRA:
            record[key] = record[f"{key}_raw"] = value(key, i)
    signals.stack.knack.add_app(metadata, records)
    signals.containers["object_1"]["socrata"] = {"resource_id": DATASET}
    signals.containers["object_1"]["agol"] = {"service_id": TABLE, "layer_id": 0}
    signals.write_params()
    signals.records = {r["id"]: (i, r) for i, r in enumerate(records["object_1"])}
    return signals


def synced(clash):
    upload_metadata(app_name="signals", env="dev")
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok


def socrata_columns(names):
    return [{"fieldName": "id", "dataTypeName": "text", "name": "id"}] + [
        {"fieldName": n, "dataTypeName": "text", "name": n} for n in names
    ]


def agol_fields(names):
    return [{"name": "id", "type": "string", "length": 24}] + [
        {"name": n, "type": "string", "length": 400} for n in names
    ]


def test_sync_then_explore_read_a_snapshot_with_every_fields_values(clash):
    stack = clash.stack
    upload_metadata(app_name="signals", env="dev")
    result = reports.run_notebook(
        "knack_container_to_s3", app_name="signals", env="dev", container="object_1", date=None
    )
    assert result.ok, result.error

    key = snapshot.snapshot_key(AppStore(app_name="signals", env="dev"), "object_1")
    body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    table = pq.read_table(io.BytesIO(body))  # pyarrow reads it: no column named twice
    assert table.column_names == ["id", "record", *NAMES.values()]
    frame = snapshot.read_frame(app_name="signals", container="object_1", env="dev")
    assert len(frame) == N
    for rid, (i, _) in clash.records.items():
        row = frame[frame["id"] == rid].iloc[0]
        for key in EXTRA:
            assert row[NAMES[key]] == value(key, i), (rid, key)
        assert row["signal_id"] == i + 1

    explored = reports.run_notebook(
        "explore_container", app_name="signals", env="dev", container="object_1"
    )
    assert explored.ok, explored.error
    assert explored.summary["records"] == N
    assert explored.summary["columns"] == len(NAMES)


def test_socrata_refuses_before_any_write_when_the_later_fields_column_is_missing(clash):
    stack = clash.stack
    synced(clash)
    names = [n for n in NAMES.values() if n != UNRESOLVED]
    before = [{"id": rid, "signal_id": "old"} for rid in sorted(clash.records)[:3]]
    stack.socrata.add_dataset(DATASET, socrata_columns(names), before)

    result = reports.run_notebook(
        "upsert_knack_container_to_socrata",
        app_name="signals",
        env="dev",
        container="object_1",
        date=None,
    )
    assert not result.ok
    for word in (
        "field_1",
        "'Signal ID'",
        "field_10",
        "'signal-id'",
        "field_9",
        "'Signal ID field_10'",
        UNRESOLVED,
        "Rename one of the labels",
    ):
        assert word in result.error, word
    assert sorted(stack.socrata.rows(DATASET), key=lambda r: r["id"]) == before
    assert not [r for r in stack.socrata.requests if r.method in ("POST", "PUT")]


def test_socrata_fills_each_column_with_its_own_field_when_every_name_has_one(clash):
    stack = clash.stack
    synced(clash)
    stack.socrata.add_dataset(DATASET, socrata_columns(NAMES.values()))
    result = run_in_process(
        "upsert_knack_container_to_socrata",
        app_name="signals",
        env="dev",
        container="object_1",
        date=None,
    )
    assert result.ok, result.error
    assert result.summary["dropped_fields"] == []
    rows = {r["id"]: r for r in stack.socrata.rows(DATASET)}
    assert set(rows) == set(clash.records)
    for rid, (i, _) in clash.records.items():
        assert rows[rid]["signal_id"] == str(i + 1)
        for key in EXTRA:
            assert rows[rid][NAMES[key]] == value(key, i), (rid, key)


def test_arcgis_refuses_before_any_write_when_the_later_fields_column_is_missing(clash):
    stack = clash.stack
    synced(clash)
    names = [n for n in NAMES.values() if n != UNRESOLVED]
    old = {"id": sorted(clash.records)[0], "signal_id": "old"}
    stack.arcgis.add_service(
        TABLE,
        "signals_table",
        [{"name": "signals", "fields": agol_fields(names), "features": [{"attributes": old}]}],
    )
    before = stack.arcgis.features(TABLE, 0)

    result = reports.run_notebook(
        "knack_container_to_agol", app_name="signals", env="dev", container="object_1", date=None
    )
    assert not result.ok
    for word in (
        "field_1",
        "'Signal ID'",
        "field_10",
        "'signal-id'",
        UNRESOLVED,
        "Rename one of the labels",
    ):
        assert word in result.error, word
    assert stack.arcgis.features(TABLE, 0) == before


def test_arcgis_fills_each_field_of_the_layer_with_its_own_knack_field(clash):
    stack = clash.stack
    synced(clash)
    stack.arcgis.add_service(
        TABLE, "signals_table", [{"name": "signals", "fields": agol_fields(NAMES.values())}]
    )
    result = run_in_process(
        "knack_container_to_agol", app_name="signals", env="dev", container="object_1", date=None
    )
    assert result.ok, result.error
    features = {f["attributes"]["id"]: f["attributes"] for f in stack.arcgis.features(TABLE, 0)}
    assert set(features) == set(clash.records)
    for rid, (i, _) in clash.records.items():
        for key in EXTRA:
            assert features[rid][NAMES[key]] == value(key, i), (rid, key)


def test_a_snapshot_written_with_a_column_named_twice_is_rebuilt_by_the_next_sync(clash):
    """A snapshot as the earlier naming wrote it (field_9 and field_10 both in a column
    signal_id_field_10: unreadable by pyarrow and pandas): explore says to run a full sync,
    and the next sync, an incremental one, rebuilds it with a column per field."""
    stack = clash.stack
    synced(clash)
    store = AppStore(app_name="signals", env="dev")
    metadata = store.get_json(store.metadata_key(clash.app_id))
    spec = snapshot.Spec.from_metadata(metadata, "object_1")
    twice = dataclasses.replace(
        spec,
        columns=tuple(
            dataclasses.replace(c, name="signal_id_field_10") if c.key == "field_10" else c
            for c in spec.columns
        ),
    )
    builder = snapshot.Builder(twice, metadata)
    builder.add_records([r for _, r in clash.records.values()])
    snapshot.upload(store, "object_1", builder.close())
    builder.discard()

    explored = run_in_process(
        "explore_container", app_name="signals", env="dev", container="object_1"
    )
    assert not explored.ok
    assert "run a full knack_container_to_s3" in explored.error

    since = next_second_after_writes(stack, "signals-dev/object_1/")
    result = run_in_process(
        "knack_container_to_s3",
        app_name="signals",
        env="dev",
        container="object_1",
        date=since.isoformat(),
    )
    assert result.ok, result.error
    frame = snapshot.read_frame(app_name="signals", container="object_1", env="dev")
    assert list(frame.columns) == ["id", *NAMES.values()]
    for rid, (i, _) in clash.records.items():
        row = frame[frame["id"] == rid].iloc[0]
        for key in EXTRA:
            assert row[NAMES[key]] == value(key, i), (rid, key)
    explored = run_in_process(
        "explore_container", app_name="signals", env="dev", container="object_1"
    )
    assert explored.ok, explored.error
