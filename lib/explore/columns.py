"""The snapshot's columns: each field's key, Knack type, type in the snapshot and how often
it is filled, as a table that renders itself."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from lib import snapshot
from lib.explore.render import percent
from lib.table import Table


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
        return percent(self.filled, self.rows)


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

    def table(self) -> Table:
        """The columns as every report's tables show (``lib.table.Table``), the filled
        counts drawn as shares of the rows."""
        return Table(
            (
                {
                    "column": c.name,
                    "field": c.key,
                    "Knack type": c.knack_type,
                    "type": c.dtype,
                    "filled": c.filled,
                    "share": c.percent,
                }
                for c in self.columns
            ),
            ["column", "field", "Knack type", "type", "filled", "share"],
            caption=f"{len(self.columns)} field columns, {self.rows:,} rows "
            "(filled: not empty; text: not blank)",
            bars="filled",
            whole=self.rows,
        )

    def _repr_html_(self) -> str:
        if not self.columns:
            return "<p>The snapshot has no field columns.</p>"
        return self.table()._repr_html_()


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
