"""lib.table: the report tables that render without pandas."""

import re

from lib.table import Table, cell_text


def test_cells_read_as_a_person_expects():
    assert cell_text(None) == "" and cell_text(float("nan")) == ""
    assert cell_text([]) == "none" and cell_text(["a", "b"]) == "a, b"
    assert cell_text(12345) == "12,345" and cell_text(2.0) == "2" and cell_text(0.125) == "0.12"
    assert cell_text(True) == "yes" and cell_text(False) == "no" and cell_text("x") == "x"
    # the health summary's containers (before: {'object_3': {'status': 'ok', 'problems': []}})
    containers = {"object_3": {"status": "ok", "problems": []}, "view_6": {"status": "warn"}}
    assert cell_text(containers) == "object_3: status ok, problems none; view_6: status warn"


def test_html_is_escaped_with_blanks_and_a_caption():
    t = Table(
        [{"id": "<b>1</b>", "n": None, "tags": []}, {"id": "2", "n": 3}],
        ["id", "n", "tags"],
        caption="two & more",
    )
    html = t._repr_html_()
    assert "&lt;b&gt;1&lt;/b&gt;" in html and "<b>1</b>" not in html
    assert re.search(r'<div class="knack-nb-caption"[^>]*>two &amp; more</div><table', html)
    assert "NaN" not in html and "None" not in html and ">none<" in html
    assert html.count("<tr>") == 3 and len(t) == 2 and not t.empty
    assert t.column("n") == [None, 3] and t.by("id")["2"]["n"] == 3
    assert "two & more" in repr(t) and "<b>1</b>" in repr(t)


def test_bars_scale_to_the_largest_count_and_vanish_when_all_are_zero():
    t = Table.of_pairs(
        {"fetched": 10, "written": 5, "failed": 0}, "outcome", "records", bars="records"
    )
    html = t._repr_html_()
    assert "width:120px" in html and "width:60px" in html and "width:0px" in html
    # the bars are labelled: their column's head says what they draw, each bar its count
    assert re.search(r"<th[^>]*><div[^>]*>records, to scale</div></th>", html)
    assert 'title="10 records"' in html and 'title="5 records"' in html
    zero = Table.of_pairs({"fetched": 0, "written": 0}, "outcome", "records", bars="records")
    assert 'class="knack-nb-bar"' not in zero._repr_html_()


def test_an_empty_table_says_none_and_converts_to_pandas():
    empty = Table([], ["record id", "why"])
    assert empty.empty and "<em>none</em>" in empty._repr_html_() and "(none)" in repr(empty)
    frame = Table([{"a": 1, "b": "x"}]).to_pandas()
    assert list(frame.columns) == ["a", "b"] and frame.iloc[0]["b"] == "x"


def test_a_publish_sample_shows_few_columns_and_local_dates():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from lib.publish.run import SAMPLE_COLUMNS, sample_table

    instant = dt.datetime(2026, 7, 4, 15, 30, tzinfo=dt.UTC)
    row = {
        "id": "a" * 24,
        "modified": int(instant.timestamp() * 1000),
        **{f"c{i}": i for i in range(20)},
    }
    table = sample_table([row], dates=["modified"], tz=ZoneInfo("America/Chicago"))
    assert len(table.columns) == SAMPLE_COLUMNS and table.columns[:2] == ["id", "modified"]
    assert table.caption == f"{SAMPLE_COLUMNS} of 22 columns"
    assert table.rows[0]["modified"] == "2026-07-04 10:30 CDT"  # epoch ms as local time
