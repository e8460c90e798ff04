"""What the benchmarks share: the project on sys.path, the generated app's names, a params
file for it, silencing stderr while a phase is timed, and (for the memory benchmarks, whose
launchers import only the standard library) stand-ins in processes of their own."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

APP = "bench"
ENV = "dev"
CONTAINER = "object_1"
MODIFIED = "field_5"
# loggers a benchmark silences (their lines would interleave with the tables)
QUIET_LOGGERS = (
    "werkzeug",
    "botocore",
    "boto3",
    "urllib3",
    "moto",
    "s3transfer",
    "papermill",
    "traitlets",
    "lib",
    "emulators",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence file descriptor 2 (this process's and its kernels'): the product's progress
    bars still run, so their cost counts, but print nowhere."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def write_params(directory: Path, app_id: str, *, writer: str, extra: str = "") -> None:
    """``<directory>/bench.yaml`` for the generated signals app; ``extra``: more lines of
    the container's settings, indented by four spaces."""
    (directory / f"{APP}.yaml").write_text(
        f"# written by benchmarks/{writer}: the generated signals app\n"
        f"app_id:\n  prod: {app_id}\n  dev: {app_id}\n"
        f"containers:\n  {CONTAINER}:\n    description: generated signals\n"
        f"    modified_date_field: {MODIFIED}\n" + extra
    )


# --------------------------------------------------------------------------- processes
# Standard library only: a memory benchmark's launcher stays small, because Linux carries
# a process's max RSS (getrusage ``ru_maxrss``) over to the children it forks and execs.


def memory_mib() -> dict[str, float]:
    """This process's getrusage max RSS (``maxrss``), and its VmHWM (``hwm``) and VmRSS
    (``rss``) from ``/proc/self/status``, in MiB (Linux)."""
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                status[name] = int(value.split()[0]) / 1024  # kB
    return {
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kB on Linux
        "hwm": status["VmHWM"],
        "rss": status["VmRSS"],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def http(method: str, url: str) -> bytes:
    """Plain HTTP to moto's server (it takes an unsigned bucket creation), so that boto3
    stays out of a launcher's memory."""
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=120) as r:
        return r.read()


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def aws_env(s3_url: str, bucket: str) -> dict[str, str]:
    """``os.environ`` pointed at a local S3 with random dummy keys (and no AWS profile)."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_url,
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "KNACK_SERVICES_BUCKET": bucket,
    }
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def start_moto(port: int, env: dict[str, str]) -> subprocess.Popen:
    """moto's S3 server (``python -m moto.server``) on 127.0.0.1:``port``, a process of its
    own; the caller waits for it (``wait_for_port``) and stops it (``stop_process``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def rss_agreement(results: dict, own: float, *, base: str) -> str:
    """The line saying how far each child's ru_maxrss and VmHWM differ and whether this
    launcher's own max RSS (``own``, MiB) could have been inherited into a child's figure:
    ``results`` values have ``peak`` and ``base`` dicts of ``maxrss`` and ``hwm``."""
    inherited = max(abs(r["peak"]["maxrss"] - r["peak"]["hwm"]) for r in results.values())
    lowest = min(r["base"][base] for r in results.values())
    return (
        f"ru_maxrss vs VmHWM: they differ by at most {inherited:.1f} MiB (this launcher's "
        f"own max RSS: {own:.1f} MiB, "
        + (
            "below every child's, so none inherited it)"
            if own < lowest
            else f"ABOVE a child's {lowest:.1f} MiB after import: read the VmHWM column)"
        )
    )
