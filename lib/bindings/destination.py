"""A container's destinations as the binding rule sees them (:class:`Destination`): where
their bindings are kept, their pins and retired columns from params, and which Knack field
types can fill which column (Socrata's column types, ArcGIS's esri field types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lib import config

# Knack field types by what their values can fill (a text column takes any of them)
NUMBERS = frozenset(
    {"number", "currency", "rating", "auto_increment", "equation", "sum", "average", "count"}
    | {"min", "max"}
)
# text that may hold anything (a number, true/false, a date, WKT): its values decide
FREE_TEXT = frozenset(
    {"short_text", "paragraph_text", "rich_text", "concatenation", "equation", "multiple_choice"}
)
FILLS = {
    "text": None,  # any type
    "number": NUMBERS | FREE_TEXT,
    "boolean": frozenset({"boolean"}) | FREE_TEXT,
    "date": frozenset({"date_time"}) | FREE_TEXT,
    "geo": frozenset({"address"}) | FREE_TEXT,
}
SOCRATA_KINDS = {
    **dict.fromkeys(("number", "money", "percent", "double"), "number"),
    "checkbox": "boolean",
    **dict.fromkeys(("calendar_date", "floating_timestamp", "fixed_timestamp", "date"), "date"),
    **dict.fromkeys(("point", "location", "multipoint", "line", "polygon"), "geo"),
    **dict.fromkeys(("multiline", "multipolygon"), "geo"),
}
ESRI_KINDS = {
    **dict.fromkeys(
        (
            "esriFieldTypeSmallInteger",
            "esriFieldTypeInteger",
            "esriFieldTypeBigInteger",
            "esriFieldTypeDouble",
            "esriFieldTypeSingle",
        ),
        "number",
    ),
    **dict.fromkeys(
        ("esriFieldTypeDate", "esriFieldTypeDateOnly", "esriFieldTypeTimestampOffset"), "date"
    ),
}


# PostgreSQL's types of a table's columns (as ``format_type`` names them): the snapshot's
# types (lib/snapshot/spec.py: float64, bool, timestamp in the app's timezone, string)
PG_DOUBLE, PG_BOOLEAN = "double precision", "boolean"
PG_TIMESTAMP, PG_TEXT = "timestamp with time zone", "text"
PG_FLOAT_TYPES = frozenset({"number", "currency", "rating", "auto_increment"})  # the snapshot's


def postgres_type(knack_type: str) -> str:
    """The PostgreSQL type of a column for a field of ``knack_type`` (the snapshot's type)."""
    if knack_type in PG_FLOAT_TYPES:
        return PG_DOUBLE
    return {"boolean": PG_BOOLEAN, "date_time": PG_TIMESTAMP}.get(knack_type, PG_TEXT)


class Typed(Protocol):
    """A field as a new column is made for it: its key and Knack type."""

    key: str
    type: str


@dataclass(frozen=True)
class Destination:
    """One destination of a container and its params: where its bindings are kept
    (``kind``/``id``), how it is named in messages, its pins and retired columns."""

    kind: str  # the params key: "socrata", "agol" or "postgres"
    id: str  # resource id, "<service_id>-<layer_id>", or "<schema>.<table>"
    what: str  # e.g. "Socrata dataset abcd-1234"
    pinned: Mapping[str, str] = field(default_factory=dict)  # column -> field key
    retired: tuple[str, ...] = ()
    location_field: str | None = None

    @classmethod
    def socrata(cls, soc: config.SocrataConfig) -> Destination:
        return cls(
            "socrata",
            soc.resource_id,
            f"Socrata dataset {soc.resource_id}",
            dict(soc.fields),
            tuple(soc.retired_columns),
            soc.location_field,
        )

    @classmethod
    def agol(cls, agol: config.AgolConfig) -> Destination:
        fold = str.lower  # ArcGIS field names are case-insensitive
        return cls(
            "agol",
            f"{agol.service_id}-{agol.layer_id}",
            f"ArcGIS item {agol.service_id} layer {agol.layer_id}",
            {fold(c): k for c, k in agol.fields.items()},
            tuple(fold(c) for c in agol.retired_columns),
            agol.location_field,
        )

    @classmethod
    def postgres(cls, pg: config.PostgresConfig, table: str) -> Destination:
        return cls(
            "postgres",
            f"{pg.db_schema}.{table}",
            f"PostgreSQL table {pg.db_schema}.{table}",
            dict(pg.fields),
            tuple(pg.retired_columns),
        )

    @property
    def word(self) -> str:
        """What the destination calls a column."""
        return "field" if self.kind == "agol" else "column"

    def fold(self, name: str) -> str:
        return name.lower() if self.kind == "agol" else name

    def fits(self, knack_type: str, column_type: str) -> bool:
        """Whether a field of ``knack_type`` can fill a column of ``column_type`` (a
        PostgreSQL column: only a field of its very type, as the snapshot types it)."""
        if self.kind == "postgres":
            return postgres_type(knack_type) == column_type
        kinds = ESRI_KINDS if self.kind == "agol" else SOCRATA_KINDS
        takes = FILLS[kinds.get(column_type, "text")]
        return takes is None or knack_type in takes

    def column_type(self, f: Typed) -> str:
        """The type of the column to add for ``f`` (Socrata's dataTypeName, esri's, or
        PostgreSQL's)."""
        if self.kind == "postgres":
            return postgres_type(f.type)
        numeric = f.type in NUMBERS - {"auto_increment"}
        if self.kind == "agol":
            if f.type == "auto_increment":
                return "esriFieldTypeInteger"
            if numeric:
                return "esriFieldTypeDouble"
            return "esriFieldTypeDate" if f.type == "date_time" else "esriFieldTypeString"
        if f.key == self.location_field and f.type == "address":
            return "point"
        if numeric or f.type == "auto_increment":
            return "number"
        return {"boolean": "checkbox", "date_time": "calendar_date"}.get(f.type, "text")


def destinations(
    cfg: config.ContainerConfig, *, app_name: str = "", container: str = ""
) -> list[Destination]:
    """The destinations a container publishes to, in the order the DAG runs them
    (``app_name`` and ``container`` name a PostgreSQL table by default)."""
    out = []
    if cfg.socrata is not None:
        out.append(Destination.socrata(cfg.socrata))
    if cfg.agol is not None:
        out.append(Destination.agol(cfg.agol))
    if cfg.postgres is not None:
        table = cfg.postgres.table_name(app_name, container)
        out.append(Destination.postgres(cfg.postgres, table))
    return out
