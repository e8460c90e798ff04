"""What every emulator shares: an HTTP server on a daemon thread that hands each request
to the emulator's ``dispatch(method, path, headers, body) -> Response``.

With an ``ssl_context`` the server speaks HTTPS: each accepted connection is wrapped (the
TLS handshake runs on the connection's own thread) and ``url`` starts with ``https://``."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

logger = logging.getLogger(__name__)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode(), headers=headers)


Dispatch = Callable[[str, str, Any, bytes], Response]


@dataclass
class ServiceFaults:
    """The faults the Socrata and ArcGIS emulators share; mutable while they serve.

    A subclass adds its own fields; one whose default is None (e.g. ``fail_after_writes``)
    takes a non-negative integer or None. ``budget`` names the field that lets that many
    more counted requests (writes, edits) through and then fails every later one.
    """

    budget: ClassVar[str | None] = None

    fail_next: int = 0  # answer the next N requests with `status` (decrements)
    status: int = 503
    delay: float = 0.0  # seconds to sleep before answering each request
    # rows or features with one of these ids fail (how depends on the emulator)
    error_ids: set[str] = field(default_factory=set)

    def update(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` (field name -> value) after checking names and types."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {sorted(known)}")
            if name == "delay":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError("delay must be a non-negative number")
                clean[name] = float(value)
            elif name == "error_ids":
                if not isinstance(value, list | set | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ValueError("error_ids must be a list of strings")
                clean[name] = set(value)
            elif value is None and known[name].default is None:
                clean[name] = None
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
            elif name == "status" and not 400 <= value <= 599:
                raise ValueError("status must be an HTTP error status (400-599)")
            else:
                clean[name] = value
        for name, value in clean.items():
            setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_ids"] = sorted(self.error_ids)
        return data

    def take(self, counted: bool) -> bool:
        """Whether this request gets the ``status`` fault: one of ``fail_next`` first, then,
        for a ``counted`` request, the ``budget``. Call under the emulator's lock."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        left = getattr(self, self.budget) if counted and self.budget else None
        if left is None:
            return False
        if left > 0:
            setattr(self, self.budget, left - 1)  # type: ignore[arg-type]
            return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        dispatch: Dispatch,
        internal_error: Callable[[], Response],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.dispatch = dispatch
        self.internal_error = internal_error
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_Handler.timeout)
        # headers and body go out as separate TLS records: don't let Nagle hold the body
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # wrap_socket detaches `request`; the server's later shutdown/close of it is a no-op
            connection = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:  # e.g. a client that does not trust our cert
            logger.debug("TLS handshake with %s failed: %r", client_address, exc)
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            with contextlib.suppress(OSError):
                connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g. after its own timeout) is no error of ours."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            logger.debug("client %s went away: %r", client_address, exc)
        else:
            logger.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are closed after this

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.dispatch(self.command, self.path, self.headers, body)
        except Exception:
            logger.exception("emulator error on %s %s", self.command, self.path)
            response = self.server.internal_error()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in (response.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class ServerThread:
    """Start and stop one emulator's server; ``url`` once started.

    ``ssl_context`` (a server-side context with its certificate loaded) makes it serve HTTPS;
    it may be set or changed while the server is stopped.
    """

    def __init__(
        self,
        name: str,
        dispatch: Dispatch,
        internal_error: Callable[[], Response],
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.ssl_context = ssl_context
        self._dispatch = dispatch
        self._internal_error = internal_error
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.name} is not running: call start() first")
        host, port = self._server.server_address[:2]
        scheme = "http" if self._server.ssl_context is None else "https"
        return f"{scheme}://{host}:{port}"

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _Server(
            self._address, self._dispatch, self._internal_error, self.ssl_context
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.name.replace(" ", "-"),
            daemon=True,
        )
        self._thread.start()
        logger.info("%s listening on %s", self.name, self.url)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            open_connections = list(server.connections)
        for conn in open_connections:  # close idle keep-alive connections too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)
        logger.info("%s stopped", self.name)


class HTTPEmulator:
    """What the emulators share: ``start``/``stop``, use as a context manager, serving until
    Ctrl-C, the request log and the control routes (``/_emulator/faults``,
    ``/_emulator/requests``) that let another process set faults and read the log.

    A subclass sets in its ``__init__``: ``_http`` (a ServerThread), ``_lock``, ``faults``
    (with ``update(dict)`` and ``to_dict()``) and ``requests`` (entries with ``to_dict()``);
    it may override ``_control_error`` (its error body) and ``_control_extra`` (more routes).
    """

    _http: ServerThread
    _lock: threading.RLock
    faults: Any
    requests: list[Any]

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_until_interrupted(self) -> None:
        """Serve until Ctrl-C (the emulators' command lines)."""
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _control_error(self, status: int, message: str) -> Response:
        return json_response(status, {"errors": [{"message": message}]})

    def _control_extra(self, method: str, path: str) -> Response | None:
        return None

    def _control(self, method: str, path: str, body: bytes) -> Response:
        if path == "/_emulator/faults":
            if method == "POST":
                try:
                    changes = json.loads(body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("expected a JSON object")
                    with self._lock:
                        self.faults.update(changes)
                except ValueError as exc:  # JSONDecodeError is a ValueError
                    return self._control_error(400, f"Invalid faults: {exc}")
            elif method != "GET":
                return self._control_error(405, "Use GET or POST")
            with self._lock:
                return json_response(200, self.faults.to_dict())
        if path == "/_emulator/requests":
            with self._lock:
                if method == "DELETE":
                    self.requests.clear()
                elif method != "GET":
                    return self._control_error(405, "Use GET or DELETE")
                return json_response(200, [r.to_dict() for r in self.requests])
        extra = self._control_extra(method, path)
        if extra is not None:
            return extra
        return self._control_error(404, f"Not found: {path}")
