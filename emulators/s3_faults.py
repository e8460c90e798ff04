"""S3 faults for tests and the fault matrix: a proxy on 127.0.0.1 in front of an S3 server
(moto's) that passes requests through and answers some of them with S3's own errors.

Point ``AWS_ENDPOINT_URL`` at :attr:`S3FaultProxy.url`: boto3 and papermill then reach moto
through it, with their real retry logic facing the faults. S3 answers ``503 SlowDown``
when a prefix is busy and ``500 InternalError`` now and then; clients must retry both.

Faults (:class:`S3Faults`, mutable while it runs):
- ``fail_every``: answer every Nth request of ``methods`` with ``status``;
- ``fail_after``: let that many requests of ``methods`` through, then fail all the others
  (an outage that outlasts any retry);
- ``delay``: seconds to wait before answering every request, of any method (a network round
  trip to S3, which moto on 127.0.0.1 doesn't have; benchmarks/fast_runs.py).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from emulators._http import HTTPEmulator, Response, ServerThread

CODES = {500: "InternalError", 503: "SlowDown"}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-type",
    "server",
    "date",
}


@dataclass
class S3Faults:
    methods: set[str] = field(default_factory=lambda: {"GET", "PUT", "HEAD", "POST", "DELETE"})
    status: int = 503
    fail_every: int = 0
    fail_after: int | None = None
    delay: float = 0.0  # seconds before answering each request (any method)
    seen: int = 0  # requests of `methods` counted
    failed: int = 0  # of them answered with `status`

    def update(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` (``POST /_emulator/faults``), checking the names."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {sorted(known)}")
        delay = changes.get("delay", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ValueError("delay must be a non-negative number of seconds")
        for name, value in changes.items():
            setattr(self, name, set(value) if name == "methods" else value)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "methods": sorted(self.methods)}

    def take(self, method: str) -> bool:
        if method not in self.methods:
            return False
        self.seen += 1
        fail = (self.fail_every > 0 and self.seen % self.fail_every == 0) or (
            self.fail_after is not None and self.seen > self.fail_after
        )
        self.failed += int(fail)
        return fail


class S3FaultProxy(HTTPEmulator):
    """``with S3FaultProxy(moto_url) as proxy:`` then use ``proxy.url`` as the endpoint;
    ``/_emulator/faults`` sets the faults from another process, as for the emulators."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults = S3Faults()
        self.requests: list[Any] = []  # not logged: moto keeps what landed
        self._lock = threading.RLock()
        self._local = threading.local()
        self._http = ServerThread(
            "S3 fault proxy",
            self._dispatch,
            lambda: _error(500, "proxy error"),
            host=host,
            port=port,
        )

    @property
    def url(self) -> str:
        return self._http.url

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        if raw_path.startswith("/_emulator/"):
            return self._control(method, urlsplit(raw_path).path, body)
        with self._lock:
            fail = self.faults.take(method)
            status = self.faults.status
            delay = self.faults.delay
        if delay:
            time.sleep(delay)
        if fail:
            return _error(
                status,
                "Please reduce your request rate."
                if status == 503
                else "We encountered an internal error. Please try again.",
            )
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(*self._upstream, timeout=60)
        sent = {k: v for k, v in headers.items() if k.lower() != "connection"}
        try:
            conn.request(method, raw_path, body=body or None, headers=sent)
            answer = conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise
        kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
        return Response(
            answer.status,
            b"" if method == "HEAD" else data,
            answer.getheader("Content-Type") or "application/xml",
            kept,
        )


def _error(status: int, message: str) -> Response:
    code = CODES.get(status, "InternalError")
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>s3-fault-proxy</RequestId></Error>"
    )
    return Response(status, body.encode(), "application/xml")
