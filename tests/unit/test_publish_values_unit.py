"""Unit tests of the value checks (lib/publish/values.py), the publishers' conversions by
column type, and the ArcGIS matching-value rules (one feature per value, every deletion
counted); no server."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from lib import config
from lib.maps import Point
from lib.publish import agol, agol_match, socrata, values
from lib.publish.values import Refused, ValueCheck
from lib.records import Formatted

CENTRAL = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    "value, expected",
    [
        (3, 3),
        (2.5, 2.5),
        ("3", 3.0),
        (" -1.5e2 ", -150.0),
        ("$1,234.50", 1234.5),
        (True, 1),
        (False, 0),
        (["7"], 7.0),
    ],
)
def test_numbers(value, expected):
    assert values.number(value) == expected


@pytest.mark.parametrize(
    "value",
    ["3 cabinets", "n/a", "nan", "inf", "1_000", "1e400", "0x10", float("nan"), ["1", "2"]],
)
def test_text_that_is_no_number_is_refused(value):
    with pytest.raises(Refused, match="not a (finite )?number"):
        values.number(value)


def test_whole_numbers_are_never_truncated_and_stay_in_range():
    assert values.whole_number("12", 0, 100) == 12 and values.whole_number(3.0, 0, 9) == 3
    with pytest.raises(Refused, match="not a whole number"):
        values.whole_number(3.5, 0, 9)
    with pytest.raises(Refused, match="outside 0..9"):
        values.whole_number(10, 0, 9)


def test_booleans_and_knacks_words_for_them():
    assert [values.boolean(v) for v in (True, False, 1, 0, "Yes", "no", " ON ", "false")] == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    for bad in ("maybe", 2, "3 cabinets"):
        with pytest.raises(Refused, match="not true or false"):
            values.boolean(bad)


def test_instants():
    assert values.instant("2026-07-01T12:00:00-05:00").utcoffset() == dt.timedelta(hours=-5)
    assert values.instant("2026-07-01") == dt.datetime(2026, 7, 1)
    with pytest.raises(Refused, match="not an ISO date or time"):
        values.instant("07/01/2026")


def test_empty_values():
    assert all(values.is_empty(v) for v in (None, "", "  \n", [], [None, " "]))
    assert not any(values.is_empty(v) for v in (0, False, "0", ["a"], {}))


def test_a_value_is_shown_short_on_one_line_and_escaped():
    assert values.shown("3 cabinets") == "'3 cabinets'"
    assert values.shown("a\n  b") == "'a b'"
    assert values.shown("x" * 100) == repr("x" * 39 + "…")
    assert values.shown("\x1b[31mred") == repr("\x1b[31mred")  # no raw escape sequence
    assert values.shown(3.5) == "3.5"


def record(rid: str, **vals) -> Formatted:
    names = list(vals)
    return Formatted(
        rid,
        vals,
        {n: "short_text" for n in names},
        labels={n: n.replace("_", " ").title() for n in names},
        keys={n: f"field_{i + 7}" for i, n in enumerate(names)},
    )


def check_all(check: ValueCheck, records: list[Formatted], kind: str = "number") -> list:
    return [
        check.value(f, name, name, kind, socrata._value, kind) for f in records for name in f.values
    ]


def test_one_bad_value_fails_its_record_alone_by_column_value_and_type():
    check = ValueCheck("column {}")
    records = [
        record("a" * 24, cabinet_count="2"),
        record("b" * 24, cabinet_count="3 cabinets"),
        record("c" * 24, cabinet_count=None),
    ]
    out = check_all(check, records)
    assert out[0] == 2.0 and out[1] is values.FAILED and out[2] is None
    assert check.failed == {
        "b" * 24: "cabinet_count (number) cannot take '3 cabinets': not a number"
    }
    assert check.retyped() is None
    message = check.failures("the dataset's column types")
    assert message.startswith(
        "1 records were not published, a value of theirs does not fit "
        "its column: " + "b" * 24 + ": cabinet_count (number)"
    )
    assert "fix those records in Knack or the dataset's column types first" in message


def test_a_record_with_two_bad_values_lists_both():
    check = ValueCheck("column {}")
    check_all(check, [record("a" * 24, one="1", two="2"), record("b" * 24, one="x", two="y")])
    assert check.failed["b" * 24] == (
        "one (number) cannot take 'x': not a number; two (number) cannot take 'y': not a number"
    )


def test_a_column_that_takes_none_of_its_values_is_a_retyped_field():
    check = ValueCheck("field {} of the layer")
    check_all(
        check,
        [record(f"{i:024x}", cabinet_count=f"{i} cabinets" if i % 3 else "") for i in range(9)],
        kind="number",
    )
    message = check.retyped()
    assert message.startswith(
        "field_7 'Cabinet Count' holds text like '1 cabinets' but "
        "field cabinet_count of the layer is number (none of its 6 "
        "non-empty values fits: was the field retyped?)"
    )
    assert message.endswith(
        "Nothing was written. Change the destination's column type, or "
        "the field back in Knack (then sync), and rerun"
    )


def test_empty_values_alone_are_no_retyped_field():
    check = ValueCheck("column {}")
    check_all(check, [record("a" * 24, n=None), record("b" * 24, n=" ")])
    assert check.retyped() is None and not check.failed


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        ("3", "number", 3.0),
        (7, "money", 7),
        ("", "number", None),
        ("", "checkbox", None),
        ("Yes", "checkbox", True),
        (False, "checkbox", False),
        ("2018-07-03T10:26:00-05:00", "calendar_date", "2018-07-03T10:26:00"),
        (" ", "calendar_date", None),
        ("POINT (-97.7 30.2)", "point", "POINT (-97.7 30.2)"),
        (
            {"type": "Point", "coordinates": [1, 2]},
            "point",
            {"type": "Point", "coordinates": [1, 2]},
        ),
        (True, "text", "True"),
        (["a", "b"], "text", "a, b"),
        (3, "text", "3"),
        ("", "text", ""),
        ("https://x.org", "url", "https://x.org"),
    ],
)
def test_socrata_values_by_column_type(value, kind, expected):
    assert socrata._value(value, kind) == expected


@pytest.mark.parametrize(
    "value, kind, why",
    [
        ("3 cabinets", "number", "not a number"),
        ("maybe", "checkbox", "not true or false"),
        ("next week", "calendar_date", "not an ISO date"),
        ("8700 Cameron Rd", "point", "not a point: set socrata.location"),
    ],
)
def test_socrata_refuses_what_a_column_cannot_take(value, kind, why):
    with pytest.raises(Refused, match=why):
        socrata._value(value, kind)


# --------------------------------------------------------------------------- ArcGIS


def cfg(**kwargs) -> config.ContainerConfig:
    return config.ContainerConfig(**kwargs)


AGOL = config.AgolConfig(service_id="svc", upsert_matching_field="status")


def agol_result(mode="full") -> agol.AgolPublish:
    return agol.AgolPublish(
        app_name="signals", env="dev", container="object_1", service_id="svc", layer_id=0, mode=mode
    )


def features(*statuses: str) -> list:
    return [
        (f"{i:024x}", {"attributes": {"id": f"{i:024x}", "status": s}})
        for i, s in enumerate(statuses)
    ]


def test_unique_matching_values_pass_untouched():
    pairs = features("A", "B", "C")
    r = agol_result()
    assert agol_match.one_per_value(pairs, {"A": [1]}, "status", AGOL, cfg(), r) == pairs
    assert r.ok and not r.notes


def test_repeated_matching_values_are_refused_before_any_write():
    r = agol_result()
    pairs = features("A", "A", "A", "A", "B")  # 3 of 5 left out: more than half
    assert agol_match.one_per_value(pairs, {}, "status", AGOL, cfg(), r) is None
    (error,) = r.errors
    assert error.startswith(
        "upsert_matching_field 'status' is not unique: 5 records hold 2 "
        f"values of it ('A': 4 records, e.g. {0:024x}, {1:024x}, "
        f"{2:024x}). One feature per value would mean 3 records left out"
    )
    assert "Nothing was written" in error and "allow_mass_delete: true" in error
    assert not r.rerun_helps


def test_repeated_features_in_the_layer_count_against_the_guard():
    r = agol_result()
    existing = {"A": [1, 2, 3], "B": [4, 5, 6]}
    assert agol_match.one_per_value(features("A", "B"), existing, "status", AGOL, cfg(), r) is None
    assert (
        "the layer holds several features for 2 of its values ('A': 3 features, e.g. "
        "object ids 1, 2, 3; 'B': 3 features, e.g. object ids 4, 5, 6). One feature per "
        "value would mean 4 features deleted"
    ) in r.errors[0]


def test_allowed_the_first_record_of_a_value_is_published_and_the_others_skipped():
    r = agol_result()
    pairs = features("A", "A", "B")
    r.points = [Point(0, 0, rid) for rid, _ in pairs]
    kept = agol_match.one_per_value(pairs, {}, "status", AGOL, cfg(allow_mass_delete=True), r)
    assert [rid for rid, _ in kept] == [pairs[0][0], pairs[2][0]]
    assert r.skipped == {
        pairs[1][0]: f"its status 'A' is also record {pairs[0][0]}'s (one feature per value)"
    }
    assert [p.id for p in r.points] == [pairs[0][0], pairs[2][0]]  # the map shows the kept
    assert r.ok and "1 records share a value" in r.notes[0]


def test_a_few_repeats_within_the_threshold_are_allowed():
    r = agol_result()
    kept = agol_match.one_per_value(
        features("A", "A", "B", "C"), {}, "status", AGOL, cfg(mass_delete_threshold=0.5), r
    )
    assert kept is not None and len(kept) == 3 and r.ok


class DeletingLayer:
    """A layer that deletes by object id; ``answer_nothing``: its delete answers no
    results (a retried request the layer had already applied)."""

    def __init__(self, oids, answer_nothing=False):
        self.held = set(oids)
        self.answer_nothing = answer_nothing

    def delete(self, oids):
        gone = [o for o in oids if o in self.held]
        self.held -= set(gone)
        if self.answer_nothing:
            return {"deleteResults": []}
        return {"deleteResults": [{"objectId": o, "success": True} for o in gone]}

    def present(self, oids):
        return {o for o in oids if o in self.held}


@pytest.mark.parametrize("answer_nothing", [False, True])
def test_every_deletion_is_counted_duplicates_too(answer_nothing):
    existing = {"a": [1, 2], "b": [3], "gone": [4]}
    layer = DeletingLayer([1, 2, 3, 4], answer_nothing)
    r = agol_result()
    agol._remove_gone(layer, existing, {"a", "b"}, 500, r, cfg(mass_delete_threshold=0.9))
    assert r.ok and layer.held == {1, 3}
    assert sorted(r.deleted) == ["a (duplicate)", "gone"]
    assert r.counts()["deleted"] == 2


def test_duplicates_count_in_the_mass_delete_guard_of_a_full_run():
    existing = {"a": [1, 2, 3], "b": [4]}
    layer = DeletingLayer([1, 2, 3, 4])
    r = agol_result()
    agol._remove_gone(layer, existing, {"a", "b"}, 500, r, cfg())
    assert "refusing to delete 2 of the 4 features" not in " ".join(r.errors)  # 50%: allowed
    assert sorted(r.deleted) == ["a (duplicate)", "a (duplicate)"]
    r, layer = agol_result(), DeletingLayer([1, 2, 3, 4])
    agol._remove_gone(layer, {"a": [1, 2, 3], "b": [4]}, {"b"}, 500, r, cfg())
    assert "refusing to delete 3 of the 4 features of the layer" in r.errors[0]
    assert layer.held == {1, 2, 3, 4} and not r.deleted


def test_a_record_with_a_value_its_field_cannot_take_is_no_feature():
    layer = SimpleNamespace(
        fields={"id": "esriFieldTypeString", "cabinet_count": "esriFieldTypeDouble"},
        names={"id": "id", "cabinet_count": "cabinet_count"},
        geometry_type=None,
    )
    check, r = ValueCheck("field {} of the layer"), agol_result()
    good = agol._feature(record("a" * 24, cabinet_count="2"), layer, "id", CENTRAL, r, check)
    bad = agol._feature(
        record("b" * 24, cabinet_count="3 cabinets"), layer, "id", CENTRAL, r, check
    )
    assert good["attributes"] == {"id": "a" * 24, "cabinet_count": 2.0} and bad is None
    assert check.failed == {
        "b" * 24: "cabinet_count (esriFieldTypeDouble) cannot take '3 cabinets': not a number"
    }
    assert not r.skipped
