#!/usr/bin/env python
"""Benchmark of the S3 → another Knack app publish (``knack_container_to_knack``).

    .venv/bin/python benchmarks/knack_publish_benchmark.py [--records N] [--rate R]

One run starts the demo stand-ins (``emulators.stack.Stack``: moto's S3 server in its own
process, the Knack emulator with Knack's 10 requests/second limit per app), serves a
generated source app of N assets (every field type the destination writes) and an empty
destination app (``emulators.knack_pair``), syncs the source to S3 (not timed), publishes
the owners (5 records), then measures, in this process:

1. the first copy of the N assets into the empty destination object;
2. the unchanged rerun (full), which must write nothing.

For each: wall time, requests to the destination app (listing, metadata and writes,
retries included), requests per record, and the physical floor beside it: one request per
write at Knack's 10 requests/second (N / 10 s). The destination app's
``requests_per_second`` is ``--rate`` (default 8, the product's default: paced at exactly
10, a request arriving a little early beside one a little late makes 11 in a second, and
the 429's ``Retry-After: 1`` costs more than the pace gains). Goals: the first copy makes
at most 1.01 requests per record and takes at most 1.15x one write each at ``--rate``
(N / rate); the rerun
makes no write request and at most 20 requests; the destination then holds exactly one
record per source. Not part of the tests.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _common import quiet  # noqa: E402

from emulators.knack_pair import ASSET_MATCH, ASSETS, OWNERS, TARGET_ASSETS  # noqa: E402
from emulators.stack import Stack  # noqa: E402

KNACK_LIMIT = 10.0  # requests per second, per app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=8.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as params, Stack(moto_process=True) as stack:
        stack.apply_env()
        os.environ["KNACK_PARAMS_DIR"] = params
        return run(stack, Path(params), args.records, args.rate)


def run(stack: Stack, params: Path, n: int, rate: float) -> int:
    import yaml
    from knack_copy_app import SOURCE, CopyApps

    from lib.publish import knack

    class Env:  # what CopyApps asks of pytest's monkeypatch
        @staticmethod
        def setenv(name: str, value: str) -> None:
            os.environ[name] = value

    apps = CopyApps(stack, params, Env, n=n, seed=11)
    target = params / "assets-copy.yaml"
    target.write_text(
        yaml.safe_dump({**yaml.safe_load(target.read_text()), "requests_per_second": rate})
    )
    t0 = time.monotonic()
    with quiet():
        apps.sync()
        knack.publish(app_name=SOURCE, container=OWNERS, env="dev").raise_for_errors()
    print(f"set-up: {n} assets synced to S3, owners copied ({time.monotonic() - t0:.0f} s)")
    rows = []
    for phase in ("first copy", "unchanged rerun"):
        stack.knack.reset_log()
        t0 = time.monotonic()
        with quiet():
            result = knack.publish(app_name=SOURCE, container=ASSETS, env="dev")
        wall = time.monotonic() - t0
        result.raise_for_errors()
        writes = len(apps.writes())
        rows.append((phase, result, wall, writes))
    held = apps.targets(TARGET_ASSETS)
    sources = {r["id"] for r in stack.knack.records(apps.source_id, ASSETS)}
    one_each = sorted(r[f"{ASSET_MATCH}_raw"] for r in held) == sorted(sources)
    return report(rows, n, rate, one_each)


def report(rows: list, n: int, rate: float, one_each: bool) -> int:
    floor = n / KNACK_LIMIT
    at_rate = n / rate
    print(f"\n{n} records; physical floor {floor:.0f} s (one write each at 10/s)")
    print(
        f"{'phase':<16} {'wall s':>8} {'requests':>9} {'writes':>7} {'req/rec':>8} {'x floor':>8}"
    )
    for phase, result, wall, writes in rows:
        print(
            f"{phase:<16} {wall:8.1f} {result.requests:9d} {writes:7d} "
            f"{result.requests / n:8.3f} {wall / floor:8.2f}"
        )
    (_, first, first_wall, first_writes), (_, again, _, again_writes) = rows
    goals = [
        (
            f"first copy: {first.requests / n:.3f} requests per record ≤ 1.01",
            first.requests <= 1.01 * n,
        ),
        (
            f"first copy: {first_wall:.0f} s ≤ 1.15 x {at_rate:.0f} s (a write each at {rate:g}/s)",
            first_wall <= 1.15 * at_rate,
        ),
        (
            f"first copy: {first_writes} writes = {n} creates, {first.retries} retries",
            first_writes == n,
        ),
        (f"unchanged rerun: {again_writes} write requests = 0", again_writes == 0),
        (
            f"unchanged rerun: {again.requests} requests ≤ 20 ({math.ceil(n / 1000)} pages listed)",
            again.requests <= 20,
        ),
        ("the destination holds one record per source", one_each),
    ]
    for text, ok in goals:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
