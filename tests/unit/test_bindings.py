"""The binding rule (lib.bindings), pure, on the real fixture app (object_3 "all_fields_test"
and its views; emulators/fixtures/knackpy): which field fills which column of a dataset or
layer, and when a publish must fail before any write. The publishes themselves are in
tests/e2e/test_bindings_socrata_e2e.py and test_bindings_agol_e2e.py."""

from __future__ import annotations

import copy

import pytest

from emulators.knack import load_fixture_app
from emulators.stack import DEMO_LEFT_OUT, agol_fields, socrata_columns
from lib import bindings, config
from lib.bindings import (
    BOUND,
    NEW,
    NOT_FILLED,
    RENAMED,
    RETIRED,
    WOULD_BLANK,
    Binding,
    Destination,
)
from lib.errors import ConfigError

DATASET = "demo-allf"
LOCATION = "field_44"


@pytest.fixture
def metadata():
    return copy.deepcopy(load_fixture_app()[0]["application"])


def field_def(metadata, key, obj="object_3"):
    fields = next(o for o in metadata["objects"] if o["key"] == obj)["fields"]
    return next(f for f in fields if f["key"] == key)


def columns(metadata=None):
    """The demo dataset's columns (field name → type), as the stand-in serves them: made
    for the fixture's metadata as shipped (a change in Knack does not change them)."""
    return {
        c["fieldName"]: c["dataTypeName"]
        for c in socrata_columns(
            metadata or load_fixture_app()[0]["application"],
            "object_3",
            location_field=LOCATION,
            left_out=DEMO_LEFT_OUT,
        )
    }


def socrata(**params):
    return Destination.socrata(
        config.SocrataConfig(resource_id=DATASET, location_field=LOCATION, **params)
    )


def plan(metadata, stored=None, destination=None, container="object_3", cols=None):
    return bindings.plan(
        destination or socrata(),
        container,
        bindings.container_fields(metadata, container),
        columns() if cols is None else cols,
        stored or {},
        app_name="demo",
    )


def rows(p):
    return {r.column: r for r in p.rows}


def published(metadata):
    """The bindings a first publish stores."""
    return plan(metadata).bindings()


def test_a_first_publish_binds_each_column_the_label_rule_fills(metadata):
    p = plan(metadata)
    assert not p.fails and p.failures() == []
    by_column = rows(p)
    assert "id" not in by_column  # the Knack record id's column holds no field
    assert by_column["short_text"].status == BOUND and by_column["short_text"].field == "field_7"
    assert by_column["_id"].field == "field_125"  # a field labelled "id"
    assert {c: f.key for c, f in p.fill.items()}["address_lat_lon"] == LOCATION
    assert len(p.fill) == len(columns(metadata)) - 1  # every column but id is filled
    # the one field the dataset lacks is new, with the column to add
    (new,) = p.new
    assert (new.column, new.field, new.column_type) == ("signature", "field_23", "text")
    assert p.dropped() == {
        "signature": "not a column of the dataset: add column `signature` (text) to publish it"
    }
    stored = p.bindings()
    assert stored["short_text"] == Binding("field_7", "Short Text", "short_text")


def test_a_renamed_label_keeps_filling_its_column_and_says_so(metadata):
    stored = published(metadata)
    field_def(metadata, "field_7")["name"] = "Short Label"
    p = plan(metadata, stored)
    assert not p.fails
    row = rows(p)["short_text"]
    assert (row.status, row.field, row.label) == (RENAMED, "field_7", "Short Label")
    assert p.fill["short_text"].name == "short_label"  # the value's name in the records
    assert p.renames() == [
        "field_7 renamed 'Short Text' → 'Short Label': still published as `short_text`"
    ]
    assert "short_label" not in p.dropped()  # nothing new but signature
    assert p.bindings()["short_text"].label == "Short Label"  # the last label, for next time
    # without the stored bindings, the label rule alone leaves the column unfilled
    alone = rows(plan(metadata))
    assert alone["short_text"].status == NOT_FILLED
    assert alone["short_label"].status == NEW


def test_a_field_gone_from_the_container_would_blank_its_column(metadata):
    stored = published(metadata)
    fields = next(o for o in metadata["objects"] if o["key"] == "object_3")["fields"]
    fields.remove(field_def(metadata, "field_7"))
    p = plan(metadata, stored)
    assert p.fails
    row = rows(p)["short_text"]
    assert (row.status, row.field, row.label) == (WOULD_BLANK, "field_7", "Short Text")
    (message,) = p.failures()
    for words in (
        "column 'short_text' of Socrata dataset demo-allf would go blank",
        "field_7 'Short Text'",
        "Nothing was written",
        "demo.yaml (containers.object_3.socrata.fields: {short_text: field_N})",
        "containers.object_3.socrata.retired_columns: [short_text]",
    ):
        assert words in message, words
    assert "short_text" not in p.fill and "short_text" not in p.bindings()


def test_a_retired_column_is_not_sent_nor_bound_and_fails_nothing(metadata):
    stored = published(metadata)
    fields = next(o for o in metadata["objects"] if o["key"] == "object_3")["fields"]
    fields.remove(field_def(metadata, "field_7"))
    p = plan(metadata, stored, socrata(retired_columns=["short_text"]))
    assert not p.fails
    row = rows(p)["short_text"]
    assert (row.status, row.field, row.label) == (RETIRED, "field_7", "Short Text")
    assert "short_text" not in p.fill and "short_text" not in p.bindings()
    # retired with its field still there: not sent either, and the field is new
    again = plan(load_fixture_app()[0]["application"], stored, socrata(retired_columns=["number"]))
    assert rows(again)["number"].status == RETIRED and "number" not in again.fill
    assert rows(again)["number_field_10"].status == NEW  # its column name is taken


def test_a_retyped_field_would_blank_a_column_its_new_type_cannot_fill(metadata):
    stored = published(metadata)
    field_def(metadata, "field_10")["type"] = "date_time"  # "Number" now a date
    field_def(metadata, "field_29")["type"] = "short_text"  # "Yes/No" now text: may fit
    p = plan(metadata, stored)
    by_column = rows(p)
    assert by_column["number"].status == WOULD_BLANK
    assert "is date_time now (was number), which column 'number' (number)" in p.problems["number"]
    assert by_column["yes_no"].status == BOUND and by_column["yes_no"].note == (
        "retyped boolean → short_text"  # its values are checked when published
    )
    assert list(p.problems) == ["number"]


def test_params_pin_a_column_to_a_field_of_another_name(metadata):
    p = plan(metadata, published(metadata), socrata(fields={"short_text": "field_8"}))
    row = rows(p)["short_text"]
    assert (row.status, row.field, row.pinned) == (BOUND, "field_8", True)
    assert p.fill["short_text"].key == "field_8" and p.fill["rich_text"].key == "field_8"
    assert p.bindings()["short_text"].field == "field_8"
    assert any(r.field == "field_7" and r.status == NEW for r in p.rows)


def test_a_pin_to_a_missing_field_or_column_fails_naming_the_file_and_key(metadata):
    p = plan(metadata, destination=socrata(fields={"short_text": "field_999"}))
    assert p.fails and rows(p)["short_text"].status == WOULD_BLANK
    assert p.problems["short_text"].startswith(
        "demo.yaml: containers.object_3.socrata.fields.short_text is field_999, which is not "
        "a field of object_3"
    )
    p = plan(metadata, destination=socrata(fields={"nope": "field_7"}))
    assert p.fails
    assert p.problems["nope"].startswith(
        "demo.yaml: containers.object_3.socrata.fields.nope pins field_7 to column 'nope', "
        "which Socrata dataset demo-allf lacks"
    )


def test_a_view_holds_only_the_fields_it_shows(metadata):
    view_6 = bindings.container_fields(metadata, "view_6")
    assert "field_7" in view_6 and "field_125" not in view_6 and "field_37" not in view_6
    assert bindings.container_fields(metadata, "object_3").keys() > view_6.keys()
    # a column bound to a field the view stopped showing would go blank
    stored = {"_id": Binding("field_125", "id", "short_text")}
    p = plan(metadata, stored, container="view_6", cols={"_id": "text", "short_text": "text"})
    assert rows(p)["_id"].status == WOULD_BLANK
    assert "gone from view_6 (removed, or no longer in the view)" in p.problems["_id"]


def test_a_column_not_bound_yet_is_bound_when_its_field_appears(metadata):
    cols = {**columns(), "added": "text"}
    stored = plan(metadata, cols=cols).bindings()
    assert "added" not in stored  # not filled: no field has that name
    obj = next(o for o in metadata["objects"] if o["key"] == "object_3")
    obj["fields"].append({"key": "field_500", "name": "Added", "type": "short_text"})
    p = plan(metadata, stored, cols=cols)
    assert rows(p)["added"].status == BOUND and p.fill["added"].key == "field_500"


def test_arcgis_names_are_matched_whatever_their_case_with_esri_types(metadata):
    fields = {
        f["name"]: f["type"] for f in agol_fields(metadata, "object_3", left_out=DEMO_LEFT_OUT)
    }
    fields = {("Short_Text" if n == "short_text" else n): t for n, t in fields.items()}
    esri = {n: f"esriFieldType{t.title()}" for n, t in fields.items()}
    layer = Destination.agol(
        config.AgolConfig(service_id="svc", retired_columns=["NUMBER"], location_field=LOCATION)
    )
    p = plan(metadata, destination=layer, cols=esri)
    assert p.fill["short_text"].key == "field_7"  # the layer's Short_Text, folded
    assert rows(p)["number"].status == RETIRED
    new = {r.column: r.column_type for r in p.new}
    assert new == {"signature": "esriFieldTypeString", "number_field_10": "esriFieldTypeDouble"}
    assert p.dropped()["signature"].startswith("not a field of the layer: add field `signature`")
    stored = p.bindings()
    field_def(metadata, "field_12")["type"] = "address"  # a date field of the layer
    retyped = plan(metadata, stored, destination=layer, cols=esri)
    assert "is address now (was date_time)" in retyped.problems["date_time___no_time_no_default"]


def test_fields_a_first_binding_cannot_tell_apart_fail_before_any_write():
    meta = {
        "objects": [
            {
                "key": "object_1",
                "fields": [
                    {"key": "field_1", "name": "Signal ID", "type": "short_text"},
                    {"key": "field_9", "name": "signal-id", "type": "short_text"},
                ],
            }
        ]
    }
    cols = {"signal_id": "text"}
    p = bindings.plan(
        socrata(), "object_1", bindings.container_fields(meta, "object_1"), cols, {}, app_name="x"
    )
    (message,) = p.failures()
    assert "field_9 'signal-id' cannot have column 'signal_id' (the column of field_1" in message
    # once the column is bound (a publish stored it), the later field is only new
    stored = {"signal_id": Binding("field_1", "Signal ID", "short_text")}
    p = bindings.plan(
        socrata(),
        "object_1",
        bindings.container_fields(meta, "object_1"),
        cols,
        stored,
        app_name="x",
    )
    assert not p.fails and [r.column for r in p.new] == ["signal_id_field_9"]


def test_the_table_has_a_row_per_column_and_new_field():
    metadata = load_fixture_app()[0]["application"]
    p = plan(metadata)
    table = bindings.table([p])
    assert table.columns == [
        "container",
        "destination",
        "column",
        "field",
        "label",
        "status",
        "note",
    ]
    assert len(table) == len(p.rows) == len(columns(metadata)) - 1 + 1
    assert table.by("column")["signature (text)"]["status"] == NEW


@pytest.mark.parametrize(
    "socrata_params, message",
    [
        (
            "{resource_id: abcd-1234, fields: {old: field_5}, retired_columns: [old]}",
            "socrata.retired_columns': Value error, old also pinned in fields",
        ),
        ("{resource_id: abcd-1234, fields: {x: status}}", "socrata.fields.x'"),
        ("{resource_id: abcd-1234, retired_columns: [id]}", "`id` is the column of the Knack"),
    ],
)
def test_params_bindings_are_validated_naming_the_file_and_key(tmp_path, socrata_params, message):
    (tmp_path / "x.yaml").write_text(
        "app_id: {prod: 5d79512148c4af00106d1507}\n"
        f"containers:\n  object_1:\n    socrata: {socrata_params}\n"
    )
    with pytest.raises(ConfigError) as e:
        config.load_app("x", tmp_path)
    assert str(tmp_path / "x.yaml") in str(e.value) and message in str(e.value)
