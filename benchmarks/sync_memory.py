#!/usr/bin/env python
"""Peak memory of the container sync (``lib.sync.sync_container``) at two app sizes, on this
machine, against issue 12's goal: peak RSS at 100,000 records <= 1.3x the peak at 10,000.

    .venv/bin/python benchmarks/sync_memory.py            # N = 10,000 and 100,000, ~15-25 min
    .venv/bin/python benchmarks/sync_memory.py --quick    # N = 1,000 and 10,000, ~2 min
    # options: --sizes N [N ...] (default 10000 100000; the goal compares the smallest and
    #          the largest; more sizes give the bytes a record costs)
    #          --phases first,rerun,incremental (default all three)  --seed S (default 0)
    #          --since DATE (the incremental run's date, default 2026-06-25)

One run starts, each in a process of its own:

- moto's S3 server (``python -m moto.server``), one empty bucket per N;
- per N, one after the other, the Knack emulator serving a generated "signals" app of N
  records (``python -m emulators.knack --generate N``: ``generate_app``, with Knack's
  10 requests/s limit). It holds the app (~330 MiB at 100k) in its own memory,
  which therefore counts nowhere. A temporary ``KNACK_PARAMS_DIR`` holds ``bench.yaml``
  (container ``object_1``, ``modified_date_field: field_5``).

Then, per N, one clean Python process per phase (this script's ``--measure PHASE N``), each
calling ``sync.sync_container(app_name="bench", container="object_1", env="dev")`` once:

- **first**: the first full load into the empty bucket (N written, and the snapshot built);
- **rerun**: the same full run with nothing changed (S3's listing of ids and ETags, 0
  written, the snapshot's rows copied from the previous one);
- **incremental**: ``date=--since``: the records modified on or after that local day
  (~4 % of the app), then the snapshot merged.

Each reports its ``VmHWM`` (``/proc/self/status``) and ``getrusage(RUSAGE_SELF).ru_maxrss``
after its imports and after the sync. Linux carries ``ru_maxrss`` over fork and exec, so
this launcher imports only the standard library (S3 buckets are created with plain HTTP)
and stays far below every child: both figures then agree. Only after taking its figures
does each process check its work: the sync's counts (fetched, written, unchanged, deleted,
no errors), S3 holding exactly N records under ``bench-dev/object_1/``, the snapshot
``_snapshots/bench-dev/object_1.parquet`` holding N rows whose ids are those records, with
sampled ``record`` cells byte-equal to their objects; the incremental run's count is
checked against the emulator's own ``total_records`` for the same filter.

The goal line takes the worst phase: every kind of sync measured must keep its peak at the
largest N within 1.3x its peak at the smallest N. Exit status 0 only on PASS. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    APP,
    CONTAINER,
    ENV,
    MODIFIED,
    ROOT,
    aws_env,
    free_port,
    http,
    memory_mib,
    rss_agreement,
    start_moto,
    stop_process,
    wait_for_port,
    write_params,
)

PHASES = ("first", "rerun", "incremental")
PHASE_NAMES = {
    "first": "first full load",
    "rerun": "unchanged full re-run",
    "incremental": "incremental",
}
SINCE = "2026-06-25"  # generated records are modified from 2026-01-01 to 2026-07-01
PREFIX = f"{APP}-{ENV}/{CONTAINER}/"
SNAPSHOT = f"_snapshots/{APP}-{ENV}/{CONTAINER}.parquet"
GOAL_RATIO = 1.3
MIB = 1024 * 1024
RESULT = "RESULT "  # the line a measured process reports on
SAMPLED = 5  # snapshot cells compared byte for byte with their S3 objects


# --------------------------------------------------------------------------- measured


def _knack_total(filters: dict[str, Any]) -> int:
    """The emulator's ``total_records`` for ``filters`` (exact there, unlike Knack's)."""
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"rows_per_page": 1, "page": 1, "filters": json.dumps(filters)})
    request = urllib.request.Request(
        f"{os.environ['KNACK_API_URL']}/objects/{CONTAINER}/records?{query}",
        headers={
            "X-Knack-Application-Id": os.environ["BENCH_APP_ID"],
            "X-Knack-REST-API-KEY": os.environ["KNACK_API_KEY"],
        },
    )
    for _ in range(20):  # the emulator's 10 requests/s limit
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return int(json.load(r)["total_records"])
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(1)
    raise RuntimeError("the Knack emulator kept answering 429")


def _check(phase: str, n: int, result: Any) -> dict[str, Any]:
    """What S3 and the snapshot hold after the sync, and what is wrong with it."""
    import pyarrow.parquet as pq

    from lib.clients import s3 as store

    s3 = store.s3_client()
    bucket = os.environ["KNACK_SERVICES_BUCKET"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX)
    stored = {
        o["Key"][len(PREFIX) :].removesuffix(".json")
        for page in pages
        for o in page.get("Contents", [])
    }
    problems = []
    if not result.ok:
        problems.append(f"errors: {result.errors}")
    expected = {"first": (n, n, 0), "rerun": (n, 0, n)}.get(phase)
    if phase == "incremental":
        if result.mode != "incremental":
            problems.append(f"a {result.mode} run, not an incremental one")
        filters = {
            "match": "or",
            "rules": [
                {"field": MODIFIED, "operator": "is", "value": result.knack_date},
                {"field": MODIFIED, "operator": "is after", "value": result.knack_date},
            ],
        }
        want = _knack_total(filters)
        expected = (want, None, None)
        if not want or result.written + result.unchanged != result.fetched:
            problems.append(
                f"fetched {result.fetched} (Knack holds {want} since "
                f"{result.knack_date}), written {result.written}, unchanged "
                f"{result.unchanged}"
            )
    got = (result.fetched, result.written, result.unchanged)
    if any(e is not None and e != g for e, g in zip(expected, got, strict=True)):
        problems.append(f"fetched/written/unchanged {got}, expected {expected}")
    if result.deleted or result.failed or result.rejected:
        problems.append(
            f"deleted {len(result.deleted)}, failed {len(result.failed)}, "
            f"rejected {len(result.rejected)}"
        )
    if len(stored) != n:
        problems.append(f"S3 holds {len(stored)} records, not {n}")
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        s3.download_fileobj(bucket, SNAPSHOT, f)
        f.flush()
        table = pq.read_table(f.name, columns=["id", "record"])
    ids = table.column("id").to_pylist()
    if len(ids) != n or set(ids) != stored or result.snapshot_rows != n:
        problems.append(
            f"the snapshot has {len(ids)} rows ({len(set(ids))} distinct ids, "
            f"{len(set(ids) & stored)} of them in S3; the sync reported "
            f"{result.snapshot_rows}), not the {n} records"
        )
    records = table.column("record")
    for i in range(0, len(ids), max(1, len(ids) // SAMPLED))[:SAMPLED]:
        body = s3.get_object(Bucket=bucket, Key=f"{PREFIX}{ids[i]}.json")["Body"].read()
        if body != records[i].as_py().encode():
            problems.append(f"the snapshot's record of {ids[i]} differs from its object")
            break
    return {
        "fetched": result.fetched,
        "written": result.written,
        "unchanged": result.unchanged,
        "deleted": len(result.deleted),
        "stored": len(stored),
        "snapshot_rows": len(ids),
        "mode": result.mode,
        "knack_date": result.knack_date,
        "expected_fetched": expected[0],
        "problems": problems,
    }


class _Tracer:
    """``--trace``: tracemalloc in the measured process, and a snapshot of what it traces
    taken near its highest point (sampled every 0.2 s); the top sites of that snapshot."""

    FRAMES = 8

    def __init__(self) -> None:
        import threading

        self.best = 0
        self.snapshot: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tracer")

    def start(self) -> None:
        import tracemalloc

        tracemalloc.start(self.FRAMES)
        self._thread.start()

    def _sample(self) -> None:
        import tracemalloc

        current = tracemalloc.get_traced_memory()[0]
        if current > self.best * 1.02 + MIB:
            self.snapshot, self.best = tracemalloc.take_snapshot(), current

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def stop(self, top: int = 12) -> dict[str, Any]:
        import tracemalloc

        self._stop.set()
        self._thread.join()
        self._sample()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        ours = str(ROOT / "lib")
        sites = []
        for stat in self.snapshot.statistics("traceback")[:top]:
            frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback]
            lib_frames = [
                f"{Path(f.filename).name}:{f.lineno}"
                for f in stat.traceback
                if f.filename.startswith(ours)
            ]
            sites.append(
                {
                    "mib": stat.size / MIB,
                    "blocks": stat.count,
                    "where": frames[-1] if frames else "?",  # innermost (most recent)
                    "lib": " < ".join(reversed(lib_frames[-3:])),
                }
            )
        return {"traced_peak_mib": peak / MIB, "snapshot_mib": self.best / MIB, "sites": sites}


def measure(phase: str, n: int, since: str) -> int:
    """``--measure``: one sync in this (fresh) process; its figures on stdout."""
    import logging

    logging.disable(logging.WARNING)  # only errors: the table is on the launcher's stdout
    from lib import sync

    tracer = _Tracer() if phase in os.environ.get("BENCH_TRACE", "").split(",") else None
    base = memory_mib()
    if tracer is not None:
        tracer.start()
    t0 = time.perf_counter()
    result = sync.sync_container(
        app_name=APP, container=CONTAINER, env=ENV, date=since if phase == "incremental" else None
    )
    seconds = time.perf_counter() - t0
    peak = memory_mib()  # before anything checks the work
    trace = tracer.stop() if tracer is not None else None
    out = {
        "base": base,
        "peak": peak,
        "seconds": seconds,
        "sync_seconds": result.seconds,
        "trace": trace,
        **_check(phase, n, result),
    }
    print(RESULT + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- the launcher


def _run_measured(phase: str, n: int, since: str, env: dict[str, str], log: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    with log.open("wb") as err:
        done = subprocess.run(
            [sys.executable, __file__, "--measure", phase, str(n), "--since", since],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=3600,
            check=False,
        )
    lines = [x for x in done.stdout.decode().splitlines() if x.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"the {phase} sync of {n:,} records failed (exit {done.returncode}):\n{tail}"
        )
    return {**json.loads(lines[-1][len(RESULT) :]), "wall": time.perf_counter() - t0}


def _start_knack(
    n: int, seed: int, api_key: str, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen, str, str, float]:
    """The Knack emulator CLI serving a generated app of N records: (process, URL, app id,
    seconds to start)."""
    t0 = time.perf_counter()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulators.knack",
                "--generate",
                str(n),
                "--seed",
                str(seed),
                "--api-key",
                api_key,
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    url = app_id = ""
    for line in proc.stdout:  # it prints these once it serves, then nothing more
        if line.startswith("KNACK_API_URL="):
            url = line.strip().split("=", 1)[1]
        elif line.startswith("app "):
            app_id = line.split()[1]
            break
    if not (url and app_id):
        stop_process(proc)
        raise RuntimeError(
            f"the Knack emulator of {n:,} records did not start:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    return proc, url, app_id, time.perf_counter() - t0


def _status_mib(pid: int, name: str) -> float | None:
    """VmHWM or VmRSS of another process (MiB), None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000],
        help="N, records of the app (default 10000 100000)",
    )
    parser.add_argument("--quick", action="store_true", help="N = 1,000 and 10,000")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="comma-separated, of first, rerun, incremental (default all); "
        "rerun and incremental need first",
    )
    parser.add_argument("--since", default=SINCE, help=f"the incremental date ({SINCE})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trace",
        default="",
        metavar="PHASES",
        help="comma-separated phases to run under tracemalloc (slower, and "
        "its bookkeeping inflates their RSS): prints their top allocation "
        "sites near the traced peak; a diagnosis, not the goal's figures",
    )
    parser.add_argument("--measure", nargs=2, metavar=("PHASE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        return measure(args.measure[0], int(args.measure[1]), args.since)
    sizes = sorted(set([1_000, 10_000] if args.quick else args.sizes))
    phases = [p for p in PHASES if p in args.phases.split(",")]
    if len(sizes) < 2 or not phases or phases[0] != "first":
        parser.error("two sizes or more, and phases starting with first")

    t_run = time.perf_counter()
    procs: list[subprocess.Popen] = []
    results: dict[tuple[str, int], dict[str, Any]] = {}
    knack_mib: dict[int, tuple[float | None, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sync-memory-") as tmp:
        work = Path(tmp)
        moto_port = free_port()
        s3_url = f"http://127.0.0.1:{moto_port}"
        env = aws_env(s3_url, "unused")
        knack_key = "knack-" + secrets.token_hex(12)
        moto_mib = None
        try:
            moto = start_moto(moto_port, env)
            procs.append(moto)
            wait_for_port(moto_port, moto, "moto's server", 60)
            print(
                f"sync memory: N = {', '.join(f'{n:,}' for n in sizes)}; phases "
                f"{', '.join(phases)}; moto {s3_url}",
                flush=True,
            )
            for n in sizes:
                knack, url, app_id, started = _start_knack(
                    n, args.seed, knack_key, env, work / f"knack-{n}.log"
                )
                procs.append(knack)
                params = work / f"params-{n}"
                params.mkdir()
                write_params(params, app_id, writer="sync_memory.py")
                bucket = f"bench-sync-memory-{n}"
                http("PUT", f"{s3_url}/{bucket}")
                run_env = {
                    **env,
                    "KNACK_API_URL": url,
                    "KNACK_API_KEY": knack_key,
                    "KNACK_SERVICES_BUCKET": bucket,
                    "KNACK_PARAMS_DIR": str(params),
                    "BENCH_APP_ID": app_id,
                    "BENCH_TRACE": args.trace,
                }
                print(f"  Knack emulator of {n:,} records up in {started:.1f} s", flush=True)
                for phase in phases:
                    r = results[phase, n] = _run_measured(
                        phase, n, args.since, run_env, work / f"{phase}-{n}.log"
                    )
                    print(
                        f"  {phase:11} N={n:>9,}: {r['seconds']:6.1f} s, peak "
                        f"{r['peak']['hwm']:6.1f} MiB"
                        + (f"  PROBLEMS: {r['problems']}" if r["problems"] else ""),
                        flush=True,
                    )
                knack_mib[n] = (_status_mib(knack.pid, "VmHWM"), started)
                stop_process(knack)
                procs.remove(knack)
            moto_mib = _status_mib(moto.pid, "VmRSS")
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    wall = time.perf_counter() - t_run
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report(sizes, phases, results, knack_mib, moto_mib, own, wall, args)


def report(
    sizes: list[int],
    phases: list[str],
    results: dict[tuple[str, int], dict[str, Any]],
    knack_mib: dict[int, tuple[float | None, float]],
    moto_mib: float | None,
    own: float,
    wall: float,
    args: argparse.Namespace,
) -> int:
    import importlib.metadata as md

    small, large = sizes[0], sizes[-1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "lib"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print()
    print(
        f"sync memory, {dt.date.today()}, commit {commit or f'? (no git at {ROOT})'}"
        f"{' + uncommitted lib/ edits' if dirty else ''}, Python "
        f"{platform.python_version()}, moto {md.version('moto')}, pyarrow "
        f"{md.version('pyarrow')}, {os.cpu_count()} CPUs; seed {args.seed}, incremental "
        f"since {args.since}; whole run {wall:.0f} s"
    )
    print()
    header = (
        "| phase | N | fetched | written | unchanged | in S3 | snapshot rows | seconds "
        "| peak RSS MiB (VmHWM) | ru_maxrss MiB | after import MiB | growth MiB |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    problems = []
    for phase in phases:
        for n in sizes:
            r = results[phase, n]
            problems += [f"{phase} N={n:,}: {p}" for p in r["problems"]]
            print(
                f"| {PHASE_NAMES[phase]} | {n:,} | {r['fetched']:,} | {r['written']:,} "
                f"| {r['unchanged']:,} | {r['stored']:,} | {r['snapshot_rows']:,}"
                f"{' (WRONG)' if r['problems'] else ''} | {r['seconds']:.1f} "
                f"| {r['peak']['hwm']:.1f} | {r['peak']['maxrss']:.1f} "
                f"| {r['base']['hwm']:.1f} | {r['peak']['hwm'] - r['base']['hwm']:.1f} |"
            )
    print()
    print(rss_agreement(results, own, base="hwm"))
    print(
        "not counted (other processes): the Knack emulator, peak "
        + ", ".join(
            f"{hwm or 0:,.0f} MiB at {n:,} (built in {s:.0f} s)"
            for n, (hwm, s) in knack_mib.items()
        )
        + (f"; moto's server, {moto_mib:,.0f} MiB at the end" if moto_mib else "")
    )
    if "incremental" in phases:
        print(
            "incremental: "
            + ", ".join(
                f"{results['incremental', n]['fetched']:,} records of {n:,} modified on or after "
                f"{results['incremental', n]['knack_date']}"
                for n in sizes
            )
        )
    print()
    ratios = {
        p: results[p, large]["peak"]["hwm"] / results[p, small]["peak"]["hwm"] for p in phases
    }
    worst = max(ratios, key=ratios.__getitem__)
    passed = ratios[worst] <= GOAL_RATIO and not problems
    for p in problems:
        print(f"FAIL  {p}")
    print(
        f"{'PASS' if passed else 'FAIL'}  peak RSS of a sync at {large:,} records <= "
        f"{GOAL_RATIO}x its peak at {small:,}: worst {ratios[worst]:.2f}x "
        f"({PHASE_NAMES[worst]})"
    )
    for p in phases:
        lo, hi = results[p, small]["peak"]["hwm"], results[p, large]["peak"]["hwm"]
        per_record = " ".join(
            f"{(results[p, b]['peak']['hwm'] - results[p, a]['peak']['hwm']) * MIB / (b - a):,.0f}"
            for a, b in zip(sizes, sizes[1:], strict=False)
        )
        mark = "ok  " if ratios[p] <= GOAL_RATIO else "OVER"
        print(
            f"      {PHASE_NAMES[p]:22} {ratios[p]:.2f}x  {mark}  {lo:.1f} -> {hi:.1f} MiB "
            f"(+{hi - lo:.1f} MiB for {large - small:,} more "
            f"records; bytes a record between sizes: {per_record})"
        )
    traced = [(p, n) for p in phases for n in sizes if results[p, n].get("trace")]
    for p, n in traced:
        t = results[p, n]["trace"]
        print()
        print(
            f"tracemalloc, {PHASE_NAMES[p]}, N={n:,}: traced peak {t['traced_peak_mib']:.1f} "
            f"MiB; the top sites of a snapshot at {t['snapshot_mib']:.1f} MiB (innermost "
            "frame; the lib/ frames that led there, innermost first):"
        )
        for site in t["sites"]:
            print(
                f"  {site['mib']:7.1f} MiB {site['blocks']:>9,} blocks  {site['where']:28} "
                f"{site['lib']}"
            )
    if traced:
        print("note: the traced phases ran under tracemalloc: their RSS is inflated")
    if (small, large) != (10_000, 100_000):
        print(
            f"note: the goal is stated at 10,000 and 100,000 records; this run has {small:,} "
            f"and {large:,}"
        )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
