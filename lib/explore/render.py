"""HTML helpers of the explore report's parts: escaping (a lone surrogate shown as its
escape), percentages and dates."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from lib.clients.s3_records import escape_surrogates

BAR_COLOR = "#8fb5de"  # the colour of lib.table's bars (the timeline's columns)


def escape(value: Any) -> str:
    return html.escape(escape_surrogates(str(value)), quote=True)


def percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    share = 100 * part / whole
    if 0 < share < 1:
        return "<1%"
    if 99 < share < 100:
        return ">99%"
    return f"{share:.0f}%"


def day(when: pd.Timestamp | None) -> str:
    return when.strftime("%Y-%m-%d") if when is not None else ""
