#!/usr/bin/env python
"""Peak memory of the Socrata backup (``lib.backup.backup``) at two dataset sizes, on this
machine, against the claim of issue 14: "streams: memory does not grow with the dataset".

    .venv/bin/python benchmarks/backup_memory.py            # N = 10,000 and 100,000, ~1 min
    .venv/bin/python benchmarks/backup_memory.py --quick    # N = 1,000 and 10,000
    # options: --small N (default 10000)  --large N (default 100000)  --seed S (default 0)

One run starts, each in a process of its own:

- moto's S3 server (``python -m moto.server``) with an empty bucket;
- two Socrata emulators (``emulators.socrata.SocrataEmulator``), this script's
  ``--serve N URL_FILE`` entry, each serving a generated dataset ``bnch-0001`` of N rows
  (small and large N) of 10 columns: text (a 24-hex id, names, ~100-character notes),
  number, checkbox, calendar_date, point. Both are built at the same time, before anything
  is measured; they then sit idle until a measured process reads them.

Then, for each N, two clean Python processes (``--measure streaming|naive N``), one after
the other, each doing one backup of the dataset of N rows into S3:

- **streaming**: imports ``lib.backup`` and calls ``backup.backup(app_name="bench",
  container="object_1", env="dev")`` once (a temporary ``KNACK_PARAMS_DIR`` holds
  ``bench.yaml``: container ``object_1`` with ``socrata: {resource_id: bnch-0001,
  backup_keep: 2}``): CSV pages of ``PAGE_ROWS`` rows into a gzip file on disk, verified,
  ``upload_fileobj``;
- **naive**, "read it all, then write": sodapy JSON reads (``$order=:id``, pages of 50,000,
  SODA 2.0's cap on ``$limit``) into one list holding every row, then one gzip CSV written
  from that list to a temporary file and uploaded with boto3 ``upload_fileobj``.

Each reports, after its imports (baseline) and after its backup (peak), its
``getrusage(RUSAGE_SELF).ru_maxrss`` and its ``VmHWM`` from ``/proc/self/status``. Linux
carries ``ru_maxrss`` across fork and exec, so a child's ``ru_maxrss`` is at least its
parent's peak: this launcher therefore imports nothing but the standard library (S3 is
created and read back with plain HTTP, which moto's server accepts unsigned), and the table
shows both figures, which then agree. The emulators and moto are other processes: they
count in neither. Every backup is then read back from S3, decompressed and its lines
counted (minus the header): it must hold N rows with N distinct ids.

The goal: the streaming backup's peak RSS at the large N is at most 1.3x its peak at the
small N (the naive way's ratio is printed for comparison). Exit status 0 only on PASS.
Not a test: nothing in ``tests/`` runs it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import os
import platform
import random
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

RESOURCE_ID = "bnch-0001"
KEEP = 2
BUCKET = "bench-backup-memory"
NAIVE_PAGE = 50_000  # the naive reader's $limit: SODA 2.0's cap, the emulator's default
GOAL_RATIO = 1.3
MIB = 1024 * 1024
RESULT = "RESULT "  # the line a measured process reports on

COLUMNS: list[dict[str, str]] = [
    {"fieldName": "id", "dataTypeName": "text", "name": "ID"},
    {"fieldName": "signal_id", "dataTypeName": "number", "name": "Signal ID"},
    {"fieldName": "location_name", "dataTypeName": "text", "name": "Location Name"},
    {"fieldName": "notes", "dataTypeName": "text", "name": "Notes"},
    {"fieldName": "location", "dataTypeName": "point", "name": "Location"},
    {"fieldName": "modified_date", "dataTypeName": "calendar_date", "name": "Modified Date"},
    {"fieldName": "is_flashing", "dataTypeName": "checkbox", "name": "Is Flashing"},
    {"fieldName": "cabinet_count", "dataTypeName": "number", "name": "Cabinet Count"},
    {"fieldName": "signal_status", "dataTypeName": "text", "name": "Signal Status"},
    {"fieldName": "cost", "dataTypeName": "number", "name": "Cost"},
]
_STREETS = (
    "CONGRESS AVE",
    "LAMAR BLVD",
    "6TH ST",
    "38TH ST",
    "BURNET RD",
    "RIVERSIDE DR",
    "OLTORF ST",
    "SLAUGHTER LN",
    "MOPAC",
    "GUADALUPE ST",
    "CESAR CHAVEZ ST",
)
_WORDS = (
    "cabinet",
    "inspected",
    "loop",
    "detector",
    "replaced",
    "timing",
    "adjusted",
    "pedestrian",
    "button",
    "fiber",
    "conflict",
    "monitor",
    "flash",
    "school",
    "zone",
    "crew",
    "ticket",
    "bulb",
    "LED",
    "controller",
    "preemption",
    "camera",
    "north",
    "south",
    "east",
    "west",
    "phase",
    "retimed",
    "after",
    "storm",
    "damage",
)
_STATUSES = ("TURNED_ON", "DESIGN", "CONSTRUCTION", "REMOVED", "TURNED_OFF")


# --------------------------------------------------------------------------- the dataset


def generate_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """N rows of the benchmark's dataset, the same for the same (n, seed)."""
    rng = random.Random(f"{seed}-{n}")
    start = dt.datetime(2020, 1, 1)
    rows = []
    for i in range(n):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < 100:
            words.append(rng.choice(_WORDS))
        row: dict[str, Any] = {
            "id": f"{0x5D7964FBB5A7D90000000000 + i * 7919:024x}",
            "signal_id": i + 1,
            "location_name": f"{rng.choice(_STREETS)} / {rng.choice(_STREETS)}",
            "notes": " ".join(words)[:100] + ("," if i % 7 == 0 else ""),  # some quoted cells
            "location": {
                "type": "Point",
                "coordinates": [
                    round(-97.9 + rng.random() * 0.4, 6),
                    round(30.1 + rng.random() * 0.4, 6),
                ],
            },
            "modified_date": (start + dt.timedelta(seconds=rng.randrange(200_000_000))).strftime(
                "%Y-%m-%dT%H:%M:%S"
            ),
            "is_flashing": rng.random() < 0.2,
            "cabinet_count": rng.randrange(1, 5),
            "signal_status": rng.choice(_STATUSES),
            "cost": round(rng.random() * 50_000, 2),
        }
        if i % 10 == 3:
            row["notes"] = None  # a null: an empty cell
        rows.append(row)
    return rows


def serve(n: int, url_file: Path, seed: int) -> int:
    """``--serve``: a Socrata emulator with the dataset of N rows, until killed."""
    from emulators.socrata import SocrataEmulator

    t0 = time.perf_counter()
    emulator = SocrataEmulator(
        app_token=os.environ["SOCRATA_APP_TOKEN"],
        key_id=os.environ["SOCRATA_API_KEY_ID"],
        key_secret=os.environ["SOCRATA_API_KEY_SECRET"],
    )
    emulator.add_dataset(
        RESOURCE_ID, COLUMNS, generate_rows(n, seed), name=f"backup benchmark ({n:,} rows)"
    )
    emulator.start()
    partial = url_file.with_suffix(".partial")
    partial.write_text(json.dumps({"url": emulator.url, "seconds": time.perf_counter() - t0}))
    partial.rename(url_file)
    emulator.serve_until_interrupted()
    return 0


# --------------------------------------------------------------------------- measured


def measure_streaming(n: int) -> dict[str, Any]:
    from lib import backup

    base = memory_mib()
    t0 = time.perf_counter()
    result = backup.backup(app_name=APP, container=CONTAINER, env=ENV)
    seconds = time.perf_counter() - t0
    peak = memory_mib()
    return {
        "base": base,
        "peak": peak,
        "seconds": seconds,
        "key": result.key,
        "reported_rows": result.rows,
        "errors": result.errors,
        "bytes": result.bytes,
        "page_rows": backup.PAGE_ROWS,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def measure_naive(n: int) -> dict[str, Any]:
    """Read every row as JSON into one list, then write the CSV from it and upload it."""
    from urllib.parse import urlsplit

    import boto3
    import requests
    from sodapy import Socrata

    base = memory_mib()
    t0 = time.perf_counter()
    soda = Socrata(
        urlsplit(os.environ["SOCRATA_URL"]).netloc,
        os.environ["SOCRATA_APP_TOKEN"],
        username=os.environ["SOCRATA_API_KEY_ID"],
        password=os.environ["SOCRATA_API_KEY_SECRET"],
        timeout=120,
        session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()},
    )
    fields = [c["fieldName"] for c in soda.get_metadata(RESOURCE_ID)["columns"]]
    rows: list[dict[str, Any]] = []
    while True:
        page = soda.get(RESOURCE_ID, order=":id", limit=NAIVE_PAGE, offset=len(rows))
        if not page:
            break
        rows.extend(page)
    soda.close()
    key = f"_bench/naive-{n}-{int(time.time())}.csv.gz"
    with tempfile.TemporaryFile(prefix="naive-backup-") as spool:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as gz:
            text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(fields)
            writer.writerows([_cell(row.get(f)) for f in fields] for row in rows)
            text.flush()
            text.detach()
        size = spool.tell()
        spool.seek(0)
        boto3.client("s3").upload_fileobj(spool, os.environ["KNACK_SERVICES_BUCKET"], key)
    seconds = time.perf_counter() - t0
    peak = memory_mib()
    return {
        "base": base,
        "peak": peak,
        "seconds": seconds,
        "key": key,
        "reported_rows": len(rows),
        "errors": [],
        "bytes": size,
    }


def measure(kind: str, n: int) -> int:
    """``--measure``: one backup in this (fresh) process; its figures on stdout."""
    import logging

    logging.disable(logging.WARNING)  # only errors: the table is on the launcher's stdout
    out = measure_streaming(n) if kind == "streaming" else measure_naive(n)
    print(RESULT + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- the launcher


def _run_measured(kind: str, n: int, env: dict[str, str], log: Path) -> dict[str, Any]:
    with log.open("wb") as err:
        done = subprocess.run(
            [sys.executable, __file__, "--measure", kind, str(n)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=600,
            check=False,
        )
    lines = [x for x in done.stdout.decode().splitlines() if x.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"the {kind} backup of {n:,} rows failed (exit {done.returncode}):\n{tail}"
        )
    return json.loads(lines[-1][len(RESULT) :])


def verify(keys: list[str]) -> int:
    """``--verify``: per key, the lines minus the header of the gzip CSV in S3, and its
    distinct ids (in a process of its own: boto3 stays out of the launcher)."""
    import boto3

    s3 = boto3.client("s3")
    counts = {}
    for key in keys:
        obj = s3.get_object(Bucket=os.environ["KNACK_SERVICES_BUCKET"], Key=key)
        body = gzip.decompress(obj["Body"].read())
        records = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        at = next(records).index("id")
        counts[key] = [body.count(b"\n") - 1, len({row[at] for row in records})]
    print(RESULT + json.dumps(counts), flush=True)
    return 0


def _ids_set_mib(n: int) -> float:
    """What a set of N 24-character ids holds (sys.getsizeof of the set and its strings)."""
    ids = {f"{0x5D7964FBB5A7D90000000000 + i * 7919:024x}" for i in range(n)}
    return (sys.getsizeof(ids) + sum(sys.getsizeof(i) for i in ids)) / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="the small N (10,000)")
    parser.add_argument("--large", type=int, default=100_000, help="the large N (100,000)")
    parser.add_argument("--quick", action="store_true", help="N = 1,000 and 10,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", nargs=2, metavar=("N", "URL_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--verify", nargs="+", metavar="KEY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(int(args.serve[0]), Path(args.serve[1]), args.seed)
    if args.measure:
        return measure(args.measure[0], int(args.measure[1]))
    if args.verify:
        return verify(args.verify)
    small, large = (1_000, 10_000) if args.quick else (args.small, args.large)
    sizes = [small, large]

    t_run = time.perf_counter()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="backup-memory-") as tmp:
        work = Path(tmp)
        params = work / "params"
        params.mkdir()
        write_params(
            params,
            secrets.token_hex(12),
            writer="backup_memory.py",
            extra=f"    socrata:\n      resource_id: {RESOURCE_ID}\n      backup_keep: {KEEP}\n",
        )
        moto_port = free_port()
        s3_url = f"http://127.0.0.1:{moto_port}"
        env = {
            **aws_env(s3_url, BUCKET),
            "KNACK_PARAMS_DIR": str(params),
            "SOCRATA_APP_TOKEN": "soc-" + secrets.token_hex(10),
            "SOCRATA_API_KEY_ID": "sockey-" + secrets.token_hex(6),
            "SOCRATA_API_KEY_SECRET": secrets.token_urlsafe(24),
        }
        try:
            moto = start_moto(moto_port, env)
            procs.append(moto)
            servers: dict[int, tuple[subprocess.Popen, Path]] = {}
            for n in sizes:  # both datasets are generated at once, before any measurement
                url_file = work / f"socrata-{n}.json"
                with (work / f"serve-{n}.log").open("wb") as log:
                    proc = subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--serve",
                            str(n),
                            str(url_file),
                            "--seed",
                            str(args.seed),
                        ],
                        env=env,
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                    )
                procs.append(proc)
                servers[n] = (proc, url_file)
            wait_for_port(moto_port, moto, "moto's server", 60)
            http("PUT", f"{s3_url}/{BUCKET}")
            served: dict[int, dict[str, Any]] = {}
            deadline = time.monotonic() + 480
            for n, (proc, url_file) in servers.items():
                while not url_file.exists():
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = (work / f"serve-{n}.log").read_text(errors="replace")[-3000:]
                        raise RuntimeError(
                            f"the Socrata emulator of {n:,} rows did not start:\n{log}"
                        )
                    time.sleep(0.2)
                served[n] = json.loads(url_file.read_text())
            print(
                f"stand-ins up: moto {s3_url}; Socrata emulators of "
                + ", ".join(f"{n:,} rows (built in {served[n]['seconds']:.1f} s)" for n in sizes),
                flush=True,
            )

            results: dict[tuple[str, int], dict[str, Any]] = {}
            for n in sizes:
                run_env = {**env, "SOCRATA_URL": served[n]["url"]}
                for kind in ("streaming", "naive"):
                    r = results[kind, n] = _run_measured(kind, n, run_env, work / f"{kind}-{n}.log")
                    print(
                        f"  {kind:9} N={n:>9,}: {r['seconds']:6.1f} s, peak "
                        f"{r['peak']['maxrss']:6.1f} MiB",
                        flush=True,
                    )
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            keys = [r["key"] for r in results.values() if r["key"]]
            done = subprocess.run(
                [sys.executable, __file__, "--verify", *keys],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [x for x in done.stdout.splitlines() if x.startswith(RESULT)]
            if done.returncode != 0 or not lines:
                raise RuntimeError(f"reading the backups back failed:\n{done.stderr[-3000:]}")
            counts = json.loads(lines[-1][len(RESULT) :])
            for r in results.values():
                r["rows"], r["distinct"] = counts.get(r["key"], (0, 0))
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    ids_mib = {n: _ids_set_mib(n) for n in sizes}
    wall = time.perf_counter() - t_run

    import importlib.metadata as md

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print()
    print(
        f"backup memory, {dt.date.today()}, commit {commit or '?'}, Python "
        f"{platform.python_version()}, moto {md.version('moto')}, sodapy "
        f"{md.version('sodapy')}, {os.cpu_count()} CPUs; PAGE_ROWS = "
        f"{results['streaming', small]['page_rows']:,}; whole run {wall:.0f} s"
    )
    print()
    header = (
        "| way | N | rows in backup | seconds | peak RSS MiB (ru_maxrss) | VmHWM MiB "
        "| after import MiB | growth MiB | gzip MiB |"
    )
    print(header)
    print("|" + "---|" * header.count(" | ") + "---|")
    problems = []
    for kind in ("streaming", "naive"):
        for n in sizes:
            r = results[kind, n]
            ok_rows = r["rows"] == n and r["distinct"] == n and not r["errors"]
            if not ok_rows:
                problems.append(
                    f"{kind} N={n:,}: {r['rows']:,} rows, {r['distinct']:,} "
                    f"distinct ids, errors {r['errors']}"
                )
            print(
                f"| {kind} | {n:,} | {r['rows']:,}{'' if ok_rows else ' (WRONG)'} "
                f"| {r['seconds']:.1f} | {r['peak']['maxrss']:.1f} | {r['peak']['hwm']:.1f} "
                f"| {r['base']['maxrss']:.1f} "
                f"| {r['peak']['maxrss'] - r['base']['maxrss']:.1f} "
                f"| {r['bytes'] / MIB:.1f} |"
            )
    print()
    print(rss_agreement(results, own, base="maxrss"))
    print(
        "a set of N 24-character ids (the uniqueness check; sys.getsizeof of the set and "
        "its strings): " + ", ".join(f"{n:,}: {ids_mib[n]:.1f} MiB" for n in sizes)
    )
    print()
    ratio = {
        kind: results[kind, large]["peak"]["maxrss"] / results[kind, small]["peak"]["maxrss"]
        for kind in ("streaming", "naive")
    }
    growth = {
        kind: (results[kind, large]["peak"]["maxrss"] - results[kind, small]["peak"]["maxrss"])
        for kind in ratio
    }
    passed = ratio["streaming"] <= GOAL_RATIO and not problems
    for p in problems:
        print(f"FAIL  {p}")
    print(
        f"{'PASS' if passed else 'FAIL'}  streaming: peak RSS at {large:,} <= "
        f"{GOAL_RATIO}x peak at {small:,}: {ratio['streaming']:.2f}x "
        f"(+{growth['streaming']:.1f} MiB for {large - small:,} more rows)"
    )
    print(f"      naive, for comparison: {ratio['naive']:.2f}x (+{growth['naive']:.1f} MiB)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
