"""lib/explore.py's parts on small frames made here: months in the app's timezone (never the
machine's), the switch to years, fill counts, the map's points and cap, the sample's blanks."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from map_data import embedded

from lib import explore, maps
from lib.snapshot import Column, Spec

TZ = "America/Chicago"
SPEC = Spec(
    "object_1",
    TZ,
    (
        Column("field_1", "modified", "date_time"),
        Column("field_2", "name", "short_text"),
        Column("field_3", "location", "address"),
        Column("field_4", "count", "number"),
    ),
)


def frame(instants_utc: list[str | None], names: list[str | None] | None = None) -> pd.DataFrame:
    n = len(instants_utc)
    when = pd.to_datetime(pd.Series(instants_utc), utc=True).dt.tz_convert(TZ)
    return pd.DataFrame(
        {
            "id": pd.array([f"{i:024x}" for i in range(n)], dtype="string"),
            "modified": when,
            "name": pd.array(names or ["x"] * n, dtype="string"),
            "count": [float(i) if i % 2 else float("nan") for i in range(n)],
        }
    )


@pytest.fixture
def machine_in_tokyo(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_months_are_the_apps_and_empty_months_are_shown(machine_in_tokyo):
    # 05:30 UTC on March 1st is still February 28th in Chicago (and March 1st in Tokyo)
    counts = explore.modified_counts(
        frame(["2026-03-01T05:30:00Z", "2026-01-15T12:00:00Z", "2026-03-20T12:00:00Z", None]),
        SPEC,
        "field_1",
    )
    assert counts.unit == "month"
    assert counts.periods == [("2026-01", 1), ("2026-02", 1), ("2026-03", 1)]
    assert (counts.missing, counts.dated) == (1, 3)
    assert "1 without a date" in counts.describe()
    svg = counts._repr_html_()
    assert svg.count("<rect") == 3 and "<title>2026-02: 1 records</title>" in svg


def test_a_long_span_is_counted_per_year():
    counts = explore.modified_counts(
        frame(["2015-06-01T12:00:00Z", "2026-06-01T12:00:00Z"]), SPEC, "field_1"
    )
    assert counts.unit == "year"
    assert counts.periods[0] == ("2015", 1) and counts.periods[-1] == ("2026", 1)
    assert len(counts.periods) == 12 and counts.dated == 2


def test_no_modified_field_or_not_a_date_column_says_so():
    f = frame(["2026-01-01T00:00:00Z"])
    assert "no modified_date_field" in explore.modified_counts(f, SPEC, None).note
    assert "not a column" in explore.modified_counts(f, SPEC, "field_9").note
    assert "not dates" in explore.modified_counts(f, SPEC, "field_2").note


def test_filled_counts_skip_nulls_and_blank_text():
    assert explore.filled_count(pd.Series(["a", " ", "", None, "b"], dtype="string")) == 2
    assert explore.filled_count(pd.Series([1.0, float("nan"), 0.0])) == 2
    assert explore.filled_count(pd.Series([True, None, False], dtype="boolean")) == 2


def test_the_map_takes_the_first_field_with_coordinates_and_counts_points():
    spec = Spec("object_1", TZ, (Column("field_5", "empty_address", "address"), *SPEC.columns))
    point = {"latitude": 30.2, "longitude": -97.7}
    records = [
        json.dumps(r)
        for r in (
            {"id": "a", "field_3_raw": point, "field_2": "Alpha", "field_2_raw": "Alpha"},
            {
                "id": "b",
                "field_3_raw": [point, {"latitude": "30.3", "longitude": "-97.6"}],
                "field_2_raw": " <b>Beta</b> ",
            },
            {"id": "c", "field_3_raw": ""},
            {"id": "d", "field_3_raw": {"street": "no coordinates"}},
        )
    ]
    keys = explore.location_columns(spec, preferred=["field_3", None])
    assert keys == ["field_3", "field_5"]
    mapped = explore.point_map(records, spec, keys)
    assert (mapped.field, mapped.located, mapped.unlocated, len(mapped.points)) == (
        "field_3",
        2,
        2,
        3,
    )
    (shown,) = embedded(mapped._repr_html_())
    assert [p[:2] for p in shown["points"]] == [[30.2, -97.7], [30.2, -97.7], [30.3, -97.6]]
    # each popup: the record's id and its first text column's (field_2, name) value
    assert [p[2] for p in shown["points"]] == ["a — Alpha", "b — <b>Beta</b>", "b — <b>Beta</b>"]
    assert 'aria-label="map of 3 points"' in mapped._repr_html_()
    none = explore.point_map(records, SPEC, [])
    assert none.field is None and "no location" in none.note


def test_the_map_draws_at_most_max_points(monkeypatch):
    monkeypatch.setattr(maps, "MAX_POINTS", 50)
    located = explore.PointMap(
        "field_3",
        "location",
        [maps.Point(-97.7 + i / 1000, 30.2) for i in range(120)],
        located=120,
        rows=130,
    )
    html = located._repr_html_()
    (shown,) = embedded(html)
    assert len(shown["points"]) == 50
    assert "120 points of location (field_3) from 120 of 130 records" in html
    assert "50 of them drawn, evenly picked" in html


def test_the_sample_is_newest_first_with_blanks():
    f = frame(["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", None], names=["a", None, "c"])
    columns = explore.ColumnsTable(
        [
            explore.ColumnInfo(c.name, c.key, c.type, "", explore.filled_count(f[c.name]), len(f))
            for c in SPEC.columns
            if c.name in f.columns
        ],
        len(f),
    )
    modified = explore.modified_counts(f, SPEC, "field_1")
    sample = explore.sample(f, columns, modified)
    assert list(sample["id"]) == [f"{1:024x}", f"{0:024x}", f"{2:024x}"]
    assert list(sample.columns[:2]) == ["id", "modified"]
    assert list(sample["name"]) == ["", "a", "c"]
    assert list(sample["count"]) == ["1", "", ""]
    assert list(sample["modified"]) == ["2026-01-31 18:00", "2025-12-31 18:00", ""]
