"""lib.table: a long cell wraps within the page instead of running past its right edge, in
the HTML itself (inline styles, which Lab's sanitizer keeps) and, when chromium is here, as
a browser lays it out: on a plain page and on the offline report page (nbconvert's lab
template, the CSS Jupyter Lab uses)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, dump_dom

from lib.reports.html import _exporter
from lib.table import Table

LONG_WORD = "https://example.org/" + "a" * 300  # no place to break
LONG_TEXT = " ".join(["a long sentence of a rich text field"] * 20)


def wide_table() -> Table:
    rows = [
        {"id": "5d7964422d7159001659b27a", "link": LONG_WORD, "text": LONG_TEXT, "n": 1},
        {"id": "5d7968c8092e7f00106c6399", "link": "short", "text": "short", "n": 2},
    ]
    return Table(rows, ["id", "link", "text", "n"], bars="n")


def test_every_cell_wraps_in_a_box_of_bounded_width_with_inline_styles():
    page = wide_table()._repr_html_()
    table = re.search(r'<table class="knack-nb-table" style="([^"]*)"', page)
    assert table and "max-width:100%" in table.group(1)
    cells = re.findall(r"<t([dh])(?: [^>]*)?>(.*?)</t\1>", page)
    texts = [body for _, body in cells if body and "knack-nb-bar" not in body]
    assert len(texts) == 4 + 1 + 2 * 4  # the heads (with the bars'), every cell's text
    for body in texts:
        box = re.fullmatch(r'<div style="([^"]*)">[^<]*</div>', body)
        assert box, body
        styles = [tuple(part.split(":", 1)) for part in box.group(1).split(";")]
        assert ("overflow-wrap", "break-word") in styles and ("white-space", "normal") in styles
        # a long word may break anywhere (a browser); an id (24 characters) stays whole
        anywhere = ("overflow-wrap", "anywhere") in styles
        assert anywhere == (LONG_WORD in body), body
        styles = dict(styles)
        assert styles["max-width"].endswith("em")


needs_chromium = pytest.mark.skipif(not CHROMIUM, reason="no chromium to lay the page out")

# the widest table's right edge, the page's width, the long cells' heights
_PROBE = """<script>addEventListener('load', function () { setTimeout(function () {
  var t = document.querySelector('table.knack-nb-table');
  var cells = t.querySelectorAll('tbody tr:first-child td');
  document.body.setAttribute('data-layout', JSON.stringify({
    right: t.getBoundingClientRect().right,
    page: document.documentElement.clientWidth,
    scroll: document.documentElement.scrollWidth,
    link: cells[1].firstElementChild.getBoundingClientRect().height,
    id: cells[0].firstElementChild.getBoundingClientRect().height}));
}, 100); });</script>"""


def layout(page: str, tmp_path: Path, width: int = 900) -> dict[str, float]:
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", _PROBE + "</body>", 1), encoding="utf-8")
    dom = dump_dom(path, tmp_path / "profile", f"--window-size={width},800", budget_ms=2000)
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


def assert_wrapped(box: dict[str, float]) -> None:
    assert box["right"] <= box["page"] and box["scroll"] <= box["page"], box
    assert box["link"] > 3 * box["id"], box  # the long word broke onto several lines


@needs_chromium
def test_a_long_cell_wraps_inside_a_plain_page(tmp_path):
    page = f"<html><body>{wide_table()._repr_html_()}</body></html>"
    assert_wrapped(layout(page, tmp_path))


@needs_chromium
def test_a_long_cell_wraps_inside_the_offline_report_page(tmp_path):
    """nbconvert's lab template (lib.reports.html's exporter): JupyterLab's own CSS."""
    table = wide_table()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("result.sample")
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            {"text/html": table._repr_html_(), "text/plain": repr(table)},
            execution_count=1,
        )
    ]
    nb.cells = [cell]
    page, _ = _exporter().from_notebook_node(nb)
    assert_wrapped(layout(page, tmp_path))


def explore_like_table() -> Table:
    """Ten columns named as the snapshot names them (long, joined by underscores)."""
    names = [
        "id",
        "date_time___w__time_default_current",
        "auto_increment",
        "number",
        "date_time___no_date",
        "date_time___range",
        "text_formula_simple",
        "yes_no",
        "address_international_with_country",
        "image_from_web",
    ]
    row = dict.fromkeys(names, "2021-01-26 20:45") | {"id": "6010d3e629ea96001bf95e4f"}
    return Table([row] * 5, names)


def test_a_column_name_may_break_after_its_underscores():
    page = explore_like_table()._repr_html_()
    assert ">date_<wbr>time___<wbr>no_<wbr>date</div></th>" in page
    assert "6010d3e629ea96001bf95e4f</div>" in page  # values: as they are


@needs_chromium
def test_ten_columns_of_long_names_fit_the_offline_report_page(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("result.sample_table()")
    table = explore_like_table()
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result", {"text/html": table._repr_html_()}, execution_count=1
        )
    ]
    nb.cells = [cell]
    page, _ = _exporter().from_notebook_node(nb)
    box = layout(page, tmp_path, width=1280)
    assert box["right"] <= box["page"] and box["scroll"] <= box["page"], box
