"""knack_container_to_agol.ipynb end to end: papermill → kernel → moto S3 → the ``arcgis``
package → the ArcGIS emulator over HTTPS (its CA passed by AGOL_CA_BUNDLE).

Setup (a generated signals app synced to S3) runs in-process, and so do the publishes whose
report is not what a test checks (a publish before a change, the first publish, a fault and
its rerun, the named configuration errors, the table): ``publish_in_process`` takes the
notebook's own steps (tests/inprocess.py). Each behaviour the report shows keeps a papermill
run: a full publish with its map, skipped records and deletions, an incremental one, features
the layer refuses, the mass-delete refusal, a matching field that is not unique, a number field
retyped to text and a value the layer cannot take. Every test runs with the network guard of
``tests/netguard``: a lookup or connection to any host but 127.0.0.1 in this process or a
kernel is logged and refused, and the test fails on it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import socket
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from inprocess import next_second_after_writes
from inprocess import run as run_in_process
from map_data import embedded
from signals_app import N

from emulators.knack import generate_app
from emulators.stack import agol_fields
from lib import maps, reports, sync
from lib.clients.app_store import AppStore
from lib.metadata import upload_metadata

CENTRAL = ZoneInfo("America/Chicago")  # the generated app's timezone
NETGUARD = Path(__file__).resolve().parents[1] / "netguard"
POINTS = "5151a1b2c3d4e5f60718293a4b5c6d7e"  # the signals layer (points)
TABLE = "7ab1e0c3d4e5f60718293a4b5c6d7e8f"  # the signals table (no geometry)


@pytest.fixture
def netguard(monkeypatch, tmp_path):
    log = tmp_path / "netguard.log"
    log.touch()
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(p for p in (str(NETGUARD), os.environ.get("PYTHONPATH", "")) if p),
    )
    monkeypatch.setenv("KNACK_NB_NETGUARD_LOG", str(log))
    # this process too (the publishes run in process): the same guard, undone after the test
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, getattr(socket.socket, name))
    spec = importlib.util.spec_from_file_location("_netguard", NETGUARD / "sitecustomize.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    yield log
    assert log.read_text() == "", f"a request left 127.0.0.1:\n{log.read_text()}"


@pytest.fixture
def agol(signals, netguard):
    """The signals app in S3 (metadata and object_1; view_1 only where a test syncs it), a
    point layer for object_1 and a table for view_1, with params pointing at them."""
    stack = signals.stack
    metadata = generate_app(0, seed=1)[0]["application"]
    fields = agol_fields(metadata, "object_1")
    stack.arcgis.add_service(
        POINTS,
        "signals",
        [{"name": "signals", "geometry_type": "esriGeometryPoint", "fields": fields}],
    )
    stack.arcgis.add_service(TABLE, "signals_table", [{"name": "signals", "fields": fields}])
    signals.containers["object_1"]["agol"] = {
        "service_id": POINTS,
        "layer_id": 0,
        "location_field": "field_3",
        "chunk_size": 25,
    }
    signals.containers["view_1"]["agol"] = {"service_id": TABLE, "layer_id": 0}
    signals.write_params()
    upload_metadata(app_name="signals", env="dev")
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok
    return signals


def publish(container="object_1", date=None) -> reports.RunResult:
    return reports.run_notebook(
        "knack_container_to_agol", app_name="signals", env="dev", container=container, date=date
    )


def publish_in_process(container="object_1", date=None) -> reports.RunResult:
    return run_in_process(
        "knack_container_to_agol", app_name="signals", env="dev", container=container, date=date
    )


def layer(stack, service=POINTS) -> dict[str, dict]:
    features = stack.arcgis.features(service, 0)
    by_id = {f["attributes"]["id"]: f for f in features}
    assert len(by_id) == len(features), "two features share one id"
    return by_id


def stored(container="object_1") -> dict[str, dict]:
    store = AppStore(app_name="signals", env="dev")
    return {r["id"]: r for r in store.read_records(container)}


def located(records: dict[str, dict]) -> dict[str, dict]:
    return {rid: r for rid, r in records.items() if r["field_3_raw"]}


def assert_layer_equals_s3(stack) -> None:
    records = located(stored())
    features = layer(stack)
    assert set(features) == set(records)
    for rid, record in records.items():
        feature = features[rid]
        raw = record["field_3_raw"]
        assert feature["geometry"]["x"] == pytest.approx(float(raw["longitude"])), rid
        assert feature["geometry"]["y"] == pytest.approx(float(raw["latitude"])), rid
        assert feature["attributes"]["signal_id"] == record["field_1"], rid
        assert feature["attributes"]["location_name"] == record["field_2_raw"], rid


def report(stack, result) -> dict:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def test_full_publish_of_points_skips_empty_coordinates_maps_them_and_deletes_the_gone(agol):
    """The first full publish (the notebook's steps in process) adds every located record;
    then, two of them gone from S3, a full publish through papermill deletes their features:
    its report lists the skipped records (with why) and the deleted ones, and has the map."""
    stack = agol.stack
    records = stored()
    empty = sorted(set(records) - set(located(records)))
    assert empty, "the generated app has records without a location"
    first = publish_in_process()
    assert first.ok, first.error
    s = first.summary
    assert (s["mode"], s["read"], s["added"], s["updated"], s["deleted"], s["skipped"]) == (
        "full",
        len(records),
        len(records) - len(empty),
        0,
        0,
        len(empty),
    )
    assert_layer_equals_s3(stack)

    gone = sorted(located(records))[3:5]
    AppStore(app_name="signals", env="dev").delete_records("object_1", gone)
    result = publish()
    assert result.ok, result.error
    records = stored()
    s = result.summary
    assert (s["mode"], s["read"], s["deleted"], s["skipped"]) == (
        "full",
        len(records),
        2,
        len(empty),
    )
    assert not set(gone) & set(layer(stack))
    assert_layer_equals_s3(stack)
    # a date is UTC epoch milliseconds. Knack's own "unix_timestamp" is the app's wall
    # time written as if it were UTC; the layer must get the real instant
    some = next(iter(located(records).values()))
    wall = dt.datetime.fromisoformat(some["field_5_raw"]["iso_timestamp"].removesuffix("Z"))
    instant = wall.replace(tzinfo=CENTRAL)
    assert layer(stack)[some["id"]]["attributes"]["modified_date"] == int(
        instant.timestamp() * 1000
    )
    nb = report(stack, result)
    text = json.dumps(nb)
    for rid in empty:  # the skipped records are listed by id, with why
        assert rid in text
    assert "no coordinates in 'Location'" in text
    assert all(rid in text for rid in gone)  # the report lists the deleted features
    outputs = [
        "".join(out["data"]["text/html"])
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    ]
    drawn = [h for h in outputs if embedded(h)]
    assert len(drawn) == 1, "the report has no map"
    (shown,) = embedded(drawn[0])
    features = layer(stack)  # one point per feature of the layer, its popup its record's
    assert len(shown["points"]) == len(features)
    assert sorted(p[2] for p in shown["points"]) == sorted(
        maps.Point(0, 0, rid, ft["attributes"]["location_name"] or "").popup
        for rid, ft in features.items()
    )
    assert {(p[0], p[1]) for p in shown["points"]} == {
        (round(ft["geometry"]["y"], 6), round(ft["geometry"]["x"], 6)) for ft in features.values()
    }
    assert f"{len(features):,} points in " in drawn[0]
    assert 'src="http' not in drawn[0] and "<link" not in drawn[0]  # Leaflet is inlined
    # the sample shows the layer's dates (epoch milliseconds) as the app's local times
    (sample,) = [
        h
        for h in (
            "".join(out.get("data", {}).get("text/html", ""))
            for cell in nb["cells"]
            for out in cell.get("outputs", [])
        )
        if ">modified_<wbr>date</div></th>"
        in h  # the sample's header (the bindings table names it too)
    ]
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} C[SD]T", sample), sample[:500]
    assert not re.search(r">\d{13}<", sample)
    for secret in stack.secrets:
        assert secret not in text
    hosts = {r.host for r in stack.arcgis.requests}
    assert hosts and all(h.startswith("127.0.0.1:") for h in hosts), hosts


def test_a_table_gets_every_record_without_geometry(agol):
    assert sync.sync_container(app_name="signals", container="view_1", env="dev").ok
    result = publish_in_process("view_1")
    assert result.ok, result.error
    features = layer(agol.stack, TABLE)
    assert set(features) == set(stored("view_1"))
    assert all(not f.get("geometry") for f in features.values())
    assert result.summary["skipped"] == 0 and result.summary["added"] == len(features)


def test_incremental_upsert_updates_the_changed_features(agol):
    """(A full publish's deletions: the first test's papermill run.)"""
    stack = agol.stack
    assert publish_in_process().ok
    ids = sorted(located(stored()))
    changed, new_name = ids[:3], "RENAMED / INTERSECTION"
    since = next_second_after_writes(stack, "signals-dev/object_1/").isoformat()
    for rid in changed:
        record = agol.knack()[rid]
        record["field_2"] = record["field_2_raw"] = new_name
        stack.knack.put_record(agol.app_id, "object_1", record)
        agol.touch(rid, dt.datetime.now(dt.UTC))
    assert sync.sync_container(app_name="signals", container="object_1", env="dev", date=since).ok
    result = publish(date=since)
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["read"], s["added"], s["updated"]) == ("incremental", 3, 0, 3)
    features = layer(stack)
    for rid in changed:
        assert features[rid]["attributes"]["location_name"] == new_name
    assert_layer_equals_s3(stack)


def test_a_feature_the_layer_refuses_fails_the_run_by_name(agol):
    stack = agol.stack
    bad = sorted(located(stored()))[7]
    stack.arcgis.faults.error_ids = {bad}
    result = publish()
    assert not result.ok
    assert bad in result.error and "refused 1 features" in result.error
    assert "a rerun alone fails the same way" in result.error
    assert bad in json.dumps(report(stack, result))
    assert set(layer(stack)) == set(located(stored())) - {bad}  # the others landed


def test_a_fault_mid_publish_then_rerun_ends_equal_to_s3(agol):
    stack = agol.stack
    stack.arcgis.faults.status = 503
    stack.arcgis.faults.fail_after_edits = 1  # the first chunk of 25 lands, then 503s
    result = publish_in_process()
    assert not result.ok
    assert "503" in result.error or "Service Unavailable" in result.error
    assert 0 < len(layer(stack)) < len(located(stored()))
    stack.arcgis.faults.fail_after_edits = None
    rerun = publish_in_process()
    assert rerun.ok, rerun.error
    assert rerun.summary["updated"] >= 25  # what landed is updated, not added twice
    assert_layer_equals_s3(stack)


def test_missing_credential_and_unknown_item_are_named(agol, monkeypatch, tmp_path):
    monkeypatch.delenv("AGOL_PASSWORD")
    result = publish_in_process()
    assert not result.ok and "AGOL_PASSWORD" in result.error
    monkeypatch.setenv("AGOL_PASSWORD", agol.stack.agol_password)
    agol.containers["object_1"]["agol"]["service_id"] = "0" * 32
    agol.write_params()
    result = publish_in_process()
    assert not result.ok and "no item " + "0" * 32 in result.error


def test_mass_delete_guard_keeps_the_layer_when_s3_lost_most_records(agol):
    stack = agol.stack
    assert publish_in_process().ok
    features = set(layer(stack))
    keep = sorted(features)[: len(features) // 4]
    AppStore(app_name="signals", env="dev").delete_records(
        "object_1", sorted(set(stored()) - set(keep))
    )
    refused = publish()
    assert not refused.ok
    gone = len(features) - len(keep)
    assert f"refusing to delete {gone} of the {len(features)} features of the layer" in (
        refused.error
    )
    assert "a rerun alone fails the same way" in refused.error
    assert set(layer(stack)) == features  # nothing deleted

    agol.write_params(object_1={"allow_mass_delete": True})
    allowed = publish_in_process()  # a full publish's deletions in a report: above
    assert allowed.ok, allowed.error
    assert allowed.summary["deleted"] == gone and set(layer(stack)) == set(keep)


WRITES = {"applyEdits", "addFeatures", "updateFeatures", "deleteFeatures", "truncate"}


def writes(stack) -> list:
    return [r for r in stack.arcgis.requests if r.operation in WRITES]


def retype_cabinet_count(agol, text) -> None:
    """Knack's "Cabinet Count" (field_7, a number) retyped to short text holding
    ``text(record)`` in each record; then the metadata and object_1 synced to S3 (full)."""
    metadata = generate_app(N, seed=1)[0]
    (obj,) = [o for o in metadata["application"]["objects"] if o["key"] == "object_1"]
    (cabinets,) = [f for f in obj["fields"] if f["key"] == "field_7"]
    cabinets["type"] = "short_text"
    cabinets.pop("format", None)
    records = agol.stack.knack.records(agol.app_id, "object_1")
    for record in records:
        record["field_7"] = record["field_7_raw"] = text(record)
    agol.stack.knack.add_app(metadata, {"object_1": records})
    upload_metadata(app_name="signals", env="dev")
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok


def test_a_matching_field_that_is_not_unique_is_refused_before_any_write(agol):
    """A match field whose values repeat (3 statuses among 48 located records) would fold
    the layer into one feature per value: refused before any write, the report says which
    values and how many records; allowed by allow_mass_delete, every deletion is counted.
    The layer has no unique index on ``id`` (many real layers have none), so nothing but the
    publisher stands in the way."""
    stack = agol.stack
    fields = agol_fields(generate_app(0, seed=1)[0]["application"], "object_1")
    stack.arcgis.add_service(
        POINTS,
        "signals",
        [
            {
                "name": "signals",
                "geometry_type": "esriGeometryPoint",
                "fields": fields,
                "unique_field": None,
            }
        ],
    )
    assert publish_in_process().ok
    before = stack.arcgis.features(POINTS, 0)
    statuses = Counter(r["field_4"] for r in located(stored()).values())
    assert len(statuses) == 3 and len(before) == 48
    agol.containers["object_1"]["agol"]["upsert_matching_field"] = "signal_status"
    agol.write_params()
    stack.arcgis.requests.clear()
    refused = publish()
    assert not refused.ok
    assert "upsert_matching_field 'signal_status' is not unique" in refused.error
    for status, n in statuses.items():  # each repeated value, with its count and some ids
        if n > 1:
            assert f"'{status}': {n} records, e.g. " in refused.error
    assert "a rerun alone fails the same way" in refused.error
    assert stack.arcgis.features(POINTS, 0) == before  # the layer is unchanged
    assert writes(stack) == []
    assert "is not unique" in json.dumps(report(stack, refused))

    agol.write_params(object_1={"allow_mass_delete": True})
    allowed = publish_in_process()
    assert allowed.ok, allowed.error
    features = stack.arcgis.features(POINTS, 0)
    assert sorted(f["attributes"]["signal_status"] for f in features) == sorted(statuses)
    assert allowed.summary["deleted"] == len(before) - len(features) == 45  # all counted
    assert allowed.summary["skipped"] == 2 + 45  # no coordinates; a value already taken


def test_a_number_field_retyped_to_text_fails_before_any_write(agol):
    stack = agol.stack
    assert publish_in_process().ok
    before = stack.arcgis.features(POINTS, 0)
    retype_cabinet_count(agol, lambda r: f"{r['field_7_raw']} cabinets")
    stack.arcgis.requests.clear()
    result = publish()
    assert not result.ok
    assert re.search(
        r"field_7 'Cabinet Count' holds text like '\d cabinets' but field "
        r"cabinet_count of the layer is esriFieldTypeDouble",
        result.error,
    ), result.error
    assert "Nothing was written" in result.error
    assert stack.arcgis.features(POINTS, 0) == before and writes(stack) == []
    assert "holds text like" in json.dumps(report(stack, result))


def test_a_value_the_layer_cannot_take_fails_that_record_alone(agol):
    """Cabinet Count retyped to text holding numbers, but one record says "3 cabinets": that
    record fails by id (the others are published, the run fails); fixed in Knack, a rerun
    completes the work."""
    stack = agol.stack
    bad = sorted(located(stored()))[5]
    retype_cabinet_count(agol, lambda r: "3 cabinets" if r["id"] == bad else str(r["field_7_raw"]))
    result = publish()
    assert not result.ok
    assert f"{bad}: cabinet_count (esriFieldTypeDouble) cannot take '3 cabinets'" in result.error, (
        result.error
    )
    assert "a rerun alone fails the same way" in result.error
    assert bad in json.dumps(report(stack, result))
    records = located(stored())
    features = layer(stack)
    assert set(features) == set(records) - {bad}
    assert all(
        ft["attributes"]["cabinet_count"] == float(records[rid]["field_7"])
        for rid, ft in features.items()
    )

    retype_cabinet_count(agol, lambda r: "3" if r["id"] == bad else str(r["field_7_raw"]))
    rerun = publish_in_process()
    assert rerun.ok, rerun.error
    assert layer(stack)[bad]["attributes"]["cabinet_count"] == 3.0
    assert_layer_equals_s3(stack)
