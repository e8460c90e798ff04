"""A listing of a Knack container, page by page: what it gives back (:class:`Listing`, which
says whether it can be trusted) and the paging machinery of the Knack client (pages asked
for ahead, in order; which empty pages are holes).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lib.ids import IdSet

PAGE_WORKERS = 4  # concurrent page requests; the rate limiter sets the pace
PAGE_LOOKAHEAD = 2 * PAGE_WORKERS  # pages fetched ahead of the one being handled, at most
HOLE_RETRIES = 2  # an empty or repeated page (see Listing) is asked again this many times


@dataclass
class Listing:
    """The records of one listing of a container, and whether the listing can be trusted.

    Knack pages by offset with no snapshot, so a listing that ends normally may still miss
    a record (one deleted meanwhile shifts the later pages); one with ``holes`` (pages that
    stayed empty although a later page had records) certainly missed some, and so did one
    that stopped at a ``repeated`` page (one that brought only records of earlier pages:
    Knack has answered the same page for every page number, so that no empty page ever
    comes). One that ended normally far short of Knack's own count (``pages_short``; Knack
    has answered its last page empty) probably did.
    """

    records: list[dict[str, Any]]
    pages: int  # pages fetched, the last (empty) one included
    estimated_pages: int
    estimated_records: int
    holes: list[int] = field(default_factory=list)
    count: int = 0  # records listed (de-duplicated), kept in ``records`` or given out
    ids: IdSet = field(default_factory=IdSet)  # the ids of those records
    repeated: int = 0  # the page the listing stopped at, having brought no new id (0: none)
    page_size: int = 0  # the most records a page held

    @property
    def complete(self) -> bool:
        return not self.holes and not self.repeated

    @property
    def pages_short(self) -> int:
        """How many fewer pages the records listed fill than Knack's ``total_records`` does
        (0 when the listing reached Knack's last page)."""
        if not self.page_size:
            return 0
        return max(
            0,
            math.ceil(self.estimated_records / self.page_size)
            - math.ceil(self.count / self.page_size),
        )

    @property
    def problem(self) -> str:
        problems = []
        if self.holes:
            numbers = ", ".join(str(n) for n in self.holes)
            problems.append(
                f"page{'s' if len(self.holes) > 1 else ''} {numbers} of the "
                f"{self.estimated_pages} Knack estimated came back empty before the last page, "
                f"{HOLE_RETRIES + 1} times"
            )
        if self.repeated:
            problems.append(
                f"page {self.repeated} brought only records of earlier pages, "
                f"{HOLE_RETRIES + 1} times: the listing stopped there"
            )
        return "; ".join(problems)


def holes_in(sizes: dict[int, int]) -> list[int]:
    """Empty pages with a non-empty page after them (``sizes``: page number -> rows)."""
    last_full = max((n for n, rows in sizes.items() if rows), default=0)
    return [n for n in sorted(sizes) if n < last_full and not sizes[n]]


def in_order(
    pool: ThreadPoolExecutor, fn: Callable[[int], Any], numbers: Iterable[int], lookahead: int
) -> Iterator[tuple[int, Any]]:
    """``(n, fn(n))`` in the order of ``numbers``, computed in ``pool`` at most
    ``lookahead`` ahead of the one given out (``pool.map`` would hold every result). The
    first ``lookahead`` are submitted at once, before the iterator is first asked: their
    requests go on while the caller does other work."""
    todo = iter(numbers)
    pending: deque[tuple[int, Future[Any]]] = deque(
        (n, pool.submit(fn, n)) for n in itertools.islice(todo, lookahead)
    )

    def results() -> Iterator[tuple[int, Any]]:
        try:
            yield None  # type: ignore[misc]  # primed below: close() now cancels what is pending
            while pending:
                m, future = pending.popleft()
                yield m, future.result()
                pending.extend((n, pool.submit(fn, n)) for n in itertools.islice(todo, 1))
        finally:
            for _, future in pending:
                future.cancel()

    ordered = results()
    next(ordered)
    return ordered
