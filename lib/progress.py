"""Progress bars for long work, readable in a terminal, in Jupyter Lab and in a saved report.

In a Jupyter kernel (Lab, papermill, ``knack-nb run``) a bar is one display output, updated
in place (``update_display_data``, at most ~2 a second and once more when it closes): log
lines printed meanwhile do not split it, and papermill/nbclient apply the updates to the
saved notebook, so a report holds only the bar's final state: a small HTML bar with a text
fallback such as ``sync object_3: done · 5,000 of 5,000 rec (100%) · 12 s · 416 rec/s``.
No widget: a report would keep widget state that a reader cannot render.

Elsewhere (a terminal, Airflow's logs) it is a text tqdm bar on stderr.

Either way: ``with progress_bar("sync object_3", unit="rec") as bar: bar.update(n)``, and
the total can be given late, when it becomes known: ``bar.set_total(n)`` (or
``bar.total = n``).
"""

from __future__ import annotations

import functools
import html
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from lib.notebook import in_kernel

# Updates of a display bar are sent at most this often (seconds); the last state is always
# sent when the bar closes.
DISPLAY_INTERVAL = 0.5
TEXT_INTERVAL = 1.0  # tqdm's mininterval on stderr
MIN_RATE_TIME = 0.5  # no rate shown over less (seconds): a few ms would give a silly one


class ProgressBar(Protocol):
    n: int
    total: int | None

    def update(self, n: int = 1) -> Any: ...
    def set_total(self, total: int | None) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> ProgressBar: ...
    def __exit__(self, *exc: object) -> Any: ...


def progress_bar(desc: str, *, total: int | None = None, unit: str = "it") -> ProgressBar:
    """A progress bar for ``desc``: a display output in a Jupyter kernel, tqdm elsewhere."""
    if in_kernel():
        return DisplayBar(desc, total=total, unit=unit)
    return _text_bar_class()(
        desc=desc,
        total=total,
        unit=unit,
        file=sys.stderr,
        mininterval=TEXT_INTERVAL,
        leave=True,
        dynamic_ncols=False,
        ncols=90,
    )


@functools.cache
def _text_bar_class() -> type:
    from tqdm import tqdm  # only outside a kernel: a notebook's kernel does not import it

    class TextBar(tqdm):
        """tqdm, with a total that can be set after the start."""

        def set_total(self, total: int | None) -> None:
            self.total = total
            self.refresh()

    return TextBar


class DisplayBar:
    """A progress bar drawn as one Jupyter display output, updated in place.

    ``update`` may be called from any thread; the display is updated at most every
    ``interval`` seconds, and always when the bar closes (``close`` or the end of its
    ``with`` block), showing "done" (or "stopped" when the block raised), the count, the
    total if known, the time taken and the rate.
    """

    def __init__(
        self,
        desc: str,
        *,
        total: int | None = None,
        unit: str = "it",
        interval: float = DISPLAY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from IPython.display import display

        self.desc, self.unit, self.n = desc, unit, 0
        self._total = _total(total)
        self._interval, self._clock = interval, clock
        self._lock = threading.Lock()
        self._start = self._shown = clock()
        self._state: str | None = None  # None while running, then "done" or "stopped"
        self._handle = display(self._bundle(), raw=True, display_id=True)

    # --- the API shared with the text bar ----------------------------------------------

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, total: int | None) -> None:
        self.set_total(total)

    def set_total(self, total: int | None) -> None:
        with self._lock:
            self._total = _total(total)
            self._show(force=False)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            self._show(force=False)

    def close(self, *, failed: bool = False) -> None:
        with self._lock:
            if self._state is None:
                self._state = "stopped" if failed else "done"
                self._show(force=True)

    def __enter__(self) -> DisplayBar:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(failed=exc_type is not None)

    # --- drawing -----------------------------------------------------------------------

    def _show(self, *, force: bool) -> None:
        """Update the display (the lock held): throttled unless ``force``."""
        now = self._clock()
        if not force and (self._state is not None or now - self._shown < self._interval):
            return
        self._shown = now
        self._handle.update(self._bundle(now), raw=True)

    def _bundle(self, now: float | None = None) -> dict[str, str]:
        elapsed = max((self._clock() if now is None else now) - self._start, 0.0)
        text = self.text(elapsed)
        return {"text/plain": text, "text/html": self._html(text)}

    def text(self, elapsed: float) -> str:
        """The bar as one line, e.g. ``sync object_3: 1,200 of 5,000 rec (24%) · 3 s · 400
        rec/s``; without a total, the count, time and rate only; ``started``, ``done`` or
        ``stopped`` before them until the first count and once closed."""
        parts = [
            f"{self.n:,} of {self._total:,} {self.unit} ({self._percent()}%)"
            if self._total is not None
            else f"{self.n:,} {self.unit}",
            _duration(elapsed),
        ]
        if elapsed >= MIN_RATE_TIME and (self.n or self._state is not None):
            parts.append(f"{_rate(self.n / elapsed)} {self.unit}/s")
        # "started" until the first count: the only state ``knack-nb run`` logs of a bar
        # (papermill logs a display's text, not its updates)
        label = self._state or ("started" if not self.n else None)
        state = f"{label} · " if label else ""
        return f"{self.desc}: {state}" + " · ".join(parts)

    def _percent(self) -> int:
        assert self._total is not None
        if self._total <= 0:
            return 100
        return min(100, int(100 * self.n / self._total))  # an estimate may be exceeded

    def _html(self, text: str) -> str:
        if self._total is not None:
            width = self._percent()
        else:  # no total: an empty track while running, full when done
            width = 100 if self._state is not None else 0
        color = {"stopped": "#d9a441", "done": "#6aa36f"}.get(self._state or "", "#8fb5de")
        return (
            '<div class="knack-nb-progress" style="font-size:12px;margin:2px 0">'
            '<span style="display:inline-block;width:160px;height:8px;background:#e4e4e4;'
            'vertical-align:middle;margin-right:8px">'
            f'<span style="display:block;height:8px;width:{width}%;background:{color}"></span>'
            f"</span><span>{html.escape(text)}</span></div>"
        )


def _total(total: int | None) -> int | None:
    return None if total is None else max(int(total), 0)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.1f}"
