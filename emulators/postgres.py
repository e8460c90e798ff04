"""A real PostgreSQL server for the tests, the demo and the benchmarks: not a stand-in, the
server itself, from the binaries of the ``pgserver`` wheel (PostgreSQL 16, installed by
``make install`` with the rest of the dev dependencies: no system package, no download).

    python -m emulators.postgres      # a throwaway server; prints its URL and psql line

:class:`PostgresServer` makes a data directory in a temporary folder (``initdb``), starts
``postgres`` on 127.0.0.1 at a free port (and a Unix socket in the data directory), and on
``stop`` ends it and removes the folder. Logins need a password (``scram-sha-256`` on TCP),
random per server, so the URL it gives is a secret like a real one and a test can prove
it never reaches a report. As root (CI, containers) the server runs as ``nobody``:
PostgreSQL refuses to run as root (from a copy of the programs in the temporary folder,
which it can read wherever the install is). Durability is traded for speed (``fsync=off``): the
data lives as long as the server.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

START_TIMEOUT = 60  # seconds for the server to accept connections
USER = "knack"  # the superuser initdb makes
DATABASE = "postgres"
UNPRIVILEGED = "nobody"  # who runs the server when we are root


def bin_dir() -> Path:
    """The folder of PostgreSQL's programs: the ``pgserver`` wheel's, else
    ``KNACK_PG_BIN`` (a folder with ``initdb`` and ``postgres``)."""
    given = os.environ.get("KNACK_PG_BIN")
    if given:
        return Path(given)
    spec = importlib.util.find_spec("pgserver")  # its binaries, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "no PostgreSQL server: `make install` installs the pgserver wheel (its binaries), "
            "or set KNACK_PG_BIN to a folder holding initdb and postgres"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def shared_copy(binaries: Path) -> Path:
    """The server's programs where ``nobody`` can run them: the install's folders may sit
    under one only root can enter (``/root``), so they are copied once per machine to the
    temporary folder (~27 MB): ``pginstall``'s bin, lib and share (PostgreSQL finds lib and
    share beside bin) and the wheel's ``pgserver.libs`` (its programs' RPATH is
    ``$ORIGIN/../../../pgserver.libs``), in the same layout."""
    install = binaries.parent  # .../site-packages/pgserver/pginstall
    site = install.parent.parent
    tag = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"knack-pg-bin-{tag}"
    inner = target / install.parent.name / install.name
    if not (inner / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=target.parent))
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, staging / inner.relative_to(target) / part)
        libs = site / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name)
        for folder in (staging, *(p for p in staging.rglob("*") if p.is_dir())):
            folder.chmod(0o755)
        try:
            staging.rename(target)  # atomic: a concurrent start keeps its own or this one
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return inner / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One throwaway PostgreSQL server (see the module)."""

    def __init__(self) -> None:
        self.password = "pg-" + secrets.token_urlsafe(18)
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The libpq URL of the server (with its password: a secret)."""
        return (
            f"postgresql://{USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{DATABASE}"
        )

    @property
    def psql(self) -> str:
        """A shell line that opens psql on the server (the password in PGPASSWORD)."""
        return (
            f"PGPASSWORD='{self.password}' {bin_dir() / 'psql'} "
            f"-h 127.0.0.1 -p {self.port} -U {USER} {DATABASE}"
        )

    def start(self) -> PostgresServer:
        user = self._user()
        binaries = bin_dir() if user is None else shared_copy(bin_dir())
        self.root = Path(tempfile.mkdtemp(prefix="knack-pg-"))
        data, pwfile = self.root / "data", self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if user is not None:
            shutil.chown(self.root, user)
            shutil.chown(pwfile, user)
        made = subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8"]
            + ["--locale=C", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256"]
            + [f"--pwfile={pwfile}", "--no-sync"],
            capture_output=True,
            text=True,
            user=user,
        )
        if made.returncode:
            self.stop()
            raise RuntimeError(f"initdb failed ({made.returncode}): {made.stderr[-2000:]}")
        pwfile.unlink()
        self.port = free_port()
        self._proc = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1"]
            + ["-p", str(self.port), "-k", str(data)]
            + ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
            + ["-c", "max_connections=50", "-c", "logging_collector=off"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "server.log", "wb"),  # noqa: SIM115 - the child keeps it
            user=user,
            start_new_session=True,  # a Ctrl-C in a terminal reaches us, not it
        )
        self._wait()
        return self

    def _user(self) -> str | None:
        return UNPRIVILEGED if hasattr(os, "geteuid") and os.geteuid() == 0 else None

    def _wait(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start: {self.log()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                if self._accepts():
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("postgres did not accept connections in time")
            time.sleep(0.1)

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False  # still starting ("the database system is starting up")
        return True

    def log(self) -> str:
        path = self.root / "server.log" if self.root else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)  # "fast" shutdown: sessions ended
                try:
                    self._proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m emulators.postgres", description=__doc__).parse_args(
        argv
    )
    with PostgresServer() as server:
        print(f"export KNACK_POSTGRES_URL='{server.url}'")
        print(f"psql: {server.psql}")
        print("serving; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
