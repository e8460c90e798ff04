"""lib/maps.py: a Leaflet map inlined in an <iframe srcdoc> (no CDN), one marker datum per
point, popups that are text (never HTML), clusters when there are many points, the vendored
files shipped in the wheel; and, when chromium is here, the markers drawn with no network."""

from __future__ import annotations

import fnmatch
import html
import re
import tomllib
from pathlib import Path

import pytest
from chromium import CHROMIUM, dump_dom
from map_data import embedded

from lib import maps

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "lib" / "static"


def points(n: int, label: str = "Signal {i}") -> list[maps.Point]:
    return [
        maps.Point(-97.7 + i / 1000, 30.2 + i / 2000, f"rec{i}", label.format(i=i))
        for i in range(n)
    ]


def srcdoc(fragment: str) -> str:
    (doc,) = re.findall(r'<iframe [^>]*srcdoc="([^"]*)"', fragment)
    return html.unescape(doc)


def test_the_map_is_an_iframe_with_leaflet_inlined_and_no_cdn():
    fragment = maps.PointsMap(points(3), "3 points in signals")._repr_html_()
    doc = srcdoc(fragment)
    for page in (fragment, doc):
        assert not re.search(r"""<script[^>]+src=|<link\b|src=["']?(https?:)?//""", page)
        assert "unpkg" not in page and "cdnjs" not in page and "jsdelivr" not in page
        assert "sourceMappingURL" not in page
    assert "Leaflet 1.9.4" in doc and "L.MarkerClusterGroup" in doc
    assert ".leaflet-container" in doc and ".marker-cluster-small" in doc  # the CSS
    assert "L.circleMarker" in doc and "fitBounds" in doc
    assert 'sandbox="allow-scripts' in fragment and 'aria-label="map of 3 points"' in fragment
    # the tiles load in the viewer's browser (Leaflet asks for them), attributed
    (data,) = embedded(fragment)
    assert data["tiles"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in data["attribution"]
    # the caption under the map; the text/plain fallback is the caption
    assert fragment.endswith("<p>3 points in signals</p></div>")
    assert repr(maps.PointsMap(points(3), "3 points in signals")) == "3 points in signals"


def test_one_marker_datum_per_point_lat_lon_and_popup():
    given = points(7) + [maps.Point(-97.6, 30.3)]  # no id, no label: no popup
    (data,) = embedded(maps.map_html(given, "x"))
    assert data["points"] == [[round(p.lat, 6), round(p.lon, 6), p.popup] for p in given]
    assert data["points"][0][2] == "rec0 — Signal 0" and data["points"][-1][2] == ""
    # plain (lon, lat) pairs still make a map (no popups)
    (pairs,) = embedded(maps.PointsMap([(-97.7, 30.2)], "one")._repr_html_())
    assert pairs["points"] == [[30.2, -97.7, ""]]


def test_popups_are_text_never_html():
    evil = "<img src=x onerror=alert(1)> & </script><b>"
    fragment = maps.map_html(points(2, label=evil + "{i}"), "<b>caption</b>")
    doc = srcdoc(fragment)
    (data,) = embedded(fragment)
    assert data["points"][0][2] == "rec0 — " + evil + "0"  # the text, as it is
    assert "<img src=x" not in doc and "</script><b>" not in doc  # \u003c... in the JSON
    assert doc.count("</script>") == 3  # Leaflet's, the data's and the map's: none injected
    assert "div.textContent = p[2]" in doc and "innerHTML" not in maps._SCRIPT
    assert "<p>&lt;b&gt;caption&lt;/b&gt;</p>" in fragment
    # the srcdoc attribute is escaped: nothing in it closes the iframe's tag
    assert re.fullmatch(r'[^"]*', re.search(r'srcdoc="([^"]*)"', fragment)[1])
    lone = maps.map_html([maps.Point(0, 0, "r", "bad \udcff")], "x")  # a lone surrogate
    lone.encode("utf-8")  # the report stays writable


def test_popup_labels_are_one_line_and_short():
    long = maps.Point(0, 0, "rec1", "  a\n b " + "c" * 200)
    assert long.popup.startswith("rec1 — a b ccc") and len(long.popup) == 7 + maps.LABEL_WIDTH
    assert long.popup.endswith("…")
    assert maps.Point(0, 0, "", "label").popup == "label"


def test_clusters_above_the_threshold_and_at_most_max_points(monkeypatch):
    (few,) = embedded(maps.map_html(points(maps.CLUSTER_ABOVE), "x"))
    (many,) = embedded(maps.map_html(points(maps.CLUSTER_ABOVE + 1), "x"))
    assert few["cluster"] is False and many["cluster"] is True
    assert len(many["points"]) == maps.CLUSTER_ABOVE + 1
    monkeypatch.setattr(maps, "MAX_POINTS", 50)
    fragment = maps.map_html(points(120), "x")
    (capped,) = embedded(fragment)
    assert len(capped["points"]) == 50 and 'aria-label="map of 50 points"' in fragment
    assert capped["points"][0][2] == "rec0 — Signal 0"  # evenly picked, in order


def test_the_vendored_files_and_licenses_ship_in_the_wheel():
    for name in maps.STATIC + ("LICENSE-leaflet", "LICENSE-leaflet.markercluster"):
        assert (STATIC / name).stat().st_size > 0, name
    assert "BSD 2-Clause" in (STATIC / "LICENSE-leaflet").read_text()
    assert "Permission is hereby granted" in (STATIC / "LICENSE-leaflet.markercluster").read_text()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]["lib"]
    for path in STATIC.iterdir():
        relative = path.relative_to(ROOT / "lib").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), relative


needs_chromium = pytest.mark.skipif(not CHROMIUM, reason="no chromium to run the map's scripts")


def browser_dom(doc: str, probe: str, tmp_path: Path) -> str:
    """``doc`` with ``probe`` (a script) run in headless chromium that cannot resolve any
    host (no tiles, no network): the DOM after its scripts ran."""
    page = tmp_path / "map.html"
    page.write_text(doc.replace("</body>", f"<script>{probe}</script></body>"), encoding="utf-8")
    return dump_dom(
        page,
        tmp_path / "profile",
        # render frames as a browser on screen does (layout, ResizeObserver) under virtual time
        "--run-all-compositor-stages-before-draw",
        budget_ms=3000,
    )


def circles(dom: str) -> list[str]:
    """The "d" of each circle marker Leaflet drew (an SVG path; "M0 0": out of view)."""
    return re.findall(r'<path class="leaflet-interactive"[^>]* d="([^"]*)"', dom)


@needs_chromium
def test_a_browser_draws_every_marker_with_no_network_and_popups_as_text(tmp_path):
    doc = maps.map_document(points(5, label="<b>bold</b> {i}"))
    dom = browser_dom(
        doc, "setTimeout(function () { knackMap.markers[4].openPopup(); }, 50);", tmp_path
    )
    drawn = circles(dom)
    assert len(drawn) == 5 and "M0 0" not in drawn  # each in view: fitted to the points
    (popup,) = re.findall(r'<div class="leaflet-popup-content"[^>]*>(.*?)</div>', dom)
    assert popup == "<div>rec4 — &lt;b&gt;bold&lt;/b&gt; 4"


@needs_chromium
def test_a_map_laid_out_after_its_script_is_fitted_again(tmp_path):
    """A page may size the iframe after the map's script ran (nbconvert's did, now and
    then: the map was fitted to 0x0, zoomed to a street with no point in view)."""
    spread = [maps.Point(-98 + i / 10, 30 + i / 20, f"r{i}") for i in range(6)]  # ~50 km
    doc = maps.map_document(spread).replace("<div id='map'>", "<div id='map' hidden>")
    probe = (
        "setTimeout(function () { document.getElementById('map').hidden = false;"
        " window.dispatchEvent(new Event('resize')); }, 50);"
    )
    drawn = circles(browser_dom(doc, probe, tmp_path))
    assert len(drawn) == 6 and "M0 0" not in drawn


@needs_chromium
def test_a_map_is_fitted_when_its_container_first_gets_a_size(tmp_path):
    """No window resize at all: the map's box gets its size after the script ran (Lab lays
    out a trusted report's output so); it is fitted then (before: a street-level view of
    0x0's fit, no point in view, until the window was resized)."""
    spread = [maps.Point(-98 + i / 10, 30 + i / 20, f"r{i}") for i in range(6)]  # ~50 km
    doc = maps.map_document(spread).replace("<div id='map'>", "<div id='map' hidden>")
    probe = "setTimeout(function () { document.getElementById('map').hidden = false; }, 50);"
    drawn = circles(browser_dom(doc, probe, tmp_path))
    assert len(drawn) == 6 and "M0 0" not in drawn
