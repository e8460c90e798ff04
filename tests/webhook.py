"""A webhook receiver on 127.0.0.1: what a person's channel gets from apprise's ``json://``.

apprise's JSON target posts ``{"version", "title", "message", "type", ...}`` to the URL's
host and path; :class:`Receiver` keeps every post (and its path), in order. Used by the
alert tests here and in ``tests_airflow`` (it imports nothing of the project).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.raw: list[str] = []  # each body as received, for the credential scans
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with receiver._lock:
                    receiver.raw.append(body)
                    receiver.posts.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.server.server_address[1]}/alerts"

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.posts)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
