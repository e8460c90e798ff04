"""A schema change in Knack never blanks a field of an ArcGIS layer (lib/bindings), end to end
on the generated signals app: papermill → kernel → moto S3 → the ``arcgis`` package → the
ArcGIS emulator, with the field renamed or removed in the Knack emulator.

Set-up runs (the first publish, syncs) take the notebooks' own steps in process
(tests/inprocess.py); the runs whose report or exit a test checks go through papermill.
"""

from __future__ import annotations

import datetime as dt
import json

import nbformat
import pytest
from inprocess import run as run_in_process
from signals_app import CENTRAL

from emulators.knack import generate_app
from emulators.stack import agol_fields
from lib import reports, sync
from lib.metadata import upload_metadata

POINTS = "b1d5a1b2c3d4e5f60718293a4b5c6d7e"
BINDINGS = f"_state/bindings/agol/{POINTS}-0.json"
AUTO = "_state/signals-dev/object_1/knack_container_to_agol.json"
WRITES = {"applyEdits", "addFeatures", "updateFeatures", "deleteFeatures", "truncate"}


@pytest.fixture
def agol(signals):
    """The signals app in S3 (dev), published once to a point layer: bindings stored."""
    stack = signals.stack
    fields = agol_fields(generate_app(0, seed=1)[0]["application"], "object_1")
    stack.arcgis.add_service(
        POINTS,
        "signals",
        [{"name": "signals", "geometry_type": "esriGeometryPoint", "fields": fields}],
    )
    signals.containers["object_1"]["agol"] = {
        "service_id": POINTS,
        "layer_id": 0,
        "location_field": "field_3",
    }
    signals.write_params()
    upload_metadata(app_name="signals", env="dev")
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok
    first = publish_in_process()
    assert first.ok, first.error
    assert BINDINGS in stack.s3_keys("_state/bindings/")
    return signals


def publish() -> reports.RunResult:
    return reports.run_notebook(
        "knack_container_to_agol", app_name="signals", env="dev", container="object_1"
    )


def publish_in_process() -> reports.RunResult:
    return run_in_process(
        "knack_container_to_agol", app_name="signals", env="dev", container="object_1"
    )


def attributes(stack) -> dict[str, dict]:
    return {f["attributes"]["id"]: f["attributes"] for f in stack.arcgis.features(POINTS, 0)}


def text_of(stack, key) -> str:
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def report_text(stack, result) -> str:
    """The text/plain form of every output of the report in S3, and its streams."""
    nb = nbformat.reads(
        text_of(stack, result.report.removeprefix(f"s3://{stack.bucket}/")), as_version=4
    )
    return "\n".join(
        out.get("text") or out.get("data", {}).get("text/plain", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def change(agol, rid: str, value: str) -> None:
    """Change the record's field_2 (and its modified date) in Knack."""
    record = agol.knack()[rid]
    record["field_2"] = record["field_2_raw"] = value
    agol.stack.knack.put_record(agol.app_id, "object_1", record)
    agol.stack.knack.touch(
        agol.app_id, "object_1", rid, field="field_5", when=dt.datetime.now(CENTRAL)
    )


def writes(stack) -> list:
    return [r for r in stack.arcgis.requests if r.operation in WRITES]


def test_a_renamed_field_keeps_filling_its_layer_field_and_the_report_says_so(agol):
    """On the old code (attributes by current label) the publish dropped `site_name` and
    left `location_name` stale, exit 0."""
    stack = agol.stack
    rid = next(iter(attributes(stack)))
    stack.knack.rename_field(agol.app_id, "object_1", "field_2", "Site Name")
    change(agol, rid, "RENAMED AVE / NEW ST")

    uploaded = reports.run_notebook("upload_metadata", app_name="signals", env="dev")
    assert uploaded.ok, uploaded.error
    assert "'Location Name' → 'Site Name'" in report_text(stack, uploaded)
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok

    result = publish()
    assert result.ok, result.error
    assert result.summary["dropped_fields"] == []
    features = attributes(stack)
    assert features[rid]["location_name"] == "RENAMED AVE / NEW ST"
    assert "site_name" not in features[rid]
    text = report_text(stack, result)
    assert (
        "field_2 renamed 'Location Name' → 'Site Name': still published as `location_name`"
    ) in text
    assert "renamed (followed)" in text
    stored = json.loads(text_of(stack, BINDINGS))["bindings"]
    assert stored["location_name"] == {
        "field": "field_2",
        "label": "Site Name",
        "type": "short_text",
    }


def test_a_removed_field_fails_before_any_write_until_its_layer_field_is_retired(agol):
    """On the old code the publish succeeded and updated every feature without
    `signal_status` (new features got nulls)."""
    stack = agol.stack
    before = attributes(stack)
    auto_before, bindings_before = text_of(stack, AUTO), text_of(stack, BINDINGS)
    rid = next(iter(before))
    stack.knack.remove_field(agol.app_id, "object_1", "field_4")
    change(agol, rid, "AFTER THE REMOVAL")
    upload_metadata(app_name="signals", env="dev")
    assert sync.sync_container(app_name="signals", container="object_1", env="dev").ok
    stack.arcgis.requests.clear()

    result = publish()
    assert not result.ok
    for words in (
        "field 'signal_status' of ArcGIS item",
        "would go blank",
        "field_4 'Signal Status'",
        "agol.fields",
        "agol.retired_columns: [signal_status]",
        "Nothing was written",
    ):
        assert words in result.error, words
    assert writes(stack) == [] and stack.arcgis.requests  # read the layer, wrote nothing
    assert attributes(stack) == before
    assert text_of(stack, AUTO) == auto_before
    assert text_of(stack, BINDINGS) == bindings_before

    agol.containers["object_1"]["agol"]["retired_columns"] = ["signal_status"]
    agol.write_params()
    retired = publish_in_process()
    assert retired.ok, retired.error
    after = attributes(stack)
    assert {r: a["signal_status"] for r, a in after.items()} == {
        r: a["signal_status"] for r, a in before.items()
    }  # left as it was
    assert after[rid]["location_name"] == "AFTER THE REMOVAL"  # the others were published
