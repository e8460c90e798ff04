#!/usr/bin/env python
"""Benchmark of the Knack → S3 container sync against its goals, on this machine.

    .venv/bin/python benchmarks/sync_benchmark.py [--records N] [--baseline-records M]
                                                  [--seed S] [--moto {process,thread}]

One run starts the demo stand-ins (``emulators.stack.Stack``: moto's S3 server and the
Knack emulator with its 10 requests/s limit) serving a generated "signals" app of N
records, and measures:

1. ceiling: a bare thread pool (``lib.clients.s3.UPLOAD_WORKERS`` threads, one shared
   ``lib.clients.s3.s3_client()``) putting N stable-JSON bodies into another bucket, once
   just before and once just after the project's first load (moto's pace drifts);
2. baseline, built like the original scripts: knackpy's sequential paging, then 8 threads
   that create a new boto3 Session and client for every record and upload every record;
   the upload is timed on a sample of M records and scaled to N;
3. the project: (a) a first full load into an empty bucket, (b) a second full run with
   nothing changed (both ``lib.sync.sync_container`` in this process, timed without
   tracemalloc, which slows them by half) and (c) an incremental run after 10 records
   changed, through papermill (``lib.reports.run_notebook``), wall clock including the
   kernel's start;
4. memory: (a) and (b) again, into a fresh bucket, in a child process that imports only
   ``lib.sync``: tracemalloc peak and peak RSS (VmHWM) of each, reset between them; the
   papermill kernel's peak RSS (psutil) in (c); this process's getrusage max RSS.

It then prints the ratios against the goals with PASS/FAIL. S3's contents are checked
after each project phase, so the figures are for correct work. Not part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import knackpy
import psutil
from _common import APP, CONTAINER, ENV, MODIFIED, QUIET_LOGGERS, ROOT, quiet, write_params

from emulators.knack import generate_app
from emulators.stack import Stack
from lib import reports, sync
from lib.clients import s3 as store
from lib.clients import s3_records

PREFIX = f"{APP}-{ENV}/{CONTAINER}/"
CEILING_BUCKET = "bench-ceiling"
BASELINE_BUCKET = "bench-baseline"
MEMORY_BUCKET = "bench-memory"
BASELINE_WORKERS = 8  # the original scripts' pool
CHANGED = 10  # records changed before the incremental run
GOAL_RECORDS = 20_000  # the size the memory goal is stated at
MIB = 1024 * 1024

# the goals
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
    traced_mib: float | None = None  # tracemalloc peak (Python allocations)
    rss_mib: float | None = None  # a process's peak RSS (see the legend)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class RssSampler:
    """Peak RSS of this process and of its child processes (but ``exclude``), every 20 ms."""

    def __init__(self, exclude: set[int] | None = None) -> None:
        self.proc = psutil.Process()
        self.exclude = exclude  # None: no child processes
        self.peak = 0
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        self.peak = max(self.peak, self.proc.memory_info().rss)
        children = self.proc.children(recursive=True) if self.exclude is not None else []
        for child in children:
            if child.pid not in self.exclude:
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


def max_rss_mib() -> float:
    """This process's max RSS so far (getrusage; KiB on Linux). It never goes down."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any) -> tuple[Any, float, float]:
    """``fn()``, its seconds and this process's peak RSS (MiB) meanwhile."""
    with RssSampler() as rss, quiet():
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, seconds, rss.peak / MIB


# --------------------------------------------------------------------------- the stack


def count_keys(client: Any, bucket: str, prefix: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def full_sync() -> sync.ContainerSync:
    return sync.sync_container(app_name=APP, container=CONTAINER, env=ENV)


def check_first_load(result: sync.ContainerSync, s3: Any, bucket: str, records: list[dict]) -> None:
    n = len(records)
    assert result.ok, result.errors
    assert (result.fetched, result.written, result.unchanged) == (n, n, 0), result.summary()
    stored = count_keys(s3, bucket, PREFIX)
    assert stored == n, f"S3 holds {stored} records after the first load, not {n}"
    for probe in (records[0], records[n // 2], records[-1]):
        body = s3.get_object(Bucket=bucket, Key=f"{PREFIX}{probe['id']}.json")["Body"]
        assert body.read() == s3_records.dumps_stable(probe), f"{probe['id']} differs in S3"


def check_rerun(result: sync.ContainerSync, n: int) -> None:
    assert result.ok, result.errors
    assert (result.fetched, result.written, result.unchanged) == (n, 0, n), result.summary()
    assert not result.deleted, result.deleted


# --------------------------------------------------------------------------- phases


def run_ceiling(records: list[dict], label: str) -> Row:
    bodies = [(f"{label}/{CONTAINER}/{r['id']}.json", s3_records.dumps_stable(r)) for r in records]
    client = store.s3_client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=CEILING_BUCKET)

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(
            Bucket=CEILING_BUCKET, Key=item[0], Body=item[1], ContentType="application/json"
        )

    def run() -> None:
        with ThreadPoolExecutor(store.UPLOAD_WORKERS) as pool:
            list(pool.map(put, bodies))

    _, seconds, rss = timed(run)
    stored = count_keys(client, CEILING_BUCKET, f"{label}/")
    assert stored == len(records), f"ceiling stored {stored} of {len(records)}"
    return Row(
        f"ceiling {label}: bare pool, {store.UPLOAD_WORKERS} thr, 1 client",
        len(records),
        seconds,
        rss_mib=rss,
        note="PUTs only",
    )


def run_baseline(stack: Stack, app_id: str, n: int, sample: list[dict]) -> list[Row]:
    url = stack.knack.url
    original = knackpy.api._url
    knackpy.api._url = lambda *, route, slug=None: f"{url}{route}"  # knackpy hardcodes Knack
    try:
        rows, fetch_s, fetch_rss = timed(
            lambda: knackpy.api.get(app_id=app_id, api_key=stack.knack_api_key, obj=CONTAINER)
        )
    finally:
        knackpy.api._url = original
    assert len(rows) == n, f"knackpy fetched {len(rows)} of {n}"

    s3 = stack.s3()
    s3.create_bucket(Bucket=BASELINE_BUCKET)

    def upload(record: dict) -> None:  # as the original scripts: a new client per upload
        session = boto3.session.Session()
        client = session.client("s3")
        client.put_object(
            Bucket=BASELINE_BUCKET,
            Key=f"baseline/{CONTAINER}/{record['id']}.json",
            Body=json.dumps(record),
        )

    def run() -> None:
        with ThreadPoolExecutor(BASELINE_WORKERS) as pool:
            list(pool.map(upload, sample))

    _, upload_s, upload_rss = timed(run)
    stored = count_keys(s3, BASELINE_BUCKET, "baseline/")
    assert stored == len(sample), f"baseline stored {stored} of {len(sample)}"
    m = len(sample)
    return [
        Row(
            "baseline fetch: knackpy, sequential pages", n, fetch_s, rss_mib=fetch_rss, note="all N"
        ),
        Row(
            f"baseline upload: {BASELINE_WORKERS} thr, new client per record",
            m,
            upload_s,
            rss_mib=upload_rss,
            note=f"a sample of M={m}",
        ),
        Row(
            "baseline, estimated for N",
            n,
            fetch_s + upload_s * n / m,
            note=f"fetch + upload x N/M ({n}/{m})",
        ),
    ]


def change_records(stack: Stack, app_id: str, records: list[dict]) -> list[dict]:
    """Touch CHANGED records to now, with new notes so that their content differs too."""
    now = dt.datetime.now(dt.UTC)
    step = len(records) // CHANGED
    changed = []
    for i in range(CHANGED):
        note = f"<p>benchmark change {i} at {now.isoformat()}</p>"
        record = {**records[i * step], "field_8": note, "field_8_raw": note}
        stack.knack.put_record(app_id, CONTAINER, record)
        stack.knack.touch(app_id, CONTAINER, record["id"], field=MODIFIED, when=now)
        changed.append(record)
    return changed


def run_incremental(stack: Stack, app_id: str, records: list[dict], exclude: set[int]) -> Row:
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    changed = change_records(stack, app_id, records)
    with RssSampler(exclude) as rss, quiet():
        t0 = time.perf_counter()
        run = reports.run_notebook(
            "knack_container_to_s3",
            app_name=APP,
            env=ENV,
            container=CONTAINER,
            date=since.isoformat(),
        )
        seconds = time.perf_counter() - t0
    assert run.ok, run.error
    summary = run.summary
    assert summary["mode"] == "incremental", summary
    assert summary["written"] == CHANGED and not summary["failed"], summary
    s3 = stack.s3()
    served = {r["id"]: r for r in stack.knack.records(app_id, CONTAINER)}
    for record in changed:
        body = s3.get_object(Bucket=stack.bucket, Key=f"{PREFIX}{record['id']}.json")["Body"]
        assert body.read() == s3_records.dumps_stable(served[record["id"]]), f"{record['id']} stale"
    assert count_keys(s3, stack.bucket, PREFIX) == len(records)
    return Row(
        "project (c) incremental, papermill",
        summary["fetched"],
        seconds,
        rss_mib=rss.child_peak / MIB if rss.child_peak else None,
        note=f"{CHANGED} changed: fetched {summary['fetched']}, written {summary['written']}; "
        f"sync_container alone {summary['seconds']:.2f} s",
    )


# (a) and (b) again in a child process that imports only what the sync needs, run as
# ``python -c MEMORY_CHILD N APP CONTAINER ENV PREFIX BUCKET...``; it prints one JSON line.
# Pass 1 (plain): peak RSS from VmHWM (Linux), reset between phases; getrusage's max RSS
# would carry this benchmark process's high-water mark over fork and exec. Pass 2 (traced,
# another fresh bucket): tracemalloc's peaks; not RSS, which tracemalloc's own bookkeeping
# inflates.
MEMORY_CHILD = """
import json, logging, os, sys, time, tracemalloc
from pathlib import Path
for name in ("botocore", "boto3", "urllib3", "lib"):
    logging.getLogger(name).setLevel(logging.ERROR)
from lib import sync
from lib.clients import s3 as store
from lib.clients import s3_records

def peak_rss_mib():
    kib = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    return kib / 1024

n, app, container, env, prefix, plain_bucket, traced_bucket = sys.argv[1:8]
n = int(n)
s3 = store.s3_client()
out = {"rss_after_imports_mib": peak_rss_mib()}
for mode, bucket in (("plain", plain_bucket), ("traced", traced_bucket)):
    os.environ["KNACK_SERVICES_BUCKET"] = bucket
    s3.create_bucket(Bucket=bucket)
    if mode == "traced":
        tracemalloc.start()
    for phase in ("first", "rerun"):
        tracemalloc.reset_peak()
        peak_rss_mib()
        t0 = time.perf_counter()
        r = sync.sync_container(app_name=app, container=container, env=env)
        seconds = time.perf_counter() - t0
        out[f"{mode} {phase}"] = {
            "seconds": seconds,
            "rss_mib": peak_rss_mib() if mode == "plain" else None,
            "traced_mib": tracemalloc.get_traced_memory()[1] / 2**20 if mode == "traced" else None,
        }
        assert r.ok and r.fetched == n, r.summary()
        assert (r.written, r.unchanged) == ((n, 0) if phase == "first" else (0, n)), r.summary()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    assert sum(len(p.get("Contents", [])) for p in pages) == n
    tracemalloc.stop()
print(json.dumps(out))
"""


def run_memory_child(n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMORY_CHILD,
            str(n),
            APP,
            CONTAINER,
            ENV,
            PREFIX,
            MEMORY_BUCKET,
            MEMORY_BUCKET + "-traced",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"the memory child failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- output


def print_table(rows: list[Row]) -> None:
    def mib(value: float | None) -> str:
        return "" if value is None else f"{value:,.0f}"

    head = ("phase", "records", "seconds", "rec/s", "traced MiB", "RSS MiB", "note")
    lines = [
        (
            r.phase,
            f"{r.records:,}",
            f"{r.seconds:,.2f}",
            f"{r.rate:,.1f}",
            mib(r.traced_mib),
            mib(r.rss_mib),
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 6) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000, help="N, records in the app")
    parser.add_argument(
        "--baseline-records",
        type=int,
        default=100,
        help="M, the baseline's upload sample (default 100)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated app")
    parser.add_argument(
        "--moto",
        choices=("process", "thread"),
        default="process",
        help="moto's S3 server in its own process (default: like a remote S3) or in a thread "
        "of this process, as Stack runs it (its CPU then competes for this process's GIL)",
    )
    args = parser.parse_args(argv)
    n, m = args.records, min(args.baseline_records, args.records)
    if n < CHANGED * 2 or m < 1:
        parser.error(f"--records must be at least {CHANGED * 2} and --baseline-records >= 1")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)

    t_setup = time.perf_counter()
    metadata, data = generate_app(n, seed=args.seed)
    records = data[CONTAINER]
    app_id = metadata["application"]["id"]
    sample = records[:: max(1, n // m)][:m]

    workdir = tempfile.TemporaryDirectory(prefix="sync-bench-")
    params_dir = Path(workdir.name) / "params"
    params_dir.mkdir()
    write_params(params_dir, app_id, writer="sync_benchmark.py")
    stack = Stack(params_dir=str(params_dir), moto_process=args.moto == "process")
    stack.knack.add_app(metadata, data)  # the emulator's rate limit: 10 requests/s
    cwd = os.getcwd()
    rows: list[Row] = []
    try:
        stack.start()
        stack.apply_env()
        os.chdir(workdir.name)  # a report that S3 cannot take would land here
        exclude = {stack.moto_pid} if stack.moto_pid else set()
        print(
            f"sync benchmark: N={n:,} records (seed {args.seed}), M={m}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, moto S3 in a {args.moto}, Knack emulator "
            f"limit {stack.knack.rate_limit}/s; setup {time.perf_counter() - t_setup:.1f} s",
            flush=True,
        )
        rows += run_baseline(stack, app_id, n, sample)
        print(f"  baseline done ({rows[0].seconds + rows[1].seconds:.1f} s)", flush=True)
        rows.append(run_ceiling(records, "before"))
        s3 = stack.s3()
        assert count_keys(s3, stack.bucket, PREFIX) == 0
        first, seconds, rss = timed(full_sync)
        check_first_load(first, s3, stack.bucket, records)
        first_row = Row(
            "project (a) first full load",
            n,
            seconds,
            rss_mib=rss,
            note=f"written {first.written}; {first.requests} Knack requests",
        )
        rows.append(run_ceiling(records, "after"))
        rows.append(first_row)
        print(f"  first load done ({seconds:.1f} s)", flush=True)
        again, seconds, rss = timed(full_sync)
        check_rerun(again, n)
        rows.append(
            Row(
                "project (b) full re-run, unchanged",
                n,
                seconds,
                rss_mib=rss,
                note=f"written 0, unchanged {again.unchanged}",
            )
        )
        rows.append(run_incremental(stack, app_id, records, exclude))
        print(f"  incremental done ({rows[-1].seconds:.1f} s)", flush=True)
        memory = run_memory_child(n)
        print("  memory pass done\n", flush=True)
    finally:
        os.chdir(cwd)
        stack.stop()
        workdir.cleanup()

    own_max_rss = max_rss_mib()
    for mode, note in (
        ("plain", "no tracing: RSS is honest"),
        ("traced", "tracemalloc on: slower, RSS n/a"),
    ):
        for phase, label in (("first", "(a)"), ("rerun", "(b)")):
            got = memory[f"{mode} {phase}"]
            traced = ", traced" if mode == "traced" else ""
            rows.append(
                Row(
                    f"memory: {label} again, clean process{traced}",
                    n,
                    got["seconds"],
                    got["traced_mib"],
                    got["rss_mib"],
                    note=note,
                )
            )
    print_table(rows)

    baseline, ceiling_before, ceiling_after = rows[2], rows[3], rows[4]
    first, rerun, incremental = rows[5], rows[6], rows[7]
    ceiling_rate = (ceiling_before.rate + ceiling_after.rate) / 2
    print()
    print(
        f"baseline rec/s = N / (knackpy fetch of all N records {rows[0].seconds:.2f} s + "
        f"upload time of the {m}-record sample {rows[1].seconds:.2f} s x N/M) "
        f"= {baseline.rate:.1f}"
    )
    print(f"ceiling rec/s = mean of the runs before and after (a) = {ceiling_rate:.1f}")
    print(
        f"RSS MiB: baseline..(b): peak RSS of this benchmark process in the phase (psutil, "
        f"every 20 ms); it also holds the Knack emulator"
        f"{', moto' if args.moto == 'thread' else ''} and copies of the records "
        f"(getrusage max RSS of the whole run: {own_max_rss:,.0f} MiB)"
    )
    print("         (c): peak RSS of the papermill kernel process, where that sync runs")
    print(
        f"         memory rows: peak RSS (VmHWM, reset between phases) of a child process that "
        f"imports only lib.sync ({memory['rss_after_imports_mib']:,.0f} MiB after imports) "
        f"and runs (a), (b) into a fresh bucket"
    )
    print(
        "traced MiB: tracemalloc peak of the phase (Python allocations), same child, another "
        "fresh bucket"
    )
    print()
    peak_rss = max(
        memory["plain first"]["rss_mib"], memory["plain rerun"]["rss_mib"], incremental.rss_mib or 0
    )
    traced = max(memory["traced first"]["traced_mib"], memory["traced rerun"]["traced_mib"])
    checks = [
        (
            f"first load / ceiling         {first.rate / ceiling_rate:6.2f}   (goal >= "
            f"{CEILING_SHARE:.2f}; {first.rate:.1f} vs {ceiling_rate:.1f} rec/s)",
            first.rate >= CEILING_SHARE * ceiling_rate,
        ),
        (
            f"first load / baseline        {first.rate / baseline.rate:6.1f}x  (goal >= "
            f"{BASELINE_FACTOR:.0f}x)",
            first.rate >= BASELINE_FACTOR * baseline.rate,
        ),
        (
            f"first load / unchanged rerun {first.seconds / rerun.seconds:6.1f}x  (goal >= "
            f"{RERUN_FACTOR:.0f}x faster; {first.seconds:.1f} s vs {rerun.seconds:.1f} s)",
            first.seconds >= RERUN_FACTOR * rerun.seconds,
        ),
        (
            f"incremental, papermill wall  {incremental.seconds:6.2f} s (goal < "
            f"{INCREMENTAL_SECONDS:.0f} s)",
            incremental.seconds < INCREMENTAL_SECONDS,
        ),
        (
            f"peak memory                  {peak_rss:6.0f} MiB RSS of a process running the sync"
            f" (tracemalloc peak {traced:.0f} MiB) (goal < {MEMORY_MIB:.0f} MiB)",
            peak_rss < MEMORY_MIB,
        ),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    if n < GOAL_RECORDS:
        print(
            f"note: the memory goal is stated at {GOAL_RECORDS:,} records and this run has "
            f"{n:,}; run with --records {GOAL_RECORDS} for that check"
        )
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
