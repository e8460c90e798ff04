"""Points on an interactive map: Leaflet with Leaflet.markercluster, both vendored in
``lib/static/`` (see its README) and inlined, so a report needs no CDN to show its points.

The map is a whole HTML document put in an ``<iframe srcdoc>`` (as folium does): its
scripts run in Jupyter Lab (a trusted notebook), in nbconvert's HTML and in a browser,
isolated from the page (a sandboxed iframe). The points are circle markers (no marker
images), clustered when there are many, each with a popup "<record id> — <label>" (set as
text, never as HTML). The tiles (OpenStreetMap's) load in the viewer's browser; without
them (offline) the map's background stays grey and the points still show.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any, NamedTuple

from lib.text import clean

MAX_POINTS = 10_000  # markers on one map (evenly picked): each is ~40 bytes of the report
CLUSTER_ABOVE = 200  # more points than this are clustered
POINT_COLOR = "#1f5f99"
HEIGHT = 420  # px
TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright" target="_blank" '
    'rel="noopener">OpenStreetMap</a> contributors'
)
LABEL_WIDTH = 80  # characters of a label shown in a popup
STATIC = (
    "leaflet.css",
    "MarkerCluster.css",
    "MarkerCluster.Default.css",
    "leaflet.js",
    "leaflet.markercluster.js",
)
UNTRUSTED = (
    "Trust this notebook to load the map: in Jupyter Lab, the command palette "
    "(Ctrl+Shift+C) → Trust Notebook; or `jupyter trust FILE` in a terminal."
)
DATA_ID = "map-data"  # the id of the script element that holds a map's data (JSON)


class Point(NamedTuple):
    """One point: WGS 84 longitude and latitude, the record's id and a label."""

    lon: float
    lat: float
    id: str = ""
    label: str = ""

    @property
    def popup(self) -> str:
        """ "<record id> — <label>", plain text (the map sets it as text, not HTML)."""
        label = " ".join(self.label.split())
        if len(label) > LABEL_WIDTH:
            label = label[: LABEL_WIDTH - 1] + "…"
        return " — ".join(part for part in (self.id, label) if part)


def picked(points: Sequence[Any], limit: int | None = None) -> list[Any]:
    """At most ``limit`` (``MAX_POINTS``) of ``points``, evenly picked, in their order."""
    limit = MAX_POINTS if limit is None else limit
    if len(points) <= limit:
        return list(points)
    stride = len(points) / limit
    return [points[int(i * stride)] for i in range(limit)]


@functools.cache
def _static(name: str) -> str:
    text = resources.files("lib").joinpath("static", name).read_text(encoding="utf-8")
    # the source maps are not shipped: no request for them from the browser's devtools
    return re.sub(r"\n?//# sourceMappingURL=\S+\s*$", "\n", text)


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "<", ">" or "&" (so no "</script>"), ASCII
    only (a lone surrogate in a label cannot break the report's UTF-8)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById("%(data_id)s").textContent);
  var map = L.map("map", {worldCopyJump: true});
  var tiles = L.tileLayer(data.tiles, {maxZoom: 19, attribution: data.attribution});
  tiles.once("tileerror", function () {
    map.attributionControl.addAttribution("map tiles could not load (offline?)");
  });
  tiles.addTo(map);
  L.control.scale().addTo(map);
  var style = {radius: data.radius, color: "#ffffff", weight: 1, opacity: 0.9,
               fillColor: data.color, fillOpacity: 0.85};
  var markers = data.points.map(function (p) {
    var marker = L.circleMarker([p[0], p[1]], style);
    if (p[2]) {
      marker.bindPopup(function () {
        var div = document.createElement("div");
        div.textContent = p[2];  // text, never HTML
        return div;
      });
    }
    return marker;
  });
  var group = data.cluster
    ? L.markerClusterGroup({chunkedLoading: true, showCoverageOnHover: false,
                            maxClusterRadius: 50})
    : L.featureGroup();
  if (data.cluster) { group.addLayers(markers); }
  else { markers.forEach(function (m) { group.addLayer(m); }); }
  group.addTo(map);
  var bounds = markers.length
    ? L.latLngBounds(data.points.map(function (p) { return [p[0], p[1]]; })) : null;
  var touched = false;  // once the viewer pans, zooms or clicks, the view is theirs
  ["mousedown", "wheel", "touchstart", "keydown"].forEach(function (name) {
    map.getContainer().addEventListener(name, function () { touched = true; });
  });
  function fit() {
    if (bounds) { map.fitBounds(bounds, {padding: [24, 24], maxZoom: 16}); }
    else { map.setView([0, 0], 1); }
  }
  fit();
  // a page may lay the iframe out after its script ran (0x0: the fit was for no size):
  // fit again whenever it is resized, until the viewer has moved the map
  function refit() { if (!touched) { map.invalidateSize(false); fit(); } }
  window.addEventListener("resize", refit);
  // and when the map's own box first gets (or changes) its size, with no window resize: a
  // notebook's output area laid out late, a report trusted in Lab after it was opened
  var size = "";
  function sized() {
    var box = map.getContainer(), now = box.clientWidth + "x" + box.clientHeight;
    if (now !== size && box.clientWidth > 0 && box.clientHeight > 0) { size = now; refit(); }
  }
  if (window.ResizeObserver) { new ResizeObserver(sized).observe(map.getContainer()); }
  // and a look every 250 ms for the first 30 s, where no layout frame reports it
  var looks = 0, poll = setInterval(function () {
    sized();
    if (touched || ++looks >= 120) { clearInterval(poll); }
  }, 250);
  window.knackMap = {map: map, markers: markers, group: group};  // for a test, a debugger
})();
"""


def map_document(
    points: Sequence[Point], *, title: str = "map", tiles: str = TILES, cluster: bool | None = None
) -> str:
    """A whole HTML page with the map of ``points`` (at most ``MAX_POINTS``, evenly picked),
    Leaflet inlined; ``cluster`` (default: above ``CLUSTER_ABOVE`` points)."""
    points = picked(points)
    if cluster is None:
        cluster = len(points) > CLUSTER_ABOVE
    data = {
        "tiles": tiles,
        "attribution": ATTRIBUTION,
        "cluster": cluster,
        "color": POINT_COLOR,
        "radius": 5 if len(points) <= 1_000 else 4,
        "points": [[round(p.lat, 6), round(p.lon, 6), Point(*p).popup] for p in points],
    }
    css = "\n".join(_static(name) for name in STATIC if name.endswith(".css"))
    js = "\n".join(_static(name) for name in STATIC if name.endswith(".js"))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{css}\nhtml, body, #map {{ height: 100%; margin: 0; }}\n"
        ".leaflet-container { background: #d4d4d4; }</style>"
        f"<script>{js}</script></head><body><div id='map'></div>"
        f"<script type='application/json' id='{DATA_ID}'>{_script_json(data)}</script>"
        f"<script>{_SCRIPT % {'data_id': DATA_ID}}</script></body></html>"
    )


def map_html(
    points: Sequence[Point], caption: str, *, height: int = HEIGHT, tiles: str = TILES
) -> str:
    """The map in an ``<iframe srcdoc>`` with ``caption`` (text) under it: a notebook
    output's text/html. Behind the iframe, what an untrusted notebook shows instead."""
    shown = min(len(points), MAX_POINTS)
    label = f"map of {shown:,} points"
    doc = map_document(points, title=label, tiles=tiles)
    return (
        "<div class='knack-map' style='width:100%;max-width:960px'>"
        f"<div style='position:relative;width:100%;height:{height}px'>"
        f"<span style='color:#565656'>{html.escape(UNTRUSTED)}</span>"
        f'<iframe title="{label}" aria-label="{label}" srcdoc="{html.escape(doc, quote=True)}" '
        'sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox" '
        "style='position:absolute;left:0;top:0;width:100%;height:100%;"
        "border:1px solid #ccc;box-sizing:border-box' allowfullscreen></iframe></div>"
        f"<p>{html.escape(caption)}</p></div>"
    )


class PointsMap:
    """Points that render as a map with a caption in a notebook (text/html), the caption
    alone as text/plain."""

    def __init__(self, points: Sequence[Point | tuple[float, float]], caption: str) -> None:
        self.points = [Point(*p) for p in points]
        self.caption = clean(caption)  # it may name a layer

    def __repr__(self) -> str:
        return self.caption

    def _repr_html_(self) -> str:
        return map_html(self.points, self.caption)
