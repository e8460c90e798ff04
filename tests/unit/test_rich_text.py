"""Rich text in the reports' tables: Knack's rich text (and the HTML of its timer and address
fields) shows as the text a reader sees, shortened, in every table of record values (the
sync's and publish's samples, explore's sample), with the real fixture records
(emulators/fixtures/knackpy: a copy of /work/shared's)."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from emulators.knack import load_fixture_app
from lib.explore.report import TEXT_WIDTH, _cell
from lib.publish.run import SAMPLE_WIDTH, sample_table
from lib.sync.pages import sample as sync_sample
from lib.text import value_text

METADATA, RECORDS = load_fixture_app()
OBJECT_3 = next(o for o in METADATA["application"]["objects"] if o["key"] == "object_3")
HTML_FIELDS = [f["key"] for f in OBJECT_3["fields"] if f["type"] in ("rich_text", "timer")]
RICH = [r for r in RECORDS["object_3"] if r.get("field_8")]  # field_8: the rich text field
MARKUP = re.compile(r"<[a-zA-Z/!][^>]*>|&[a-zA-Z]+;|&#\d+;")


def test_the_fixture_has_rich_text_as_html():
    assert "field_8" in HTML_FIELDS and len(RICH) >= 3
    assert all(MARKUP.search(r["field_8"]) for r in RICH)


@pytest.mark.parametrize("record", RICH, ids=lambda r: r["id"])
def test_rich_text_reads_as_its_text_collapsed_and_short(record):
    for key in [*HTML_FIELDS, "field_21"]:
        value = record.get(key)
        if not value:
            continue
        shown = value_text(value, 40)
        assert not MARKUP.search(shown), (key, shown)
        assert "  " not in shown and shown == shown.strip() and len(shown) <= 40


def test_what_a_reader_sees_of_the_fixture_values():
    first = next(r for r in RICH if r["id"] == "5d7964422d7159001659b27a")
    assert value_text(first["field_8"], 200) == (
        "bold rich text heading 1 tablerow 1 1 tablerow 23 25"
    )
    assert value_text(first["field_8"], 20) == "bold rich text head…"
    assert value_text(first["field_16"], 80) == "09/11/19 4:14pm to 5:14pm = 1:00 hours"  # &nbsp;
    assert value_text(first["field_21"], 80) == "8700 Cameron Rd Suite 1 Austin, TX 78754"
    linked = next(r for r in RICH if 'href="http://test.com"' in r["field_8"])
    assert value_text(linked["field_8"], 80) == "test"


def test_text_that_is_not_html_stays_as_it_is():
    assert value_text("AT&T < 5 &amp; more", 80) == "AT&T < 5 &amp; more"
    assert value_text("two\n\nlines  here", 80) == "two lines here"
    assert value_text("<b>bo</b>ld<script>alert(1)</script>", 80) == "bold"


def test_the_publish_sample_shows_rich_text_as_text():
    rows = [{"id": r["id"], "rich_text": r["field_8"], "timer": r["field_16"]} for r in RICH]
    table = sample_table(rows)
    page = table._repr_html_()
    assert "&lt;p&gt;" not in page and "&lt;strong&gt;" not in page and "&amp;nbsp;" not in page
    assert "bold rich text heading 1" in page and "boring rich text" in page
    assert all(len(v) <= SAMPLE_WIDTH for v in table.column("rich_text"))


def test_the_sync_sample_shows_rich_text_as_text():
    """The sample shows a container's first fields: the rich text field put first."""
    metadata = copy.deepcopy(METADATA["application"])
    fields = next(o for o in metadata["objects"] if o["key"] == "object_3")["fields"]
    fields.sort(key=lambda f: f["key"] not in ("field_8", "field_16"))
    table = sync_sample(RICH, metadata, "object_3", "field_13")
    names = {f["key"]: f["name"] for f in OBJECT_3["fields"]}
    shown = [v for row in table for v in row.values() if isinstance(v, str)]
    assert names["field_8"] in table.columns  # the rich text field is among those shown
    assert not any(MARKUP.search(v) for v in shown), shown
    assert "boring rich text" in table.column(names["field_8"])


def test_the_explore_sample_cells_show_rich_text_as_text():
    for record in RICH:
        shown = _cell(record["field_8"])
        assert not MARKUP.search(shown) and len(shown) <= TEXT_WIDTH
    assert _cell(pd.NA) == "" and _cell(2.0) == "2"


def test_the_sync_sample_shows_knack_dates_as_explore_does():
    """Knack's formatted dates (07/03/2018 10:26) read as the app's local ISO dates, as in
    explore's sample (before: 07/03/2018 10:26 beside explore's 2018-07-03 10:26)."""
    metadata = copy.deepcopy(METADATA["application"])
    fields = next(o for o in metadata["objects"] if o["key"] == "object_3")["fields"]
    fields.sort(key=lambda f: f["key"] not in ("field_12", "field_15"))  # first in the sample
    table = sync_sample(RECORDS["object_3"][:2], metadata, "object_3", "field_13")
    names = {f["key"]: f["name"] for f in OBJECT_3["fields"]}
    first = table.rows[0]
    assert first[names["field_13"]] == "2018-07-03 10:26"  # the modified date, with its time
    assert first[names["field_12"]] == "2019-09-11"  # a date without time
    assert first[names["field_15"]] == "2019-09-11 16:14 to 2019-09-11 17:14"  # a range
