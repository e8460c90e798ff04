"""Progress bars for long work: text tqdm bars, readable in a terminal, in Jupyter and in
an executed report alike (widget bars would leave widget state in reports)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress_bar(desc: str, *, total: int | None = None, unit: str = "it") -> Any:
    return tqdm(
        desc=desc, total=total, unit=unit, file=sys.stderr, mininterval=1.0, leave=True,
        dynamic_ncols=False, ncols=90,
    )
