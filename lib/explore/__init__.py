"""A container's snapshot for analysts (``explore_container`` notebook).

Reads ``s3://<bucket>/_snapshots/<app>-<env>/<container>.parquet`` (``lib.snapshot``) once
and describes it: how many records, each column with its type and how often it is filled
(``columns``), the records' modified dates over time (``timeline``), a map of a location
(address) field's points (``points``) and a few sample rows (``report``, which holds the
whole). Every part is a small object that renders itself (``_repr_html_``, with a
plain-text ``__repr__``), so each notebook cell is one expression; the charts are SVG made
here (no matplotlib import, ~0.6 s a run) and the map is ``lib.maps``' (Leaflet, inlined:
its tiles load in the viewer's browser, its points show without them).

Nothing is fetched from Knack and nothing is written.
"""

from lib.explore.columns import ColumnInfo, ColumnsTable, column_infos, filled_count
from lib.explore.points import PointMap, location_columns, point_map
from lib.explore.report import Exploration, Overview, explore_container, sample
from lib.explore.timeline import TimeCounts, column_chart, modified_counts

__all__ = [
    "ColumnInfo",
    "ColumnsTable",
    "Exploration",
    "Overview",
    "PointMap",
    "TimeCounts",
    "column_chart",
    "column_infos",
    "explore_container",
    "filled_count",
    "location_columns",
    "modified_counts",
    "point_map",
    "sample",
]
