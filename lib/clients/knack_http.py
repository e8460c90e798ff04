"""What the Knack client needs of HTTP beyond the retry policy: Knack's rate limit, paced
across threads (:class:`RateLimiter`), and Knack's answers read (their JSON, their error
messages).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from lib.errors import KnackAPIError

MAX_REQUESTS_PER_SECOND = 10  # Knack's limit; beyond it the API answers 429


class RateLimiter:
    """Spaces requests evenly: at most ``rate`` starts in any one second, across threads."""

    def __init__(self, rate: float) -> None:
        if not 0 < rate <= MAX_REQUESTS_PER_SECOND:
            raise ValueError(
                f"requests per second must be above 0 and at most Knack's "
                f"{MAX_REQUESTS_PER_SECOND}, not {rate}"
            )
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def whole_number(value: Any, default: int) -> int:
    """``value`` as an int (Knack sends counts as numbers or strings), or ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def json_body(res: requests.Response, route: str) -> Any:
    """The JSON of a Knack answer; an answer that is not JSON says where to look."""
    try:
        return res.json()
    except ValueError:
        snippet = res.text[:80].replace("\n", " ")
        raise KnackAPIError(
            f"Knack's answer to GET {route} is not JSON (Content-Type "
            f"{res.headers.get('Content-Type')!r}, starts {snippet!r}); check KNACK_API_URL"
        ) from None


def knack_message(res: requests.Response) -> str:
    """The message from a Knack error body (``{"errors": [{"message": ...}]}`` and variants)."""
    try:
        body = res.json()
    except ValueError:
        return res.text[:200] or res.reason
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )
        for key in ("message", "error"):
            if key in body:
                return str(body[key])
    return str(body)[:200]
