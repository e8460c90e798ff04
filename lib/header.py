"""The header every report opens with: status, where it ran, the parameters that ran and
what they meant, duration and the main counts; a failed run's error, once, near the top.

``lib.notebook.start`` shows it ("running") as the first output of the notebook's first
code cell after its parameters, with a display id; ``lib.notebook.finish`` (the run's last
cell) and the error handler (a failing cell) update that same output in place. papermill
and nbclient apply such updates to the saved report, so a report holds its final header.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any

from lib.dates import parse_date
from lib.errors import ConfigError
from lib.jobs import registry
from lib.table import cell_text
from lib.text import clean

RUNNING, OK, FAILED = "running", "ok", "failed"
# the counts a header shows, in this order, when the run's summary has them
COUNT_KEYS = (
    "fetched",
    "read",
    "written",
    "created",
    "updated",
    "added",
    "unchanged",
    "deleted",
    "skipped",
    "kept",
    "failed",
    "rows",
    "records",
    "objects",
    "views",
    "schema_changes",
    "snapshot_rows",
    "errors",
)
_COLORS = {RUNNING: ("#555", "#f4f4f4"), OK: ("#1a7f37", "#eef8f0"), FAILED: ("#c00", "#fee")}
_ICONS = {RUNNING: "…", OK: "✓", FAILED: "✗"}


def meaning(name: str, value: Any, *, notebook: str) -> str:
    """What a parameter's value did, in words ("" when the value says it all)."""
    if name == "date":
        job = registry.find(notebook)  # a notebook of the user's own: as the sync's
        publishes = job is not None and job.publishes
        what = "records written to S3" if publishes else "records modified in Knack"
        if value in (None, 0, "", "0"):
            return "full publish (every stored record)" if publishes else "full run"
        if value == "auto":
            return f"incremental: {what} since the last successful run"
        try:
            parse_date(value)
        except ConfigError:
            return "could not be read as a date: the run stops (see the error)"
        return f"incremental: {what} on or after this"
    if name == "env":
        return {"prod": "production app id", "dev": "development app id"}.get(str(value), "")
    return ""


@dataclass
class Header:
    notebook: str
    params: dict[str, Any]
    status: str = RUNNING
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cell: int | None = None  # the failing cell's execution count

    @property
    def where(self) -> str:
        app, env = self.params.get("app_name"), self.params.get("env")
        parts = [
            f"{app}-{env}" if app and env else app or env,
            self.notebook,
            self.params.get("container"),
        ]
        return " · ".join(str(p) for p in parts if p)

    def counts(self) -> list[tuple[str, Any]]:
        return [
            (k.replace("_", " "), self.summary[k])
            for k in COUNT_KEYS
            if k in self.summary and self.summary[k] is not None
        ]

    def done(self, summary: dict[str, Any], errors: list[str]) -> None:
        self.summary = summary
        self.seconds = time.monotonic() - self.started
        if errors:
            self.fail(" | ".join(errors))
        elif self.status != FAILED:
            self.status = OK

    def fail(self, error: str, cell: int | None = None) -> None:
        self.status, self.error = FAILED, clean(error)
        self.cell = cell if cell is not None else self.cell
        if self.seconds is None:
            self.seconds = time.monotonic() - self.started

    def _param_lines(self) -> list[tuple[str, str, str]]:
        mode = self.summary.get("mode")
        rows = []
        for name, value in self.params.items():
            means = meaning(name, value, notebook=self.notebook)
            if name == "date" and mode:  # what the run did, once it knows
                since = self.summary.get("knack_date") or self.summary.get("since")
                means = f"{mode} run" + (f" since {since}" if since else "")
            rows.append((name, "none" if value is None else str(value), means))
        return rows

    def _headline(self) -> str:
        # the run's cells, from notebook.start on; `knack-nb reports` lists papermill's whole
        # run (the kernel's start, the report's saves): hence "of cells"
        took = f" in {self.seconds:.1f} s of cells" if self.seconds is not None else ""
        return f"{_ICONS[self.status]} {self.status}{took}: {self.where}"

    def __repr__(self) -> str:
        lines = [self._headline()]
        if self.error:
            lines.append(f"error{f' (cell {self.cell})' if self.cell else ''}: {self.error}")
        lines += [f"{n}: {v}" + (f" → {m}" if m else "") for n, v, m in self._param_lines()]
        counts = self.counts()
        if counts:
            lines.append(" · ".join(f"{k} {cell_text(v)}" for k, v in counts))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fg, bg = _COLORS[self.status]
        e = html.escape
        out = [
            f'<div class="knack-nb-header" data-status="{self.status}" style="border-left:6px '
            f"solid {fg};background:{bg};padding:8px 12px;margin:4px 0 12px;"
            'font-family:sans-serif;font-size:13px">',
            f'<div style="font-size:16px;font-weight:600;color:{fg}">{e(self._headline())}</div>',
        ]
        if self.error:
            at = f" (cell In [{self.cell}])" if self.cell else ""
            out.append(
                f'<div class="knack-nb-error" style="margin:6px 0;white-space:pre-wrap">'
                f"<strong>What went wrong{at}:</strong> {e(self.error)}</div>"
            )
        params = "".join(
            f"<code>{e(n)}</code>: <code>{e(v)}</code>" + (f" → {e(m)}" if m else "") + "<br>"
            for n, v, m in self._param_lines()
        )
        out.append(f'<div style="margin-top:4px">{params}</div>')
        counts = self.counts()
        if counts:
            out.append(
                '<div class="knack-nb-counts" style="margin-top:4px">'
                + " · ".join(f"{e(k)} <strong>{e(cell_text(v))}</strong>" for k, v in counts)
                + "</div>"
            )
        elif self.status == RUNNING:
            out.append(
                '<div style="color:#666">running: this header is updated when the run ends</div>'
            )
        out.append("</div>")
        return "".join(out)
