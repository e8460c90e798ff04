"""A container's snapshot for analysts (``explore_container`` notebook).

Reads ``s3://<bucket>/_snapshots/<app>-<env>/<container>.parquet`` (``lib.snapshot``) once
and describes it: how many records, each column with its type and how often it is filled,
the records' modified dates over time, a map of a location (address) field's points and a
few sample rows. Every part is a small object that renders itself (``_repr_html_``, with a
plain-text ``__repr__``), so each notebook cell is one expression; the charts are SVG made
here (no matplotlib import, ~0.6 s a run) and the map is ``lib.maps``' (Leaflet, inlined:
its tiles load in the viewer's browser, its points show without them).

Nothing is fetched from Knack and nothing is written.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lib import config, maps, snapshot
from lib.clients.s3 import Store, escape_surrogates
from lib.publish.records import coordinates
from lib.text import md, plain

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 5  # rows in the sample
SAMPLE_COLUMNS = 8  # field columns in the sample, besides id and the modified date
TEXT_WIDTH = 40  # characters of a value shown in the sample
MAX_MONTHS = 60  # a longer span of modified dates is counted per year, not per month
BAR_COLOR = "#8fb5de"  # the colour of lib.table's bars
LOCATION_TYPE = "address"  # the Knack field type that holds latitude/longitude
LABEL_TYPES = ("short_text", "name")  # the first such column labels the map's points


# --- columns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    """One column of the snapshot: its field, its types and how often it is filled."""

    name: str  # the column's name (the label rule)
    key: str  # the Knack field key, field_N
    knack_type: str  # the Knack field type
    dtype: str  # the column's type in the snapshot: float64, bool, timestamp[...], string
    filled: int  # rows with a value (not null; for text: not blank)
    rows: int

    @property
    def share(self) -> float:
        return self.filled / self.rows if self.rows else 0.0

    @property
    def percent(self) -> str:
        return _percent(self.filled, self.rows)


@dataclass
class ColumnsTable:
    """Every field column of the snapshot, in its order."""

    columns: list[ColumnInfo]
    rows: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "column": c.name,
                    "field": c.key,
                    "knack type": c.knack_type,
                    "type": c.dtype,
                    "filled": c.filled,
                    "filled %": round(100 * c.share, 1),
                }
                for c in self.columns
            ],
            columns=["column", "field", "knack type", "type", "filled", "filled %"],
        )

    def __getitem__(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name or c.key == name:
                return c
        raise KeyError(name)

    def __repr__(self) -> str:
        if not self.columns:
            return "no field columns"
        return self.to_frame().to_string(index=False)

    def _repr_html_(self) -> str:
        if not self.columns:
            return "<p>The snapshot has no field columns.</p>"
        head = "".join(
            f"<th>{h}</th>"
            for h in ("column", "field", "Knack type", "type", "filled", "", "of rows")
        )
        body = "".join(
            "<tr>"
            f"<td><code>{_e(c.name)}</code></td><td>{_e(c.key)}</td><td>{_e(c.knack_type)}</td>"
            f"<td>{_e(c.dtype)}</td><td style='text-align:right'>{c.filled:,}</td>"
            f"<td style='text-align:right'>{_e(c.percent)}</td><td>{_bar(c.share)}</td>"
            "</tr>"
            for c in self.columns
        )
        return (
            f"<table><caption>{len(self.columns)} field columns, {self.rows:,} rows "
            "(filled: not empty; text: not blank)</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def column_infos(table: pa.Table, spec: snapshot.Spec, frame: pd.DataFrame) -> ColumnsTable:
    rows = len(frame)
    infos = [
        ColumnInfo(
            c.name,
            c.key,
            c.type,
            _dtype(table.schema.field(c.name).type),
            filled_count(frame[c.name]),
            rows,
        )
        for c in spec.columns
        if c.name in frame.columns
    ]
    return ColumnsTable(infos, rows)


def filled_count(values: pd.Series) -> int:
    """Values that are there: not null, and for text not blank."""
    present = values.notna()
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
        present &= values.astype("string").str.strip().fillna("").ne("")
    return int(present.sum())


def _dtype(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return f"timestamp ({arrow_type.tz})" if arrow_type.tz else "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_floating(arrow_type):
        return f"float{arrow_type.bit_width}"
    return "string" if pa.types.is_string(arrow_type) else str(arrow_type)


# --- modified dates over time -----------------------------------------------------------


@dataclass
class TimeCounts:
    """Records per month (or year) of the container's modified date, in the app's time."""

    field: str | None  # the modified_date_field in params (None: it has none)
    column: str | None = None  # its column in the snapshot
    timezone: str = ""
    unit: str = "month"  # or "year"
    periods: list[tuple[str, int]] = field(default_factory=list)  # ("2026-03", n), in order
    missing: int = 0  # records without a modified date
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    note: str = ""  # why there is no chart

    @property
    def dated(self) -> int:
        return sum(n for _, n in self.periods)

    def counts(self) -> dict[str, int]:
        return dict(self.periods)

    def describe(self) -> str:
        if self.note:
            return self.note
        span = f"from {_day(self.first)} to {_day(self.last)}" if self.first is not None else ""
        text = (
            f"{self.dated:,} records by {self.column} ({self.field}) per {self.unit}, "
            f"{span} ({self.timezone} time)"
        )
        return text + (f"; {self.missing:,} without a date" if self.missing else "")

    def __repr__(self) -> str:
        lines = [self.describe()]
        lines += [f"{label}  {n:>8,}" for label, n in self.periods]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self.note or not self.periods:
            return f"<p>{_e(self.describe())}</p>"
        return f"{column_chart(self.periods, unit=self.unit)}<p>{_e(self.describe())}</p>"


def modified_counts(frame: pd.DataFrame, spec: snapshot.Spec, field_key: str | None) -> TimeCounts:
    """Count the records per month of ``field_key`` (per year beyond MAX_MONTHS months), in
    the timezone the snapshot holds times in (the app's): the machine's own never matters."""
    if not field_key:
        return TimeCounts(
            None, note="The container has no modified_date_field in params: no dates to show."
        )
    column = next((c for c in spec.columns if c.key == field_key), None)
    if column is None or column.name not in frame.columns:
        return TimeCounts(
            field_key,
            note=f"The modified_date_field {field_key} is not a column "
            "of the snapshot (run a full sync if it was added).",
        )
    values = frame[column.name]
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        return TimeCounts(
            field_key,
            column.name,
            note=f"{column.name} ({field_key}) holds {column.type}, not dates.",
        )
    result = TimeCounts(field_key, column.name, timezone=spec.timezone)
    dated = values.dropna()
    result.missing = int(len(values) - len(dated))
    if dated.empty:
        result.note = f"No record has a {column.name} ({field_key})."
        return result
    result.first, result.last = dated.min(), dated.max()
    months = (dated.dt.year * 12 + dated.dt.month - 1).astype(int)
    lo, hi = int(months.min()), int(months.max())
    if hi - lo + 1 > MAX_MONTHS:
        result.unit = "year"
        years = dated.dt.year.astype(int).value_counts()
        result.periods = [
            (str(y), int(years.get(y, 0)))
            for y in range(int(years.index.min()), int(years.index.max()) + 1)
        ]
    else:
        per = months.value_counts()
        result.periods = [
            (f"{m // 12:04d}-{m % 12 + 1:02d}", int(per.get(m, 0))) for m in range(lo, hi + 1)
        ]
    return result


def column_chart(
    periods: Sequence[tuple[str, int]], *, unit: str, width: int = 640, height: int = 180
) -> str:
    """Counts per period as an SVG column chart; each column's tooltip says its count."""
    left, right, top, bottom = 44, 28, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((n for _, n in periods), default=0) or 1
    step = plot_w / max(len(periods), 1)
    every = max(1, math.ceil(len(periods) / 12))  # at most ~12 labels under the columns
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='records per {unit}' style='font: 11px sans-serif'>"
    ]
    for frac in (0, 0.5, 1):  # the y axis: 0, half and the peak
        y = top + plot_h * (1 - frac)
        parts.append(
            f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#ddd'/>"
        )
        parts.append(
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end'>{round(peak * frac):,}</text>"
        )
    for i, (label, n) in enumerate(periods):
        h = plot_h * n / peak
        x = left + i * step
        parts.append(
            f"<rect x='{x + step * 0.1:.1f}' y='{top + plot_h - h:.1f}' "
            f"width='{max(step * 0.8, 1):.1f}' height='{h:.1f}' fill='{BAR_COLOR}'>"
            f"<title>{_e(label)}: {n:,} records</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f"<text x='{x + step / 2:.1f}' y='{height - bottom + 14}' "
                f"text-anchor='middle'>{_e(label)}</text>"
            )
    parts.append(
        f"<text x='{left + plot_w / 2:.1f}' y='{height - 4}' text-anchor='middle' "
        f"fill='#666'>records per {unit}</text></svg>"
    )
    return "".join(parts)


# --- the map -----------------------------------------------------------------------------


@dataclass
class PointMap:
    """The points of one location (address) field, from the records' raw latitude and
    longitude (``field_N_raw``); a record with several (a list) gives several points."""

    field: str | None  # the field key mapped (None: no field has coordinates)
    column: str | None = None
    points: list[maps.Point] = field(default_factory=list)  # lon, lat, record id, label
    located: int = 0  # records with at least one point
    rows: int = 0
    others: dict[str, int] = field(default_factory=dict)  # other address columns -> located
    note: str = ""

    @property
    def unlocated(self) -> int:
        return self.rows - self.located

    def describe(self) -> str:
        if self.note:
            return self.note
        text = (
            f"{len(self.points):,} points of {self.column} ({self.field}) from "
            f"{self.located:,} of {self.rows:,} records; {self.unlocated:,} without "
            "coordinates"
        )
        if len(self.points) > maps.MAX_POINTS:
            text += f"; {maps.MAX_POINTS:,} of them drawn, evenly picked"
        if self.others:
            text += ". Other address columns with coordinates: " + ", ".join(
                f"{name} ({n:,} records)" for name, n in self.others.items()
            )
        return text

    def __repr__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        if not self.points:
            return f"<p>{_e(self.describe())}</p>"
        return maps.map_html(self.points, escape_surrogates(self.describe()))


def location_columns(spec: snapshot.Spec, preferred: Iterable[str | None] = ()) -> list[str]:
    """The keys of the snapshot's address fields, the ``preferred`` ones (params'
    ``location_field``\\ s) first."""
    keys = [c.key for c in spec.columns if c.type == LOCATION_TYPE]
    first = [k for k in dict.fromkeys(preferred) if k in keys]
    return first + [k for k in keys if k not in first]


def point_map(records: Sequence[str], spec: snapshot.Spec, keys: Sequence[str]) -> PointMap:
    """Map the first of ``keys`` whose raw values hold coordinates; count the others. A
    point's popup has its record's id and the record's first text (``LABEL_TYPES``) value."""
    names = {c.key: c.name for c in spec.columns}
    label_key = next((c.key for c in spec.columns if c.type in LABEL_TYPES), None)
    rows = len(records)
    if not keys:
        return PointMap(
            None, rows=rows, note="The container has no location (address) field: no map."
        )
    per_key: dict[str, list[list[tuple[float, float]]]] = {k: [] for k in keys}
    ids: list[tuple[str, str]] = []  # per record: its id and label
    for text in records:
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        ids.append((_text(raw.get("id")), _label(raw, label_key)))
        for k in keys:
            per_key[k].append(coordinates(raw.get(f"{k}_raw")))
    chosen = next((k for k in keys if any(per_key[k])), None)
    if chosen is None:
        listed = ", ".join(f"{names[k]} ({k})" for k in keys)
        return PointMap(
            None,
            rows=rows,
            note=f"No record has coordinates in its address fields ({listed}): no map.",
        )
    found = per_key[chosen]
    others = {names[k]: sum(1 for p in per_key[k] if p) for k in keys if k != chosen}
    return PointMap(
        chosen,
        names[chosen],
        [maps.Point(lon, lat, *ids[i]) for i, pts in enumerate(found) for lon, lat in pts],
        located=sum(1 for p in found if p),
        rows=rows,
        others={n: c for n, c in others.items() if c},
    )


def _label(raw: dict[str, Any], key: str | None) -> str:
    """A record's text value of ``key`` (raw, else Knack's formatted), "" when none."""
    if key is None:
        return ""
    for value in (raw.get(f"{key}_raw"), raw.get(key)):
        if isinstance(value, str) and value.strip():
            return escape_surrogates(value.strip())
    return ""


def _text(value: Any) -> str:
    return escape_surrogates(str(value)) if value not in (None, "") else ""


# --- the sample --------------------------------------------------------------------------


def sample(
    frame: pd.DataFrame, columns: ColumnsTable, modified: TimeCounts, rows: int = SAMPLE_ROWS
) -> pd.DataFrame:
    """A few rows, newest modified first (else by id), as text: id, the modified date, then
    the fullest columns (in their order); blanks are empty, never NaN."""
    if frame.empty:
        return pd.DataFrame(columns=["id"])
    picked = [
        c.name
        for c in sorted(
            (c for c in columns.columns if c.filled and c.name != modified.column),
            key=lambda c: -c.share,
        )[:SAMPLE_COLUMNS]
    ]
    order = [c.name for c in columns.columns if c.name in picked]
    names = ["id"] + ([modified.column] if modified.column and not modified.note else []) + order
    if modified.column and not modified.note:
        part = frame.sort_values(
            [modified.column, "id"], ascending=[False, True], na_position="last"
        )
    else:
        part = frame.sort_values("id")
    part = part.head(rows)[names]
    return pd.DataFrame({n: [_cell(v) for v in part[n]] for n in names}).reset_index(drop=True)


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return ""
        return f"{value:.0f}" if value.is_integer() else f"{value:.2f}".rstrip("0")
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    text = escape_surrogates(" ".join(str(value).split()))
    return text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"


# --- the whole -------------------------------------------------------------------------


@dataclass
class Overview:
    """The first lines of the report: what was read, how many records."""

    app_name: str
    env: str
    container: str
    url: str
    records: int
    columns: int
    timezone: str
    stale: bool

    def _repr_markdown_(self) -> str:
        text = (
            f"**{self.records:,} records** of `{self.container}` ({md(self.app_name)}-{self.env}) "
            f"in `{self.url}`: `id`, `record` (the raw JSON) and {self.columns} field "
            f"columns; times in {md(self.timezone)}."
        )
        if self.stale:
            text += (
                "\n\n**The snapshot is marked stale**: a sync of this container is "
                "running, did not finish, or ran at the same time as another, so it may not "
                "hold every stored record or their latest versions. "
                f"Rerun knack_container_to_s3 for {self.container}."
            )
        return text

    def __repr__(self) -> str:
        return plain(self._repr_markdown_())


@dataclass
class Exploration:
    app_name: str
    env: str
    container: str
    url: str
    frame: pd.DataFrame  # lib.snapshot.read_frame's: id, then the typed field columns
    columns: ColumnsTable
    modified: TimeCounts
    map: PointMap
    sample: pd.DataFrame
    timezone: str
    stale: bool = False
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return len(self.frame)

    @property
    def overview(self) -> Overview:
        return Overview(
            self.app_name,
            self.env,
            self.container,
            self.url,
            self.records,
            len(self.columns.columns),
            self.timezone,
            self.stale,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "container": self.container,
            "snapshot": self.url,
            "records": self.records,
            "columns": len(self.columns.columns),
            "modified_date_field": self.modified.field,
            "located": self.map.located,
            "points": len(self.map.points),
            "stale": self.stale,
            "errors": 0,
            "seconds": round(self.seconds, 2),
        }


def explore_container(*, app_name: str, container: str, env: str) -> Exploration:
    """Read the container's snapshot and describe it; ``SnapshotError`` (saying what to
    run) when there is none or it cannot be read."""
    started = time.monotonic()
    env = config.check_env(env)
    cfg = config.load_app(app_name).container(container)
    store = Store(app_name=app_name, env=env)
    url = store.url(snapshot.snapshot_key(store, container))
    table, stale = snapshot.read_current(store, container)  # marked stale before or after
    spec = snapshot.Spec.from_schema(table.schema)
    if spec is None:  # read_table checks it; kept for the type checker
        raise snapshot.SnapshotError(f"{url} holds no column description")
    frame = snapshot.to_frame(table.drop_columns(["record"]))
    columns = column_infos(table, spec, frame)
    modified = modified_counts(frame, spec, cfg.modified_date_field)
    preferred = [d.location_field for d in (cfg.socrata, cfg.agol) if d is not None]
    keys = location_columns(spec, preferred)
    records = table.column("record").to_pylist() if keys else [""] * table.num_rows
    located = point_map(records, spec, keys)
    result = Exploration(
        app_name,
        env,
        container,
        url,
        frame,
        columns,
        modified,
        located,
        sample(frame, columns, modified),
        spec.timezone,
        stale=stale,
    )
    result.seconds = time.monotonic() - started
    logger.info("%s: %d records, %d columns", url, result.records, len(columns.columns))
    return result


# --- helpers -----------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(escape_surrogates(str(value)), quote=True)


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    share = 100 * part / whole
    if 0 < share < 1:
        return "<1%"
    if 99 < share < 100:
        return ">99%"
    return f"{share:.0f}%"


def _bar(share: float, width: int = 120) -> str:
    return (
        f"<div style='width:{width}px;background:#eee;height:0.8em'>"
        f"<div style='width:{share * width:.0f}px;background:{BAR_COLOR};height:100%'>"
        "</div></div>"
    )


def _day(when: pd.Timestamp | None) -> str:
    return when.strftime("%Y-%m-%d") if when is not None else ""
