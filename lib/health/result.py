"""The health check's result: one verdict per container, as a table, a summary and errors.

The summary glues ``containers: {<container>: {"status": ..., "problems": [...]}}``; a
container that fails is one of the run's errors, so the notebook (and the health DAG's
task) fails, and the alert says which containers and why. A rerun alone does not help:
the check would find the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lib.health.rules import FAIL, OK, WARN, Facts, Health, ago
from lib.jobs.result import JobResult
from lib.table import Table, cell_text

ICONS = {OK: "✓", WARN: "!", FAIL: "✗"}


@dataclass(kw_only=True)
class HealthResult(JobResult):
    checked: list[tuple[Facts, Health]] = field(default_factory=list)
    now: Any = None  # the check's clock reading (an aware datetime)

    KEPT: ClassVar[str | None] = None  # the errors say what to do

    @property
    def containers(self) -> dict[str, Health]:
        return {h.container: h for _, h in self.checked}

    @property
    def failing(self) -> bool:
        return any(h.status == FAIL for h in self.containers.values())

    def details(self) -> dict[str, Any]:
        return {"containers": {c: h.summary() for c, h in self.containers.items()}}

    def failure(self) -> str:
        return f"health check of {self.app_name}-{self.env}: "

    def table(self) -> Table:
        """One row per container: status, freshness, counts."""
        rows = []
        for f, h in self.checked:
            rows.append(
                {
                    "container": f.container,
                    "status": f"{ICONS[h.status]} {h.status}",
                    "last sync": ago(f.last_success, self.now),
                    "newest change": ago(f.newest_change, self.now),
                    "Knack": f.knack,
                    "S3": f.s3,
                    "Socrata": _count(f, "socrata"),
                    "ArcGIS": _count(f, "agol"),
                    "in a line": h.line,
                }
            )
        return Table(rows, caption=f"health of {self.app_name}-{self.env}")

    def problems_text(self) -> str:
        lines = []
        for _, h in self.checked:
            lines += [f"{h.container} {h.status}: {p}" for p in h.problems]
        return "\n".join(lines) or "no problem found"

    def console(self) -> str:
        """What ``knack-nb health`` prints: the table, then each problem on a line."""
        return f"{self.table()!r}\n\n{self.problems_text()}"

    def _repr_html_(self) -> str:
        import html

        items = "".join(
            f"<li><strong>{html.escape(h.container)}</strong> {html.escape(h.status)}: "
            f"{html.escape(cell_text(p))}</li>"
            for _, h in self.checked
            for p in h.problems
        )
        problems = f"<ul>{items}</ul>" if items else "<p>no problem found</p>"
        return self.table()._repr_html_() + problems

    def __repr__(self) -> str:
        return self.console()


def _count(f: Facts, name: str) -> int | str | None:
    d = f.destinations.get(name)
    return None if d is None else d.count
