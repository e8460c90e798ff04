"""What a map shows, read back from HTML: tests check a report's maps with it."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from lib.maps import DATA_ID


def embedded(text: str) -> list[dict[str, Any]]:
    """The maps' data in ``text`` (a notebook output's HTML, a page): for each map, its
    ``points`` ([lat, lon, popup]), ``cluster``, ``tiles``..."""
    found = []
    docs = [html.unescape(d) for d in re.findall(r'<iframe [^>]*srcdoc="([^"]*)"', text)]
    for doc in docs or [text]:
        for raw in re.findall(
            rf"<script type='application/json' id='{DATA_ID}'>(.*?)</script>", doc, re.S
        ):
            found.append(json.loads(raw))
    return found
