#!/usr/bin/env python
"""Benchmark of the S3 → PostgreSQL publish against its goals, on this machine.

    .venv/bin/python benchmarks/postgres_benchmark.py [--records N] [--seed S]

One run starts the demo stack (moto's S3 server in a process of its own, and the real
PostgreSQL server of ``emulators.postgres``), stores N generated "signals" records
(default 100,000) under ``bench-dev/object_1/`` with the app's metadata and the
container's snapshot (built by ``lib.snapshot.Builder``, as a full sync leaves it), and
measures:

1. the project's full publish into an empty database (``get_publisher("postgres")`` in
   this process: S3's listing, the snapshot, the table made, the rows COPYed straight
   into it a chunk at a time while the next is made, its primary key added, one
   transaction); its database part (``lib.clients.postgres.load``, with the making of
   the rows' chunks it pulls) is timed too;
2. the same full publish again with nothing changed (goal: >= 5x faster than 1.);
3. a bare COPY of the very rows 1. loaded (the same Arrow table, written as CSV by
   pyarrow and COPYed by psycopg into a fresh table of the same columns and primary key,
   one transaction; goal: the publish takes at most 2x its time, >= 0.5 of its speed);
4. pandas' ``DataFrame.to_sql`` of the same rows (the DataFrame made before the clock
   starts, ``record`` as parsed JSON; SQLAlchemy 2's psycopg dialect, ``method=None``, its
   default batching; it makes its own table, ``record`` as jsonb through
   ``dtype={"record": JSONB}`` like the publish's) (goal: the publish >= 5x faster).

``--snapshot-only`` stores the metadata and the snapshot but not the N record objects
(seeding 100,000 objects into moto takes ~9 minutes here): a full publish whose snapshot
is not marked stale reads the snapshot alone, so what is timed is the same.

Each table must then hold the N ids. Prints the times and the ratios with PASS/FAIL;
exit status 1 when a goal is missed. Not part of the tests.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from _common import APP, CONTAINER, ENV, QUIET_LOGGERS, quiet, write_params
from publish_benchmark import build_snapshot, seed_s3

import lib.clients.postgres as pg
from emulators.knack import generate_app
from emulators.stack import Stack
from lib.publish import get_publisher

TO_SQL_FACTOR = 5.0  # the publish is at least this many times faster than to_sql
COPY_SHARE = 0.5  # the publish runs at least at this share of a bare COPY's speed
RERUN_FACTOR = 5.0  # an unchanged full rerun is at least this many times faster


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


class LoadSpy:
    """Wraps ``lib.clients.postgres.load`` to time it and keep the rows it loaded."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows: pa.Table | None = None
        self.columns: dict[str, str] = {}
        self._load = pg.load

    def __enter__(self) -> LoadSpy:
        def load(conn: Any, job: pg.Load, rows: Any) -> pg.Loaded:
            def kept(held: dict[str, str]) -> Iterator[pa.Table]:
                chunks = []
                for chunk in rows(held):  # passed on as made: the load's pace is kept
                    chunks.append(chunk)
                    yield chunk
                if chunks and (self.rows is None or sum(c.num_rows for c in chunks)):
                    self.rows, self.columns = pa.concat_tables(chunks), dict(job.columns)

            t0 = time.perf_counter()
            try:
                return self._load(conn, job, kept)
            finally:
                self.seconds = time.perf_counter() - t0

        pg.load = load
        return self

    def __exit__(self, *_: Any) -> None:
        pg.load = self._load


def publish() -> Any:
    result = get_publisher("postgres")(app_name=APP, container=CONTAINER, env=ENV)
    assert result.ok, result.errors
    return result


def bare_copy(url: str, rows: pa.Table, columns: dict[str, str]) -> int:
    import psycopg
    from psycopg import sql

    typed = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items()]
    defs = sql.SQL(", ").join([sql.SQL("id text PRIMARY KEY, record jsonb, _digest text"), *typed])
    order = ["id", "record", "_digest", *columns]
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute(sql.SQL("CREATE TABLE bench.bare_copy ({})").format(defs))
        buffer = io.BytesIO()
        pacsv.write_csv(rows.select(order), buffer, pacsv.WriteOptions(include_header=False))
        names = sql.SQL(", ").join(sql.Identifier(c) for c in order)
        with (
            conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY bench.bare_copy ({}) FROM STDIN (FORMAT csv)").format(names)
            ) as copy,
        ):
            copy.write(buffer.getbuffer())
        return conn.execute("SELECT count(*) FROM bench.bare_copy").fetchone()[0]


def to_sql(url: str, frame: Any) -> int:
    import sqlalchemy
    from sqlalchemy.dialects.postgresql import JSONB

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        frame.to_sql("to_sql", engine, schema="bench", index=False, dtype={"record": JSONB})
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text("SELECT count(*) FROM bench.to_sql")).scalar()
    finally:
        engine.dispose()


def table_count(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM knack.bench_object_1").fetchone()[0]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="N (default 100,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated app")
    parser.add_argument(
        "--snapshot-only", action="store_true", help="store no record objects (see above)"
    )
    args = parser.parse_args(argv)
    n = args.records
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    t_setup = time.perf_counter()
    metadata, data = generate_app(n, seed=args.seed)
    records, app = data[CONTAINER], metadata["application"]
    workdir = tempfile.TemporaryDirectory(prefix="postgres-bench-")
    params_dir = Path(workdir.name) / "params"
    params_dir.mkdir()
    write_params(params_dir, app["id"], writer="postgres_benchmark.py", extra="    postgres: {}\n")
    stack = Stack(params_dir=str(params_dir), moto_process=True)
    cwd = os.getcwd()
    try:
        stack.start()
        stack.apply_env()
        os.chdir(workdir.name)
        with quiet():
            seed_s3(app["id"], app, [] if args.snapshot_only else records)
            build_snapshot(app, records)
        url = stack.postgres.url
        print(
            f"postgres benchmark: N={n:,} records (seed {args.seed}), {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, PostgreSQL 16 (pgserver's binaries, "
            f"fsync off), moto S3 in a process"
            + (", no record objects (--snapshot-only)" if args.snapshot_only else "")
            + f"; setup {time.perf_counter() - t_setup:.1f} s",
            flush=True,
        )
        with LoadSpy() as spy, quiet():
            first, t_first = timed(publish)
            db_first = spy.seconds
        assert first.created == n and table_count(url) == n, (first.created, n)
        rows, columns = spy.rows, spy.columns
        assert rows is not None and rows.num_rows == n
        with LoadSpy() as spy, quiet():
            rerun, t_rerun = timed(publish)
            db_rerun = spy.seconds
        assert (rerun.created, rerun.updated, rerun.unchanged) == (0, 0, n), rerun.summary()
        copied, t_copy = timed(lambda: bare_copy(url, rows, columns))
        assert copied == n
        frame = rows.select(["id", "record", "_digest", *columns]).to_pandas()
        frame["record"] = frame["record"].map(json.loads)  # what a JSONB column takes
        with quiet():
            stored, t_to_sql = timed(lambda: to_sql(url, frame))
        assert stored == n
    finally:
        os.chdir(cwd)
        stack.stop()
        workdir.cleanup()

    print(f"\n{'what':<48}{'seconds':>9}{'records/s':>12}")
    for what, seconds in (
        ("1. full publish, first load (whole job)", t_first),
        ("   of which the database (load)", db_first),
        ("2. full publish, nothing changed", t_rerun),
        ("   of which the database (load; 0: not called)", db_rerun),
        ("3. bare COPY of the same rows", t_copy),
        ("4. pandas DataFrame.to_sql of the same rows", t_to_sql),
    ):
        rate = f"{n / seconds:>12,.0f}" if seconds else f"{'-':>12}"  # 0: not called
        print(f"{what:<48}{seconds:>9.2f}{rate}")
    goals = [
        (f"to_sql / publish >= {TO_SQL_FACTOR:g}x", t_to_sql / t_first, TO_SQL_FACTOR),
        (f"COPY / publish >= {COPY_SHARE:g}", t_copy / t_first, COPY_SHARE),
        (f"first load / unchanged rerun >= {RERUN_FACTOR:g}x", t_first / t_rerun, RERUN_FACTOR),
    ]
    print("\ngoals (whole publish job: S3's listing and snapshot read included):")
    failed = 0
    for what, ratio, goal in goals:
        failed += ratio < goal
        print(f"  {what:<40} {ratio:6.2f}  {verdict(ratio >= goal)}")
    print("the database part alone (lib.clients.postgres.load):")
    print(f"  to_sql / load   {t_to_sql / db_first:6.2f}x")
    print(f"  COPY / load     {t_copy / db_first:6.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
