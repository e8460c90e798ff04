#!/usr/bin/env python
"""Benchmark of the Knack → S3 container sync against its goals, on this machine.

    .venv/bin/python benchmarks/sync_benchmark.py [--records N] [--baseline-records M]
                                                  [--seed S] [--moto {thread,process}]

One run starts the demo stand-ins (``lib.emulators.stack.Stack``: moto's S3 server and the
Knack emulator with its 10 requests/s limit) serving a generated "signals" app of N
records, then measures side by side:

1. ceiling: a bare thread pool (``lib.store.UPLOAD_WORKERS`` threads, one shared
   ``lib.store.s3_client()``) putting N stable-JSON bodies into another bucket;
2. baseline, built like the original scripts: knackpy's sequential paging, then 8 threads
   that each create a new boto3 Session and client per record and upload every record;
   the upload is timed on a sample of M records and scaled to N;
3. the project: (a) a first full load into an empty bucket, (b) a second full run with
   nothing changed (both ``lib.sync.sync_container`` in this process) and (c) an
   incremental run after 10 records changed, through papermill
   (``lib.reports.run_notebook``), timed wall clock including the kernel's start;

and prints the ratios against the goals with PASS/FAIL. The S3 contents are checked after
each project phase, so the figures are for correct work. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import logging
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import knackpy  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from lib import reports, store, sync  # noqa: E402
from lib.emulators.knack import generate_app  # noqa: E402
from lib.emulators.stack import Stack  # noqa: E402

APP = "bench"
ENV = "dev"
CONTAINER = "object_1"
MODIFIED = "field_5"
CEILING_BUCKET = "bench-ceiling"
BASELINE_BUCKET = "bench-baseline"
BASELINE_WORKERS = 8  # the original scripts' pool
CHANGED = 10  # records changed before the incremental run
GOAL_RECORDS = 20_000  # the size the memory goal is stated at
MIB = 1024 * 1024

# goals
CEILING_SHARE = 0.80
BASELINE_FACTOR = 20.0
RERUN_FACTOR = 5.0
INCREMENTAL_SECONDS = 10.0
MEMORY_MIB = 500.0


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    phase: str
    records: int
    seconds: float
    traced_mib: float | None = None  # tracemalloc peak of the phase (Python allocations)
    rss_mib: float | None = None  # peak RSS sampled during the phase (whole process)
    kernel_rss_mib: float | None = None  # peak RSS of the papermill kernel process
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class RssSampler:
    """Samples the RSS of this process (and of its child processes) every 20 ms."""

    def __init__(self, exclude_pids: set[int], children: bool = False) -> None:
        self.proc = psutil.Process()
        self.exclude = exclude_pids
        self.children = children
        self.peak = 0
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        self.peak = max(self.peak, self.proc.memory_info().rss)
        if self.children:
            for child in self.proc.children(recursive=True):
                if child.pid in self.exclude:
                    continue
                with contextlib.suppress(psutil.Error):
                    self.child_peak = max(self.child_peak, child.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The product's progress bars still run (their cost counts) but print nowhere."""
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        yield


def max_rss_mib() -> float:
    """Process max RSS so far (getrusage; Linux reports KiB). Never goes down."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- the stack


class ProcessMotoStack(Stack):
    """The demo stack with moto's S3 server in its own process instead of a thread.

    Then this process holds only the product (and the Knack emulator): moto's CPU does
    not compete for this interpreter's GIL and its stored objects are not in this
    process's memory figures, as with the real S3.
    """

    _moto_proc: subprocess.Popen | None = None

    def start(self) -> Stack:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._moto_proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.s3_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.s3_url, timeout=1)
                break
            except requests.ConnectionError:
                if self._moto_proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        self.knack.start()
        self.s3().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        super().stop()
        if self._moto_proc is not None:
            self._moto_proc.terminate()
            try:
                self._moto_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto_proc.kill()
            self._moto_proc = None

    @property
    def moto_pid(self) -> int | None:
        return self._moto_proc.pid if self._moto_proc else None


def write_params(directory: Path, app_id: str) -> None:
    (directory / f"{APP}.yaml").write_text(
        "# written by benchmarks/sync_benchmark.py: the generated signals app\n"
        f"app_id:\n  prod: {app_id}\n  dev: {app_id}\n"
        f"containers:\n  {CONTAINER}:\n    description: generated signals\n"
        f"    modified_date_field: {MODIFIED}\n"
    )


def count_keys(client: Any, bucket: str, prefix: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


