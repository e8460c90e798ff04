"""Which Knack field fills which column of a destination: the binding rule, pure (no I/O).

A destination's column is bound to a Knack field *key*, not to its label, so a renamed
label keeps filling the column it filled. The publishers (``lib.publish``), ``knack-nb
check`` (``lib.check``) and the ``upload_metadata`` report (``lib.metadata``) all compute
one :class:`Plan` from the same inputs: the container's fields, the destination's columns
(name → type), the bindings the last successful publish stored (``lib.state.bindings``) and
params' ``fields`` (column → field key, pinned) and ``retired_columns``. For each column:

- **retired**: in ``retired_columns``: never sent (existing rows and features keep their
  values), never bound again;
- **bound**: pinned in params, else its stored binding, else (a column no binding holds
  yet) the field whose name by the column-name rule (``lib.records``) is the column's: on
  a first publish that binds each column the label rule fills. **renamed (followed)**:
  bound to a field whose label changed since the last publish (the report says so);
- **would blank (fails)**: its bound field is gone from the container (removed, or no
  longer in the view) or was retyped to a type the column cannot take (a date in a number
  column; text types may hold anything, their values are checked when published), or a
  pin names a field or a column that does not exist: the publish fails before any write;
- **not filled**: no field fills it (no binding, no field of its name): left as it is.

A field of the container that fills no column is **new (not published)**, listed with the
column to add (Socrata field name and type, or ArcGIS field name and esri type).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from lib import schema
from lib.bindings.destination import Destination
from lib.records import RESERVED, Collision, name_fields
from lib.table import Table

BOUND = "bound"
RENAMED = "renamed (followed)"
WOULD_BLANK = "would blank (fails)"
NEW = "new (not published)"
RETIRED = "retired"
NOT_FILLED = "not filled"
NOT_PUBLISHED = "not published yet"  # no stored bindings (upload_metadata's table)


@dataclass(frozen=True)
class Field:
    """One field of a container, as the plan sees it."""

    key: str  # field_N
    label: str
    type: str  # its Knack type
    name: str  # its column name by the column-name rule (the publishers' value names)
    passed_over: tuple[str, ...] = ()  # names the rule gave earlier fields instead


@dataclass(frozen=True)
class Binding:
    """What fills a column: a field key, with the label and type it had when last published."""

    field: str
    label: str
    type: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "label": self.label, "type": self.type}

    @classmethod
    def from_json(cls, value: Any) -> Binding:
        """A stored binding; ValueError when it is not one."""
        if not isinstance(value, dict) or not all(
            isinstance(value.get(k), str) for k in ("field", "label", "type")
        ):
            raise ValueError(f"not a binding: {value!r}"[:200])
        return cls(value["field"], value["label"], value["type"])


def container_fields(metadata: dict[str, Any], container: str) -> dict[str, Field]:
    """Field key → :class:`Field` of the fields a container's records hold: the object's
    fields, or, for a view that lists its columns, those it shows. Names come from the
    column-name rule over the whole object, so they are the same for an object and its views."""
    defs = schema.container_fields(metadata, container)
    named = name_fields({k: f.get("name") or k for k, f in defs.items()})
    shown = view_fields(metadata, container)
    return {
        key: Field(key, n.label, str(defs[key].get("type") or ""), n.name, n.passed_over)
        for key, n in named.items()
        if shown is None or key in shown
    }


def view_fields(metadata: dict[str, Any], container: str) -> set[str] | None:
    """The field keys a view shows (its columns of type field), or None: an object, or a
    view whose metadata lists no field column (then all the object's fields count)."""
    if not container.startswith("view_"):
        return None
    for scene in metadata.get("scenes") or []:
        for view in (scene or {}).get("views") or []:
            if isinstance(view, dict) and view.get("key") == container:
                keys = {
                    (c.get("field") or {}).get("key")
                    for c in view.get("columns") or []
                    if isinstance(c, dict) and isinstance(c.get("field"), dict)
                }
                keys.discard(None)
                return keys or None
    return None


@dataclass(frozen=True)
class Row:
    """One line of a plan: a column and its status, or a new field and the column to add."""

    column: str
    status: str
    field: str = ""  # the Knack field key
    label: str = ""  # its label now (or, for a field gone, its last label)
    note: str = ""
    column_type: str = ""  # the destination's type of the column (to add, for a new field)
    pinned: bool = False

    @property
    def fills(self) -> bool:
        return self.status in (BOUND, RENAMED)


@dataclass
class Plan:
    """The binding rule applied to one container and destination (see the module)."""

    destination: Destination
    container: str
    rows: list[Row]
    fields: dict[str, Field]
    columns: dict[str, str]  # the destination's columns (folded names) -> type
    collisions: list[Collision] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # column -> why it fails
    params_file: str = "params"  # named in messages

    @property
    def fill(self) -> dict[str, Field]:
        """Column → the field that fills it: what a publish sends."""
        return {r.column: self.fields[r.field] for r in self.rows if r.fills}

    @property
    def new(self) -> list[Row]:
        return [r for r in self.rows if r.status == NEW]

    @property
    def fails(self) -> bool:
        return bool(self.problems or self.collisions)

    def failures(self) -> list[str]:
        """Why the publish must fail before any write, one message per column."""
        out = list(self.problems.values())
        return out + [c.message(self.destination.what) for c in self.collisions]

    def renames(self) -> list[str]:
        """A note per renamed field that still fills its column."""
        return [
            f"{r.field} renamed {r.note}: still published as `{r.column}`"
            for r in self.rows
            if r.status == RENAMED
        ]

    def dropped(self) -> dict[str, str]:
        """The new fields by their name (the publish's ``dropped_fields``) and why."""
        return {
            self.fields[r.field].name: f"not a {self.destination.word} of the "
            f"{_THING.get(self.destination.kind, 'dataset')}: add "
            f"{self.destination.word} `{r.column}` ({r.column_type}) to publish it"
            for r in self.new
        }

    def bindings(self) -> dict[str, Binding]:
        """What to store after a successful publish: each filled column's field, with its
        label and type now."""
        return {
            r.column: Binding(r.field, self.fields[r.field].label, self.fields[r.field].type)
            for r in self.rows
            if r.fills
        }

    def table_rows(self) -> list[dict[str, Any]]:
        where = self.destination.what
        return [
            {
                "container": self.container,
                "destination": where,
                "column": r.column + (f" ({r.column_type})" if r.status == NEW else ""),
                "field": r.field,
                "label": r.label,
                "status": r.status,
                "note": r.note,
            }
            for r in self.rows
        ]


_THING = {"agol": "layer", "postgres": "table"}  # what holds a destination's columns
COLUMNS = ["container", "destination", "column", "field", "label", "status", "note"]


def table(plans: list[Plan], *, caption: str | None = None) -> Table:
    """The plans of one or more destinations as one table (``COLUMNS``)."""
    return Table([row for p in plans for row in p.table_rows()], COLUMNS, caption=caption)


def plan(
    destination: Destination,
    container: str,
    fields: Mapping[str, Field],
    columns: Mapping[str, str],
    stored: Mapping[str, Binding],
    *,
    app_name: str,
) -> Plan:
    """The plan of ``container``'s ``fields`` into a destination with ``columns`` (name →
    type), given the ``stored`` bindings (column → Binding) and the destination's pins and
    retired columns (see the module). ``app_name`` names the params file in messages."""
    d = destination
    params_file = f"{app_name}.yaml"
    cols = {d.fold(c): t for c, t in columns.items() if d.fold(c) not in RESERVED}
    stored = {d.fold(c): b for c, b in stored.items()}
    keys = f"containers.{container}.{d.kind}"
    out = Plan(d, container, [], dict(fields), cols, params_file=params_file)
    labelled = {f.name: f for f in fields.values()}
    fresh: dict[str, Field] = {}  # columns bound by the label rule on this run
    for column, kind in cols.items():
        row = _column(out, column, kind, stored.get(column), labelled, keys)
        out.rows.append(row)
        if row.fills and not row.pinned and column not in stored:
            fresh[column] = fields[row.field]
    for column, key in d.pinned.items():
        if column not in cols:
            out.rows.append(
                Row(
                    column,
                    WOULD_BLANK,
                    key,
                    getattr(fields.get(key), "label", ""),
                    f"pinned in {keys}.fields, but {d.what} has no such {d.word}",
                    pinned=True,
                )
            )
            out.problems[column] = (
                f"{params_file}: {keys}.fields.{column} pins {key} to {d.word} "
                f"{column!r}, which {d.what} lacks: add the {d.word}, or fix the pin"
            )
    for column in d.retired:
        if column not in cols:
            out.rows.append(Row(column, RETIRED, note=f"{d.what} has no such {d.word}"))
    filled = {r.field for r in out.rows if r.fills}
    for key, f in fields.items():
        if key not in filled:
            name = f.name if f.name not in cols else f"{f.name}_{key}"
            out.rows.append(
                Row(name, NEW, key, f.label, "add it to publish the field", d.column_type(f))
            )
    out.collisions = _collisions(fields, fresh, filled)
    return out


def _column(
    out: Plan,
    column: str,
    kind: str,
    binding: Binding | None,
    labelled: Mapping[str, Field],
    keys: str,
) -> Row:
    """The row of one column of the destination (see the module for the rule)."""
    d, fields, params_file = out.destination, out.fields, out.params_file
    if column in d.retired:
        last = binding.label if binding else ""
        return Row(
            column, RETIRED, binding.field if binding else "", last, "left as it is: not sent"
        )
    pinned = d.pinned.get(column)
    if pinned is not None:
        f = fields.get(pinned)
        if f is None:
            out.problems[column] = (
                f"{params_file}: {keys}.fields.{column} is {pinned}, which is not a field of "
                f"{out.container} (its fields: {', '.join(sorted(fields, key=_number))}): "
                "fix the pin"
            )
            return Row(
                column,
                WOULD_BLANK,
                pinned,
                binding.label if binding else "",
                f"pinned in {keys}.fields, not a field of {out.container}",
                pinned=True,
            )
        return _bound(out, column, kind, f, binding, keys, pinned=True)
    if binding is not None:
        f = fields.get(binding.field)
        if f is None:
            out.problems[column] = _blank_message(
                out,
                column,
                binding,
                keys,
                f"is gone from {out.container} (removed, or no longer in the view)",
            )
            return Row(
                column, WOULD_BLANK, binding.field, binding.label, f"gone from {out.container}"
            )
        return _bound(out, column, kind, f, binding, keys)
    f = labelled.get(column)
    if f is None:
        return Row(column, NOT_FILLED, note="no field has this name: left as it is")
    return Row(column, BOUND, f.key, f.label, "by its label")


def _bound(
    out: Plan,
    column: str,
    kind: str,
    f: Field,
    binding: Binding | None,
    keys: str,
    *,
    pinned: bool = False,
) -> Row:
    """The row of a column bound to ``f``: bound, renamed, or would blank when ``f`` was
    retyped (or pinned) to a type the column cannot take."""
    d = out.destination
    retyped = binding is not None and binding.field == f.key and binding.type != f.type
    if (retyped or pinned) and not d.fits(f.type, kind):
        was = f" (was {binding.type})" if retyped and binding else ""
        last = binding if binding is not None and binding.field == f.key else None
        out.problems[column] = _blank_message(
            out,
            column,
            last or Binding(f.key, f.label, f.type),
            keys,
            f"is {f.type} now{was}, which {d.word} {column!r} ({kind}) cannot take",
        )
        return Row(
            column, WOULD_BLANK, f.key, f.label, f"{f.type} cannot fill {kind}", pinned=pinned
        )
    notes = ["pinned in params"] if pinned else []
    if retyped and binding:
        notes.append(f"retyped {binding.type} → {f.type}")
    if binding is not None and binding.field == f.key and binding.label != f.label:
        notes.insert(0, f"{binding.label!r} → {f.label!r}")
        return Row(column, RENAMED, f.key, f.label, "; ".join(notes), pinned=pinned)
    return Row(column, BOUND, f.key, f.label, "; ".join(notes), pinned=pinned)


def _blank_message(out: Plan, column: str, binding: Binding, keys: str, why: str) -> str:
    d = out.destination
    return (
        f"{d.word} {column!r} of {d.what} would go blank: it is bound to {binding.field} "
        f"{binding.label!r}, which {why}. Nothing was written. Bind another field to it in "
        f"{out.params_file} ({keys}.fields: {{{column}: field_N}}), or retire the {d.word} "
        f"({keys}.retired_columns: [{column}]): it is then left as it is"
    )


def _collisions(
    fields: Mapping[str, Field], fresh: Mapping[str, Field], filled: Collection[str]
) -> list[Collision]:
    """The fields a first binding by label cannot tell apart (``lib.records.Collision``):
    a field that fills no column, while a column it was refused by the column-name rule
    (its name given to an earlier field) is being bound to that earlier field by label."""
    out = []
    for f in sorted(fields.values(), key=lambda f: _number(f.key)):
        if f.key in filled or not f.passed_over:
            continue
        lost_to = [fresh[p] for p in f.passed_over if p in fresh and fresh[p].key != f.key]
        if lost_to:
            holders = tuple((h.key, h.label, h.name) for h in lost_to)
            out.append(Collision(f.key, f.label, f.name, holders))
    return out


def _number(key: str) -> tuple[int, str]:
    number = key.rpartition("_")[2]
    return (int(number), key) if number.isdigit() else (1 << 62, key)
