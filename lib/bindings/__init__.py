"""Which Knack field fills which column of a destination: the binding rule (``plan``, pure:
no I/O) and the destinations it applies to (``destination``). Where the bindings are kept
between runs: ``lib.state.bindings``."""

from lib.bindings.destination import Destination, destinations
from lib.bindings.plan import (
    BOUND,
    COLUMNS,
    NEW,
    NOT_FILLED,
    NOT_PUBLISHED,
    RENAMED,
    RETIRED,
    WOULD_BLANK,
    Binding,
    Field,
    Plan,
    Row,
    container_fields,
    plan,
    table,
)

__all__ = [
    "BOUND",
    "COLUMNS",
    "NEW",
    "NOT_FILLED",
    "NOT_PUBLISHED",
    "RENAMED",
    "RETIRED",
    "WOULD_BLANK",
    "Binding",
    "Destination",
    "Field",
    "Plan",
    "Row",
    "container_fields",
    "destinations",
    "plan",
    "table",
]
