"""Small tables for reports: rows that render themselves (IPython's rich display protocol),
without pandas.

The notebooks that sync and publish show a few short tables (counts, a sample, what was
skipped). pandas made each kernel import ~0.5 s of modules for them and render through its
Styler; a ``Table`` is plain rows rendered to HTML (escaped, blanks for empty values) and to
text. ``to_pandas()`` gives a DataFrame for analysis in an interactive session.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from lib.text import clean, plain

# wrapping: a cell's text goes in a box at most CELL_WIDTH wide that breaks a long word
# (an URL, an id list) where it must, so a table wraps within the page instead of running
# past its right edge. Inline, as every style here: Lab's sanitizer drops a saved report's
# <style> (untrusted), and keeps these properties.
CELL_WIDTH = "30em"
_WRAP = f"max-width:{CELL_WIDTH};white-space:normal;overflow-wrap:break-word"
LONG_WORD = 30  # characters: a longer word may break anywhere (see _wrapped)
_UNDERSCORES = re.compile(r"(?<=\w)_+(?=\w)")
_TABLE = "border-collapse:collapse;max-width:100%;font-size:12px;margin:4px 0 12px"
# the caption above the table, as wide as the page (a <caption> is as narrow as its table)
_CAPTION = "font-size:12px;font-weight:600;margin:4px 0 0;text-align:left"
STYLE = (
    "<style>.knack-nb-table{border-collapse:collapse;font-size:12px;margin:4px 0 12px}"
    ".knack-nb-table th,.knack-nb-table td{padding:3px 8px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}.knack-nb-table th{background:#f4f4f4}"
    ".knack-nb-table td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".knack-nb-bar{background:#8fb5de;height:10px;display:inline-block}</style>"
)


def cell_text(value: Any) -> str:
    """How a value reads in a table: blank for None (and NaN), "none" for an empty list,
    yes or no for a bool, a list as its items joined, a mapping as its keys and values in
    words (no Python dict), thousands separated in integers; text cleaned of control
    characters (lib/text.py: it may come from a service)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"  # as explore's sample says it
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell_text(v) for v in value) if value else "none"
    if isinstance(value, Mapping):  # {"object_3": {"status": "ok"}}: "object_3: status ok"
        return "; ".join(f"{clean(str(k))}: {_inner(v)}" for k, v in value.items()) or "none"
    return clean(str(value))


def _inner(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{clean(str(k))} {cell_text(v)}" for k, v in value.items()) or "none"
    return cell_text(value)


def _wrapped(text: str, *, head: bool = False) -> str:
    """``text`` escaped, in a box that wraps it (see _WRAP); nothing for a blank. A word
    longer than LONG_WORD (a URL, a path) may break anywhere, so its column can narrow
    to fit the page (browsers; Lab's sanitizer keeps ``break-word`` only): an id stays whole.
    A column's name (``head``) may also break after its underscores (``date_time___range``)."""
    if not text:
        return ""
    style = _WRAP
    if any(len(word) > LONG_WORD for word in text.split()):
        style += ";overflow-wrap:anywhere"
    shown = html.escape(text)
    if head:
        shown = _UNDERSCORES.sub(r"\g<0><wbr>", shown)
    return f'<div style="{style}">{shown}</div>'


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Table:
    """Rows (dicts) with named columns; ``bars``: a column of counts drawn as bars, to
    scale with the largest of them or, given ``whole``, as shares of it."""

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        columns: Iterable[str] | None = None,
        *,
        caption: str | None = None,
        bars: str | None = None,
        whole: float | None = None,
    ) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]
        if columns is None:
            columns = dict.fromkeys(k for r in self.rows for k in r)
        self.columns: list[str] = list(columns)
        self.caption = caption
        self.bars = bars
        self.whole = whole  # what a full bar stands for (the rows); None: the largest count

    @classmethod
    def of_pairs(cls, pairs: Mapping[str, Any], key: str, value: str, **kwargs: Any) -> Table:
        """A two-column table of ``key`` and ``value`` from a mapping."""
        return cls(({key: k, value: v} for k, v in pairs.items()), [key, value], **kwargs)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    @property
    def empty(self) -> bool:
        return not self.rows

    def column(self, name: str) -> list[Any]:
        return [r.get(name) for r in self.rows]

    def by(self, name: str) -> dict[Any, dict[str, Any]]:
        """The rows keyed by the values of column ``name``."""
        return {r.get(name): r for r in self.rows}

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def _repr_html_(self) -> str:
        cols = self.columns
        peak = 0.0
        if self.bars is not None:
            peak = max((v for v in self.column(self.bars) if _is_number(v)), default=0)
            if self.whole and peak > 0:
                peak = self.whole
        out = [STYLE]
        if self.caption:
            text = html.escape(clean(self.caption))
            out.append(f'<div class="knack-nb-caption" style="{_CAPTION}">{text}</div>')
        out.append(f'<table class="knack-nb-table" style="{_TABLE}">')
        scale = f"of {cell_text(self.whole)}" if self.whole else "to scale"
        heads = [*cols, f"{self.bars}, {scale}"] if peak > 0 else cols
        out.append(
            "<thead><tr>"
            + "".join(
                f'<th style="text-align:left">{_wrapped(clean(c), head=True)}</th>' for c in heads
            )
            + "</tr></thead><tbody>"
        )
        if not self.rows:
            span = max(len(cols), 1)
            out.append(f'<tr><td colspan="{span}" style="text-align:left"><em>none</em></td></tr>')
        for r in self.rows:
            cells = []
            for c in cols:
                v = r.get(c)
                align = "right" if _is_number(v) else "left"
                cells.append(f'<td style="text-align:{align}">{_wrapped(cell_text(v))}</td>')
            if peak > 0:
                bar = self._bar(r.get(self.bars or ""), peak)
                cells.append(f'<td style="text-align:left">{bar}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def _bar(self, value: Any, peak: float) -> str:
        """A bar as long as ``value`` is of the column's largest (120 px), titled with it."""
        width = round(120 * value / peak) if _is_number(value) and value > 0 else 0
        title = html.escape(f"{cell_text(value)} {self.bars}", quote=True)
        return (
            f'<span class="knack-nb-bar" title="{title}" style="display:inline-block;'
            f'height:10px;background:#8fb5de;width:{width}px"></span>'
        )

    def __repr__(self) -> str:
        cols = [clean(c) for c in self.columns]
        body = [[cell_text(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max([len(c), *(len(row[i]) for row in body)]) for i, c in enumerate(cols)]
        lines = [clean(self.caption)] if self.caption else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in body]
        if not body:
            lines.append("(none)")
        return "\n".join(lines)


class Note:
    """A few lines of Markdown that render themselves (a report's prose, built in ``lib``
    rather than in notebook cells). Text from outside goes in through ``lib.text.md`` (so
    it is never markup); the text/plain form is what a reader sees (``lib.text.plain``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return plain(self.text)
