"""The explore report as a whole: its overview, its sample rows and the result that holds
every part (``Exploration``), read by ``explore_container``."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lib import snapshot
from lib.clients.s3_records import escape_surrogates
from lib.explore.columns import ColumnsTable, column_infos
from lib.explore.points import PointMap, location_columns, point_map
from lib.explore.timeline import TimeCounts, modified_counts
from lib.jobs import context, registry
from lib.jobs.result import ContainerResult
from lib.table import Table
from lib.text import md, plain, value_text

logger = logging.getLogger(__name__)

JOB = "explore_container"
SAMPLE_ROWS = 5  # rows in the sample
SAMPLE_COLUMNS = 8  # field columns in the sample, besides id and the modified date
TEXT_WIDTH = 40  # characters of a value shown in the sample


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
    return value_text(escape_surrogates(str(value)), TEXT_WIDTH)  # rich text as its text


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


@dataclass(kw_only=True)
class Exploration(ContainerResult):
    """What ``explore_container`` read, each part ready to show itself."""

    url: str
    frame: pd.DataFrame  # lib.snapshot.read_frame's: id, then the typed field columns
    columns: ColumnsTable
    modified: TimeCounts
    map: PointMap
    sample: pd.DataFrame
    timezone: str
    stale: bool = False

    STATS: ClassVar[tuple[str, ...]] = ("seconds",)

    @property
    def records(self) -> int:
        return len(self.frame)

    def sample_table(self) -> Table:
        """The sample as every report's tables show (``lib.table.Table``: no index column,
        blanks empty); ``sample`` keeps it as a DataFrame."""
        rows = self.sample.to_dict("records")
        return Table(rows, [str(c) for c in self.sample.columns])

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

    def details(self) -> dict[str, Any]:
        return {
            "snapshot": self.url,
            "records": self.records,
            "columns": len(self.columns.columns),
            "modified_date_field": self.modified.field,
            "located": self.map.located,
            "points": len(self.map.points),
            "stale": self.stale,
        }


def explore_container(*, app_name: str, container: str, env: str) -> Exploration:
    """Read the container's snapshot and describe it; ``SnapshotError`` (saying what to
    run) when there is none or it cannot be read."""
    run = context.start(JOB, app_name=app_name, env=env, container=container)
    cfg, store = run.cfg, run.store
    assert cfg is not None  # started with a container
    url = store.url(snapshot.snapshot_key(store, container))
    table, stale = snapshot.read_current(store, container)  # marked stale before or after
    spec = snapshot.Spec.from_schema(table.schema)
    if spec is None:  # read_table checks it; kept for the type checker
        raise snapshot.SnapshotError(f"{url} holds no column description")
    frame = snapshot.to_frame(table.drop_columns(["record"]))
    columns = column_infos(table, spec, frame)
    modified = modified_counts(frame, spec, cfg.modified_date_field)
    # the destinations' location fields first (each destination's settings may name one)
    preferred = [
        getattr(getattr(cfg, key), "location_field", None) for key in registry.destinations()
    ]
    keys = location_columns(spec, preferred)
    records = table.column("record").to_pylist() if keys else [""] * table.num_rows
    result = Exploration(
        app_name=app_name,
        env=run.env,
        container=container,
        url=url,
        frame=frame,
        columns=columns,
        modified=modified,
        map=point_map(records, spec, keys),
        sample=sample(frame, columns, modified),
        timezone=spec.timezone,
        stale=stale,
        seconds=run.elapsed(),
    )
    logger.info("%s: %d records, %d columns", url, result.records, len(columns.columns))
    return result
