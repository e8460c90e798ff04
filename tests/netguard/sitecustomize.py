"""Loopback only: imported at start-up by every Python process whose PYTHONPATH holds this
folder (the tests put it there, so papermill's kernels load it too).

When ``KNACK_NB_NETGUARD_LOG`` names a file, any name lookup or connection to a host other
than 127.0.0.1/localhost/::1 is written to that file and refused, so a test can fail on
any request that would have left the machine, even one a library swallows.
"""

from __future__ import annotations

import os
import socket

_LOG = os.environ.get("KNACK_NB_NETGUARD_LOG")
_LOCAL = {"127.0.0.1", "localhost", "::1", "", None}


def _refuse(what: str, host: object) -> None:
    with open(_LOG, "a", encoding="utf-8") as log:  # type: ignore[arg-type]
        log.write(f"{os.getpid()} {what} {host}\n")
    raise OSError(f"netguard: {what} {host} refused; tests stay on 127.0.0.1")


if _LOG:
    _getaddrinfo = socket.getaddrinfo
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOCAL:
            _refuse("lookup", name)
        return _getaddrinfo(host, *args, **kwargs)

    def _check(address: object) -> None:
        if isinstance(address, tuple) and address and address[0] not in _LOCAL:
            _refuse("connect", address[0])

    def connect(self, address):  # type: ignore[no-untyped-def]
        _check(address)
        return _connect(self, address)

    def connect_ex(self, address):  # type: ignore[no-untyped-def]
        _check(address)
        return _connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
