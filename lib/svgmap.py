"""Points on a plain SVG map: no tiles, no network, no plotting library (matplotlib's
import cost a run ~0.6-0.9 s)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

MAX_POINTS = 5_000  # points drawn on the map (evenly picked): a bigger SVG slows a browser
POINT_COLOR = "#1f5f99"


def scatter_svg(
    points: Sequence[tuple[float, float]], *, width: int = 480, max_height: int = 480
) -> str:
    """(lon, lat) points as an SVG scatter, x and y to one scale at the points' mean
    latitude (an equirectangular view), with the extent labelled: no tiles, no network."""
    if len(points) > MAX_POINTS:
        stride = len(points) / MAX_POINTS
        points = [points[int(i * stride)] for i in range(MAX_POINTS)]
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    pad = 0.05
    lon_lo, lon_hi = _span(min(lons), max(lons), pad)
    lat_lo, lat_hi = _span(min(lats), max(lats), pad)
    squeeze = max(math.cos(math.radians((lat_lo + lat_hi) / 2)), 0.05)
    ratio = (lat_hi - lat_lo) / ((lon_hi - lon_lo) * squeeze)
    margin = 40
    plot_w = width - 2 * margin
    plot_h = min(max_height - 2 * margin, max(plot_w * ratio, 80))
    scale_x = plot_w / (lon_hi - lon_lo)
    scale_y = plot_h / (lat_hi - lat_lo)
    height = plot_h + 2 * margin
    radius = 3 if len(points) <= 500 else 2
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height:.0f}' "
        f"role='img' aria-label='map of {len(points)} points' "
        "style='font: 11px sans-serif'>",
        f"<rect x='{margin}' y='{margin}' width='{plot_w}' height='{plot_h:.1f}' "
        "fill='#f7f7f4' stroke='#ccc'/>",
    ]
    for lon, lat in points:
        x = margin + (lon - lon_lo) * scale_x
        y = margin + (lat_hi - lat) * scale_y
        parts.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{radius}' fill='{POINT_COLOR}' "
            "fill-opacity='0.6'/>"
        )
    parts += [
        f"<text x='{margin}' y='{margin - 6}'>{_lat(lat_hi)}, {_lon(lon_lo)}</text>",
        f"<text x='{width - margin}' y='{height - margin + 14:.1f}' text-anchor='end'>"
        f"{_lat(lat_lo)}, {_lon(lon_hi)}</text>",
        f"<text x='{margin}' y='{height - margin + 14:.1f}' fill='#666'>longitude →, "
        "latitude ↑ (WGS 84)</text></svg>",
    ]
    return "".join(parts)


def _lat(value: float) -> str:
    return f"{abs(value):.4f}°{'N' if value >= 0 else 'S'}"


def _lon(value: float) -> str:
    return f"{abs(value):.4f}°{'E' if value >= 0 else 'W'}"


def _span(lo: float, hi: float, pad: float) -> tuple[float, float]:
    width = max(hi - lo, 0.01)  # one point, or all at one place: a small square around it
    middle = (lo + hi) / 2
    return middle - width * (0.5 + pad), middle + width * (0.5 + pad)


class PointsMap:
    """(lon, lat) points that render as an SVG map with a caption in a notebook."""

    def __init__(self, points: Sequence[tuple[float, float]], caption: str) -> None:
        self.points, self.caption = list(points), caption

    def __repr__(self) -> str:
        return self.caption

    def _repr_html_(self) -> str:
        return f"{scatter_svg(self.points)}<p>{html.escape(self.caption)}</p>"
