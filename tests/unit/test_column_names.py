"""The column-name rule (lib.records.column_names): every field of a container gets
a name of its own, the same for the same metadata, used by the snapshot and the publishers.

The end-to-end checks (a sync, explore, Socrata and ArcGIS on an app whose labels collide)
are in test_column_names_e2e."""

from __future__ import annotations

import pytest

from lib.records import column_names, format_records, unresolved_collisions
from lib.snapshot import Spec

APP_ID = "5d79512148c4af00106d1507"


def metadata(*fields: tuple[str, str]) -> dict:
    """An app with one object of short-text fields, given as (key, label) in metadata order."""
    return {
        "id": APP_ID,
        "name": "names",
        "account": {"slug": "names"},
        "settings": {"timezone": "Central Time (US & Canada)"},
        "objects": [
            {
                "key": "object_1",
                "name": "Signals",
                "fields": [
                    {
                        "key": key,
                        "name": label,
                        "type": "short_text",
                        "_id": f"{APP_ID[:20]}{n:04d}",
                    }
                    for n, (key, label) in enumerate(fields)
                ],
            }
        ],
        "scenes": [],
    }


def names(*fields: tuple[str, str], reserved: tuple[str, ...] = ("id",)) -> dict[str, str]:
    return column_names(metadata(*fields), "object_1", reserved=reserved)


def test_labels_that_map_to_one_name_get_the_later_field_key_appended():
    assert names(("field_1", "Signal ID"), ("field_9", "signal-id")) == {
        "field_1": "signal_id",
        "field_9": "signal_id_field_9",
    }


def test_the_first_field_by_key_number_keeps_the_name_whatever_the_metadata_order():
    # field_9 before field_20 (not "field_20" < "field_9" as text), in any listing order
    fields = [("field_20", "Signal-ID"), ("field_9", "signal id"), ("field_100", "SIGNAL ID")]
    expected = {
        "field_9": "signal_id",
        "field_20": "signal_id_field_20",
        "field_100": "signal_id_field_100",
    }
    assert names(*fields) == expected
    assert names(*reversed(fields)) == expected


def test_id_and_a_label_that_maps_to_underscore_id():
    assert names(("field_3", "ID"), ("field_7", "_id")) == {
        "field_3": "_id",
        "field_7": "_id_field_7",
    }
    assert names(("field_3", "-ID"), ("field_7", "id")) == {
        "field_3": "_id",
        "field_7": "_id_field_7",
    }


def test_a_label_with_no_letter_or_digit_left_is_named_by_its_field_key():
    # two-character CJK labels both map to "__" by the label rule
    assert names(("field_12", "名前"), ("field_13", "住所")) == {
        "field_12": "field_12",
        "field_13": "field_13",
    }
    assert names(("field_2", "%"), ("field_3", "  ")) == {
        "field_2": "field_2",
        "field_3": "field_3",
    }
    # a key that is another field's name is taken like any name
    assert names(("field_4", "Field 12"), ("field_12", "名前")) == {
        "field_4": "field_12",
        "field_12": "field_12_field_12",
    }
    # letters outside a-z become "_", but a digit left is enough
    assert names(("field_5", "温度 2")) == {"field_5": "___2"}


def test_a_suffixed_name_that_another_label_holds_is_suffixed_again():
    got = names(
        ("field_1", "Signal ID"), ("field_5", "Signal ID field_9"), ("field_9", "signal-id")
    )
    assert got == {
        "field_1": "signal_id",
        "field_5": "signal_id_field_9",
        "field_9": "signal_id_field_9_field_9",
    }
    # and again, as long as it takes
    got = names(
        ("field_1", "Signal ID"),
        ("field_2", "Signal ID field_9"),
        ("field_3", "signal_id_field_9_field_9"),
        ("field_9", "signal-id"),
    )
    assert got["field_9"] == "signal_id_field_9_field_9_field_9"
    assert len(set(got.values())) == len(got)


def test_reserved_names_are_never_given_to_a_field():
    assert names(
        ("field_1", "Record"), ("field_2", "Record field_1"), reserved=("id", "record")
    ) == {"field_1": "record_field_1", "field_2": "record_field_1_field_2"}
    assert names(("field_1", "Record")) == {"field_1": "record"}  # a publisher's rule: only id


def test_a_field_added_later_renames_no_existing_column():
    before = names(("field_1", "Signal ID"), ("field_9", "signal-id"))
    after = names(("field_1", "Signal ID"), ("field_9", "signal-id"), ("field_10", "Signal_ID"))
    assert {k: after[k] for k in before} == before
    assert after["field_10"] == "signal_id_field_10"


def test_the_snapshot_names_every_field_once():
    meta = metadata(
        ("field_1", "Signal ID"),
        ("field_5", "Signal ID field_9"),
        ("field_9", "signal-id"),
        ("field_10", "Record"),
        ("field_12", "名前"),
        ("field_13", "住所"),
    )
    spec = Spec.from_metadata(meta, "object_1")
    got = {c.key: c.name for c in spec.columns}
    assert len(set(got.values())) == len(got), got  # also unique with "id" and "record"
    assert got == {
        "field_1": "signal_id",
        "field_5": "signal_id_field_9",
        "field_9": "signal_id_field_9_field_9",
        "field_10": "record_field_10",
        "field_12": "field_12",
        "field_13": "field_13",
    }
    assert [c.key for c in spec.columns] == [
        "field_1",
        "field_5",
        "field_9",
        "field_10",
        "field_12",
        "field_13",
    ]  # the metadata's order
    spec.arrow_schema()  # a schema pyarrow writes and reads back


def test_formatted_records_keep_every_fields_value():
    meta = metadata(
        ("field_1", "Signal ID"),
        ("field_9", "signal-id"),
        ("field_3", "ID"),
        ("field_7", "_id"),
        ("field_12", "名前"),
        ("field_13", "住所"),
    )
    record = {"id": "0123456789abcdef01234567"}
    for key in ("field_1", "field_9", "field_3", "field_7", "field_12", "field_13"):
        record[key] = record[f"{key}_raw"] = f"value of {key}"
    (formatted,) = format_records(meta, "object_1", [record])
    assert formatted.values == {
        "signal_id": "value of field_1",
        "signal_id_field_9": "value of field_9",
        "_id": "value of field_3",
        "_id_field_7": "value of field_7",
        "field_12": "value of field_12",
        "field_13": "value of field_13",
    }
    assert formatted.labels["signal_id_field_9"] == "signal-id"


@pytest.mark.parametrize(
    "columns, unresolved",
    [
        # every name has its column, or no column either field could be taken for: publish
        ({"signal_id", "signal_id_field_9"}, []),
        ({"location"}, []),
        # the earlier field's column is there, the later one's is not: refuse
        ({"signal_id"}, [("field_9", "field_1")]),
        ({"signal_id_field_9"}, []),
    ],
)
def test_a_destination_refuses_a_collision_only_when_a_column_could_take_either(
    columns, unresolved
):
    meta = metadata(("field_1", "Signal ID"), ("field_9", "signal-id"))
    got = unresolved_collisions(meta, "object_1", columns)
    assert [(c.key, c.holders[0][0]) for c in got] == unresolved
    if got:
        text = got[0].message("the dataset")
        for word in (
            "field_1",
            "'Signal ID'",
            "field_9",
            "'signal-id'",
            "signal_id",
            "signal_id_field_9",
            "Rename one of the labels",
        ):
            assert word in text, word


def test_a_name_suffixed_twice_names_each_field_it_could_be_taken_for():
    meta = metadata(
        ("field_1", "Signal ID"), ("field_5", "Signal ID field_9"), ("field_9", "signal-id")
    )
    (got,) = unresolved_collisions(meta, "object_1", {"signal_id", "signal_id_field_9"})
    assert got.key == "field_9" and got.name == "signal_id_field_9_field_9"
    assert got.holders == (
        ("field_1", "Signal ID", "signal_id"),
        ("field_5", "Signal ID field_9", "signal_id_field_9"),
    )
