#!/usr/bin/env python
"""Benchmark of the S3 → Socrata publish against its goals, on this machine.

    .venv/bin/python benchmarks/publish_benchmark.py [--records N] [--seed S]
                                                     [--s3-latency-ms MS]

One run starts the demo stand-ins (``emulators.stack.Stack``, with moto's S3 server in
its own process and the Socrata emulator in a thread). It stores N generated "signals"
records (``generate_app``) under ``bench-dev/object_1/`` with the app's metadata, creates
the empty dataset ``bnch-0001`` in the Socrata emulator, and measures:

1. ceiling: a bare thread pool (``lib.clients.s3.UPLOAD_WORKERS`` threads, one shared
   ``lib.clients.s3.s3_client()``) GETting the N record objects. The keys come from the
   generated records, so there is no listing at all. It runs once just before and once
   just after the project's full publish (moto's pace drifts); the goal uses the mean;
2. baseline, built like the original scripts: one listing, then every object fetched one
   after another (``get_object`` on one plain boto3 client), the same formatting as the
   project (``lib.records.format_records`` and the publisher's ``_row``), then
   sodapy upserts of 5,000 rows each into a fresh copy of the dataset (``bnch-0002``);
3. the project's full publish into the empty dataset (``get_publisher("socrata")`` in
   this process). The dataset must then hold exactly N rows whose ids are the ids in S3,
   and it must equal the baseline's dataset;
4. the project's incremental publish after 100 records were rewritten in S3 with new
   content, with ``date`` = the ISO time just before the rewrite. It must upsert exactly
   100 rows, and the dataset must show the new values.

It then prints the ratios against the goals with PASS/FAIL. Not part of the tests.
The seeding writes no snapshot, so the full publish of 3. reads record by record (it
goes through ``lib.snapshot.read_stored``, which finds no snapshot).

    .venv/bin/python benchmarks/publish_benchmark.py --snapshot [--records N]
        [--s3-latency-ms MS] [--also-latency-ms MS] [--papermill]

measures issue 12's goal instead (N=20,000 and 0 ms by default): the container's snapshot
is built by ``lib.snapshot.Builder`` and uploaded, as a full sync leaves it. Then, at
0 ms and again at ``--also-latency-ms`` (default 20), three full publishes into the
emptied dataset: from the snapshot, record by record (the snapshot object deleted, so
``read_stored`` reads every record with its own GET: the old full publish), from the
snapshot again. The published rows must be identical in all three; the goal is
record-by-record time / the mean of the two snapshot runs >= 5x at 0 ms (exit status 1
when not). ``--papermill`` adds both full publishes through the notebook
``upsert_knack_container_to_socrata`` (papermill wall). Last, at each latency, an
incremental publish of 10 records changed of N (it reads the listing and 10 records,
never the snapshot).

The S3 it measures against is a remote one: ``--s3-latency-ms`` (default 20) adds that
much sleep before every S3 request of the clients created after the setup, in the thread
making it, as the network round trip to S3 would. AWS gives the median latency of small
S3 requests as "tens of milliseconds" (whitepaper "Best Practices Design Patterns:
Optimizing Amazon S3 Performance", timeouts and retries); 20 ms is the low end of that.
Without it (``--s3-latency-ms 0``) moto answers in a few milliseconds of its own CPU on
loopback, so the run measures moto's CPU rather than the publish's design: there even the
bare ceiling is under 2x the sequential baseline, and the goals of the issue can't all be
met by any publisher (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests
from _common import APP, CONTAINER, ENV, quiet, write_params
from sodapy import Socrata

import lib.clients.socrata as socrata_client
import lib.publish.socrata as socrata_publisher
from emulators.knack import generate_app
from emulators.stack import Stack, socrata_columns
from lib import snapshot
from lib.clients import s3 as store
from lib.clients import s3_records
from lib.clients.app_store import AppStore
from lib.publish import get_publisher
from lib.publish.values import ValueCheck
from lib.records import format_records
from lib.snapshot import stored as snapshot_stored

LOCATION = "field_3"
NOTES = "field_8"  # "Notes": the field the incremental run's changes rewrite
NOTES_COLUMN = "notes"
PREFIX = f"{APP}-{ENV}/{CONTAINER}/"
DATASET = "bnch-0001"
BASELINE_DATASET = "bnch-0002"
BASELINE_CHUNK = 5000  # rows per upsert in the original scripts
CHANGED = 100  # records rewritten before the incremental run
REMOTE_S3_LATENCY_MS = 20.0  # a round trip to S3: AWS gives "tens of milliseconds"

# the goals
CEILING_SHARE = 0.80
BASELINE_FACTOR = 2.0
INCREMENTAL_SHARE = 0.20

QUIET_LOGGERS = (
    "werkzeug",
    "botocore",
    "boto3",
    "urllib3",
    "moto",
    "s3transfer",
    "sodapy",
    "lib",
    "emulators",
)


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    phase: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed(fn: Any) -> tuple[Any, float]:
    with quiet():
        t0 = time.perf_counter()
        result = fn()
        return result, time.perf_counter() - t0


SPLITS = [
    (AppStore, "read_records", "S3 read"),
    (snapshot, "read_stored", "S3 read"),  # a full run's read (it never calls the above)
    (socrata_publisher, "format_records", "format"),
    (socrata_publisher, "_upsert", "upserts"),
    (socrata_publisher, "_remove_gone", "gone check"),
]
# the snapshot phase's: inside read_stored too (its rest is the MD5 check, json.loads, sort)
READ_SPLITS = [
    (AppStore, "read_records", "S3 read (since)"),
    (snapshot, "read_stored", "read_stored"),
    (AppStore, "list_records", "listing"),
    (snapshot_stored, "read_table", "snapshot GET+Parquet"),  # as read_stored calls them
    (snapshot_stored, "read_bodies", "GETs one by one"),
    (socrata_publisher, "format_records", "format"),
    (socrata_publisher, "_upsert", "upserts"),
    (socrata_publisher, "_remove_gone", "gone check"),
]
GENERATORS = {"read_bodies"}  # timed while they are iterated, not when they are made


@contextlib.contextmanager
def split_times(into: dict[str, float], patched: list | None = None) -> Iterator[None]:
    """Time the publisher's steps (S3 read, formatting, upserts) by wrapping the functions
    it calls; the wrappers cost microseconds per call. ``lib`` is not edited."""
    patched = SPLITS if patched is None else patched
    originals = [getattr(owner, name) for owner, name, _ in patched]

    def add(label: str, t0: float) -> None:
        into[label] = into.get(label, 0.0) + time.perf_counter() - t0

    def wrap(fn: Any, label: str) -> Any:
        if fn.__name__ in GENERATORS:

            def generator(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                it = fn(*args, **kwargs)
                add(label, t0)
                while True:
                    t0 = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        add(label, t0)
                        return
                    add(label, t0)
                    yield item

            return generator

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                add(label, t0)

        return wrapper

    for (owner, name, label), fn in zip(patched, originals, strict=True):
        setattr(owner, name, wrap(fn, label))
    try:
        yield
    finally:
        for (owner, name, _), fn in zip(patched, originals, strict=True):
            setattr(owner, name, fn)


def splits_note(splits: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in splits.items())


# --------------------------------------------------------------------------- the stack


def seed_s3(app_id: str, metadata: dict, records: list[dict]) -> None:
    """The app's metadata and the N records in S3, as upload_metadata and the sync leave
    them."""
    target = AppStore(app_name=APP, env=ENV)
    target.put_json(target.metadata_key(app_id), metadata)
    result = target.put_records(CONTAINER, records, known_etags={})
    assert not result.failed and len(result.written) == len(records), result.failed


S3_LATENCY = {"ms": 0.0}  # what add_s3_latency's handler sleeps; set_s3_latency changes it


def add_s3_latency(ms: float) -> None:
    """Sleep ``ms`` before each S3 request of every boto3 client created from now on (they
    copy the default session's event handlers when they are created); ``set_s3_latency``
    changes it later for all of them."""
    S3_LATENCY["ms"] = ms

    def sleep(**_: Any) -> None:
        if S3_LATENCY["ms"]:
            time.sleep(S3_LATENCY["ms"] / 1000)

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-send.s3", sleep)


def set_s3_latency(ms: float) -> None:
    S3_LATENCY["ms"] = ms


def s3_ids(stack: Stack) -> set[str]:
    return {k[len(PREFIX) :].removesuffix(".json") for k in stack.s3_keys(PREFIX)}


def dataset_ids(stack: Stack, resource_id: str) -> list[str]:
    return [r["id"] for r in stack.socrata.rows(resource_id)]


# --------------------------------------------------------------------------- the phases


def run_ceiling(stack: Stack, records: list[dict], label: str) -> Row:
    keys = [f"{PREFIX}{r['id']}.json" for r in records]  # known: no listing
    client = store.s3_client()

    def get(key: str) -> bytes:
        return client.get_object(Bucket=stack.bucket, Key=key)["Body"].read()

    def run() -> list[bytes]:
        with ThreadPoolExecutor(store.UPLOAD_WORKERS) as pool:
            return list(pool.map(get, keys))

    bodies, seconds = timed(run)
    assert [json.loads(b)["id"] for b in bodies] == [r["id"] for r in records]
    return Row(
        f"ceiling {label}: bare GETs, {store.UPLOAD_WORKERS} thr, 1 client",
        len(records),
        seconds,
        note="GETs only; keys known, no listing",
    )


def soda_client(stack: Stack) -> Socrata:
    """sodapy as the publisher sets it up (timeout, http:// adapter for the emulator)."""
    return Socrata(
        urlsplit(stack.socrata.url).netloc,
        stack.socrata_app_token,
        username=stack.socrata_key_id,
        password=stack.socrata_key_secret,
        timeout=socrata_client.TIMEOUT,
        session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()},
    )


def run_baseline(stack: Stack, app_id: str, n: int) -> Row:
    splits: dict[str, float] = {}

    def step(label: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        result = fn()
        splits[label] = time.perf_counter() - t0
        return result

    def run() -> tuple[int, int]:
        client = boto3.client("s3")  # one default client, as the original scripts

        def fetch() -> tuple[dict, list[dict]]:
            metadata = json.loads(
                client.get_object(Bucket=stack.bucket, Key=f"{APP}-{ENV}/{app_id}.json")[
                    "Body"
                ].read()
            )
            keys = [
                o["Key"]
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=stack.bucket, Prefix=PREFIX
                )
                for o in page.get("Contents", [])
            ]
            records = [
                json.loads(client.get_object(Bucket=stack.bucket, Key=k)["Body"].read())
                for k in keys
            ]
            return metadata, records

        metadata, records = step("list + sequential GETs", fetch)
        soda = soda_client(stack)
        try:
            columns = {
                c["fieldName"]: c.get("dataTypeName", "text")
                for c in soda.get_metadata(BASELINE_DATASET)["columns"]
            }

            def build() -> list[dict]:
                formatted = format_records(metadata, CONTAINER, records, location_field=LOCATION)
                scratch = socrata_publisher.SocrataPublish(
                    app_name=APP, env=ENV, container=CONTAINER, resource_id=BASELINE_DATASET
                )
                check = ValueCheck("column {}")
                return [socrata_publisher._row(f, columns, check, scratch) for f in formatted]

            rows = step("format", build)

            def upsert() -> tuple[int, int]:
                created = errors = 0
                for start in range(0, len(rows), BASELINE_CHUNK):
                    answer = soda.upsert(BASELINE_DATASET, rows[start : start + BASELINE_CHUNK])
                    created += int(answer.get("Rows Created", 0))
                    errors += int(answer.get("Errors", 0))
                return created, errors

            return step("upserts", upsert)
        finally:
            soda.close()

    (created, errors), seconds = timed(run)
    assert (created, errors) == (n, 0), (created, errors)
    assert len(dataset_ids(stack, BASELINE_DATASET)) == n
    return Row(
        f"baseline: sequential GETs, 1 client; upserts of {BASELINE_CHUNK:,}",
        n,
        seconds,
        note=splits_note(splits),
    )


def timed_full_publish(
    stack: Stack, n: int, patched: list | None = None
) -> tuple[Any, float, dict[str, float]]:
    """A full publish of the N stored records into the empty dataset, timed (``patched``:
    split_times' steps), with its checks: N read and created, nothing else, and the
    dataset's ids S3's."""
    publish = get_publisher("socrata")
    splits: dict[str, float] = {}
    with split_times(splits, patched):
        result, seconds = timed(
            lambda: publish(app_name=APP, container=CONTAINER, env=ENV, date=None)
        )
    assert result.ok, result.errors
    assert result.mode == "full", result.summary()
    assert (result.read, result.created, result.updated, len(result.deleted)) == (n, n, 0, 0), (
        result.summary()
    )
    assert not result.dropped_fields, result.dropped_fields
    ids = dataset_ids(stack, DATASET)
    assert len(ids) == n, f"the dataset holds {len(ids)} rows, not {n}"
    assert set(ids) == s3_ids(stack), "the dataset's ids are not S3's ids"
    return result, seconds, splits


def run_full(stack: Stack, n: int) -> Row:
    assert dataset_ids(stack, DATASET) == [], "the dataset is not empty"
    result, seconds, splits = timed_full_publish(stack, n)
    return Row(
        "project full publish, empty dataset",
        n,
        seconds,
        note=f"{result.requests} Socrata requests; {splits_note(splits)}",
    )


def rewrite_records(records: list[dict], count: int = CHANGED) -> tuple[dt.datetime, list[dict]]:
    """Rewrite ``count`` records in S3 with new notes; returns the time just before."""
    since = dt.datetime.now(dt.UTC)
    # S3 (and moto) list LastModified to the whole second: a write in the same second as
    # `since` would list as before it. So the rewrite starts in the next second.
    time.sleep(1.05 - since.microsecond / 1e6)
    step = len(records) // count
    changed = []
    for i in range(count):
        note = f"<p>benchmark change {i} at {since.isoformat()}</p>"
        changed.append({**records[i * step], NOTES: note, f"{NOTES}_raw": note})
    result = AppStore(app_name=APP, env=ENV).put_records(CONTAINER, changed)
    assert len(result.written) == count, (len(result.written), result.failed)
    return since, changed


def run_incremental(stack: Stack, records: list[dict]) -> Row:
    publish = get_publisher("socrata")
    since, changed = rewrite_records(records)
    splits: dict[str, float] = {}
    with split_times(splits):
        result, seconds = timed(
            lambda: publish(app_name=APP, container=CONTAINER, env=ENV, date=since.isoformat())
        )
    assert result.ok, result.errors
    assert result.mode == "incremental", result.summary()
    assert result.read == CHANGED, result.summary()
    assert result.created + result.updated == CHANGED, result.summary()
    rows = {r["id"]: r for r in stack.socrata.rows(DATASET)}
    assert len(rows) == len(records), f"the dataset holds {len(rows)} rows"
    for i, record in enumerate(changed):
        shown = rows[record["id"]].get(NOTES_COLUMN, "")
        assert f"benchmark change {i} at" in shown, f"{record['id']} stale: {shown!r}"
    return Row(
        f"project incremental, {CHANGED} changed",
        result.read,
        seconds,
        note=f"created {result.created}, updated {result.updated}; "
        f"{result.requests} Socrata requests; {splits_note(splits)}",
    )


# --------------------------------------------------------------------------- --snapshot
# Issue 12: a full publish reads the container's Parquet snapshot (lib.snapshot.read_stored)
# instead of one GET per record. Both ways, side by side in one run.

SNAPSHOT_RECORDS = 20_000  # the goal's N
SNAPSHOT_FACTOR = 5.0  # the goal: from the snapshot >= 5x faster than record by record
SNAPSHOT_GOAL_LATENCY_MS = 0.0  # ... at 0 ms of added S3 latency
SNAPSHOT_CHANGED = 10  # records changed before the incremental runs
PAPERMILL_NOTEBOOK = "upsert_knack_container_to_socrata"
READ_NOTE = re.compile(r"read (\d+) records: (\d+) from the snapshot .*?, (\d+) one by one")


def build_snapshot(app: dict, records: list[dict]) -> float:
    """The container's snapshot in S3, built by lib.snapshot's own Builder from the
    records as stored (what a successful full sync writes); returns the seconds it took."""
    t0 = time.perf_counter()
    target = AppStore(app_name=APP, env=ENV)
    builder = snapshot.Builder(snapshot.Spec.from_metadata(app, CONTAINER), app)
    try:
        for start in range(0, len(records), snapshot.ROW_GROUP_ROWS):
            builder.add_records(records[start : start + snapshot.ROW_GROUP_ROWS])
        snapshot.upload(target, CONTAINER, builder.close())
        assert builder.rows == len(records), builder.rows
    finally:
        builder.discard()
    return time.perf_counter() - t0


def snapshot_object_key() -> str:
    return snapshot.snapshot_key(AppStore(app_name=APP, env=ENV), CONTAINER)


def hide_snapshot(stack: Stack) -> bytes:
    """Delete the snapshot object (kept in memory): read_stored then reads record by
    record, which is the old full publish (one GET per record after one listing)."""
    s3, key = stack.s3(), snapshot_object_key()
    body = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    s3.delete_object(Bucket=stack.bucket, Key=key)
    return body


def restore_snapshot(stack: Stack, body: bytes) -> None:
    stack.s3().put_object(Bucket=stack.bucket, Key=snapshot_object_key(), Body=body)


def read_note(notes: list[str]) -> tuple[int, int, int]:
    """(read, from the snapshot, one by one) from read_stored's note."""
    for note in notes:
        m = READ_NOTE.search(note)
        if m:
            return int(m[1]), int(m[2]), int(m[3])
    raise AssertionError(f"no read note in {notes}")


def read_splits_note(splits: dict[str, float]) -> str:
    out = dict(splits)
    if "read_stored" in out:  # what read_stored does beyond its S3 requests
        total = out.pop("read_stored")
        out["md5+json+sort"] = total - sum(
            out.get(k, 0.0) for k in ("listing", "snapshot GET+Parquet", "GETs one by one")
        )
        out = {"read": total, **out}
    return splits_note({k: v for k, v in out.items() if v >= 0.005 or k == "read"})


def run_snapshot_full(
    stack: Stack, columns: list[dict], n: int, *, from_snapshot: bool, label: str
) -> tuple[Row, list[dict], dict[str, float]]:
    """A full publish into the emptied dataset; checks how read_stored read the records."""
    stack.socrata.add_dataset(DATASET, columns, name="bench signals")  # empty again
    result, seconds, splits = timed_full_publish(stack, n, READ_SPLITS)
    read, snap, one_by_one = read_note(result.notes)
    want = (n, n, 0) if from_snapshot else (n, 0, n)
    assert (read, snap, one_by_one) == want, (
        f"read_stored read {read}: {snap} from the snapshot, {one_by_one} one by one; not {want}"
    )
    rows = stack.socrata.rows(DATASET)
    return (
        Row(
            label,
            n,
            seconds,
            note=f"{snap} from the snapshot, {one_by_one} one by one; {read_splits_note(splits)}",
        ),
        rows,
        splits,
    )


def run_snapshot_incremental(stack: Stack, records: list[dict], label: str) -> Row:
    publish = get_publisher("socrata")
    since, changed = rewrite_records(records, SNAPSHOT_CHANGED)
    splits: dict[str, float] = {}
    with split_times(splits, READ_SPLITS):
        result, seconds = timed(
            lambda: publish(app_name=APP, container=CONTAINER, env=ENV, date=since.isoformat())
        )
    assert result.ok, result.errors
    assert result.mode == "incremental", result.summary()
    assert result.read == SNAPSHOT_CHANGED, result.summary()
    assert (result.created, result.updated) == (0, SNAPSHOT_CHANGED), result.summary()
    assert "read_stored" not in splits, "the incremental run read the snapshot"
    rows = {r["id"]: r for r in stack.socrata.rows(DATASET)}
    assert len(rows) == len(records), f"the dataset holds {len(rows)} rows"
    for i, record in enumerate(changed):
        shown = rows[record["id"]].get(NOTES_COLUMN, "")
        assert f"benchmark change {i} at {since.isoformat()}" in shown, (
            f"{record['id']} stale: {shown!r}"
        )
    return Row(
        label,
        result.read,
        seconds,
        note=f"updated {result.updated}; {result.requests} Socrata requests; "
        f"{read_splits_note(splits)}",
    )


def run_papermill_full(
    stack: Stack, columns: list[dict], n: int, label: str
) -> tuple[Row, list[dict]]:
    """The notebook through papermill (lib.reports.run_notebook), date None: wall clock
    including the kernel's start and the report saved to S3. The kernel's S3 clients get
    no added latency."""
    from lib import reports

    stack.socrata.add_dataset(DATASET, columns, name="bench signals")
    with quiet():
        t0 = time.perf_counter()
        run = reports.run_notebook(PAPERMILL_NOTEBOOK, app_name=APP, env=ENV, container=CONTAINER)
        seconds = time.perf_counter() - t0
    assert run.ok, run.error
    summary = run.summary
    assert summary["mode"] == "full", summary
    assert (summary["read"], summary["created"], summary["deleted"]) == (n, n, 0), summary
    rows = stack.socrata.rows(DATASET)
    assert len(rows) == n
    return Row(label, n, seconds, note=f"publish's own seconds {summary['seconds']:.2f}"), rows


def read_costs(stack: Stack) -> str:
    """The CPU of read_stored's own loop over the snapshot, measured apart: MD5 of every
    record's text, then json.loads of every one (what the rest of read_stored is)."""
    table = snapshot.read_table(
        AppStore(app_name=APP, env=ENV), CONTAINER, columns=["id", "record"]
    )
    t0 = time.perf_counter()
    texts = table.column("record").to_pylist()
    t1 = time.perf_counter()
    for text in texts:
        s3_records.md5_hex(text.encode())
    t2 = time.perf_counter()
    for text in texts:
        json.loads(text)
    t3 = time.perf_counter()
    size = sum(len(t) for t in texts)
    return (
        f"{len(texts):,} records, {size / 2**20:.1f} MiB of JSON: to_pylist {t1 - t0:.2f} s, "
        f"MD5 {t2 - t1:.2f} s, json.loads {t3 - t2:.2f} s"
    )


def snapshot_phase(
    stack: Stack, app: dict, records: list[dict], columns: list[dict], args: argparse.Namespace
) -> int:
    n = len(records)
    latencies = [args.s3_latency_ms]
    if args.also_latency_ms is not None and args.also_latency_ms != args.s3_latency_ms:
        latencies.append(args.also_latency_ms)
    with quiet():
        built = build_snapshot(app, records)
    add_s3_latency(0.0)
    print(
        f"  snapshot built by lib.snapshot.Builder and uploaded ({built:.1f} s, setup)", flush=True
    )
    rows: list[Row] = []
    results: dict[float, tuple[Row, Row, Row]] = {}
    for ms in latencies:
        set_s3_latency(ms)
        before, rows_before, _ = run_snapshot_full(
            stack, columns, n, from_snapshot=True, label=f"{ms:g} ms: full, from the snapshot (1)"
        )
        print(f"  {ms:g} ms: from the snapshot done ({before.seconds:.1f} s)", flush=True)
        body = hide_snapshot(stack)
        try:
            old, rows_old, _ = run_snapshot_full(
                stack,
                columns,
                n,
                from_snapshot=False,
                label=f"{ms:g} ms: full, record by record (no snapshot)",
            )
        finally:
            restore_snapshot(stack, body)
        print(f"  {ms:g} ms: record by record done ({old.seconds:.1f} s)", flush=True)
        after, rows_after, _ = run_snapshot_full(
            stack, columns, n, from_snapshot=True, label=f"{ms:g} ms: full, from the snapshot (2)"
        )
        print(f"  {ms:g} ms: from the snapshot again ({after.seconds:.1f} s)", flush=True)
        assert rows_before == rows_old == rows_after, (
            "the rows published from the snapshot differ from those read record by record"
        )
        rows += [before, old, after]
        results[ms] = (before, old, after)
    pm: tuple[Row, Row] | None = None
    if args.papermill:
        set_s3_latency(0.0)
        pm_snap, pm_rows_snap = run_papermill_full(
            stack, columns, n, "papermill: full, from the snapshot"
        )
        print(f"  papermill from the snapshot done ({pm_snap.seconds:.1f} s)", flush=True)
        body = hide_snapshot(stack)
        try:
            pm_old, pm_rows_old = run_papermill_full(
                stack, columns, n, "papermill: full, record by record"
            )
        finally:
            restore_snapshot(stack, body)
        print(f"  papermill record by record done ({pm_old.seconds:.1f} s)", flush=True)
        assert pm_rows_snap == pm_rows_old == rows_before, "papermill's rows differ"
        rows += [pm_snap, pm_old]
        pm = (pm_snap, pm_old)
    increments: dict[float, Row] = {}
    for ms in latencies:
        set_s3_latency(ms)
        inc = run_snapshot_incremental(
            stack, records, f"{ms:g} ms: incremental, {SNAPSHOT_CHANGED} changed of {n:,}"
        )
        print(f"  {ms:g} ms: incremental done ({inc.seconds:.2f} s)", flush=True)
        rows.append(inc)
        increments[ms] = inc
    set_s3_latency(0.0)
    costs = read_costs(stack)
    print()
    print_table(rows)
    print()
    print(
        "checked: every full publish read N and created N into an emptied dataset, "
        "read_stored's note said N from the snapshot / N one by one as intended; the "
        "dataset's ids are S3's; the rows are identical from the snapshot and record by "
        "record (at each latency" + (", and through papermill" if pm else "") + "); each "
        f"incremental read and updated exactly {SNAPSHOT_CHANGED}, new notes shown, "
        "without reading the snapshot"
    )
    print(f"read_stored's loop, measured apart: {costs}")
    print()
    status = 0
    for ms, (before, old, after) in results.items():
        snap_s = (before.seconds + after.seconds) / 2
        ratio = old.seconds / snap_s
        inc = increments[ms]
        line = (
            f"{ms:g} ms: record by record / from the snapshot {ratio:5.2f}x  "
            f"({old.seconds:.2f} s vs {snap_s:.2f} s, the mean of the snapshot runs "
            f"{before.seconds:.2f} and {after.seconds:.2f}; goal >= "
            f"{SNAPSHOT_FACTOR:g}x at {SNAPSHOT_GOAL_LATENCY_MS:g} ms)"
        )
        if ms == SNAPSHOT_GOAL_LATENCY_MS:
            ok = ratio >= SNAPSHOT_FACTOR
            status |= 0 if ok else 1
            print(f"{'PASS' if ok else 'FAIL'}  {line}")
        else:
            print(f"      {line} (not the goal's latency)")
        print(
            f"      {ms:g} ms: incremental ({SNAPSHOT_CHANGED} of {n:,}) {inc.seconds:.2f} s "
            f"= {inc.seconds / snap_s:.2f} of the full publish from the snapshot"
        )
    if pm:
        print(
            f"      papermill wall: record by record / from the snapshot "
            f"{pm[1].seconds / pm[0].seconds:5.2f}x ({pm[1].seconds:.2f} s vs "
            f"{pm[0].seconds:.2f} s)"
        )
    if n != SNAPSHOT_RECORDS:
        print(f"note: the goal is stated for N={SNAPSHOT_RECORDS:,}; this run has N={n:,}")
    return status


# --------------------------------------------------------------------------- output


def print_table(rows: list[Row]) -> None:
    head = ("phase", "rows", "seconds", "rows/s", "note")
    lines = [(r.phase, f"{r.rows:,}", f"{r.seconds:,.2f}", f"{r.rate:,.1f}", r.note) for r in rows]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 4) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help=f"N, records in S3 (default 5000; {SNAPSHOT_RECORDS} with --snapshot)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated app")
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        default=None,
        help="simulated round trip added to every timed S3 request "
        f"(default {REMOTE_S3_LATENCY_MS:g}, 0 with --snapshot; 0 "
        "measures moto's own CPU)",
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="instead of the phases above: the full publish from the "
        "container's snapshot against record by record, side by side "
        f"(issue 12's goal: >= {SNAPSHOT_FACTOR:g}x at 0 ms), and an "
        f"incremental publish of {SNAPSHOT_CHANGED} changed records",
    )
    parser.add_argument(
        "--also-latency-ms",
        type=float,
        default=REMOTE_S3_LATENCY_MS,
        help="with --snapshot: the same comparison again at this latency "
        f"(default {REMOTE_S3_LATENCY_MS:g}; -1: not)",
    )
    parser.add_argument(
        "--papermill",
        action="store_true",
        help=f"with --snapshot: also both full publishes through papermill "
        f"({PAPERMILL_NOTEBOOK}, at 0 ms)",
    )
    args = parser.parse_args(argv)
    if args.records is None:
        args.records = SNAPSHOT_RECORDS if args.snapshot else 5000
    if args.s3_latency_ms is None:
        args.s3_latency_ms = SNAPSHOT_GOAL_LATENCY_MS if args.snapshot else REMOTE_S3_LATENCY_MS
    if args.also_latency_ms is not None and args.also_latency_ms < 0:
        args.also_latency_ms = None
    n = args.records
    if n < CHANGED:
        parser.error(f"--records must be at least {CHANGED}")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)

    t_setup = time.perf_counter()
    metadata, data = generate_app(n, seed=args.seed)
    records = data[CONTAINER]
    app = metadata["application"]  # what upload_metadata stores
    app_id = app["id"]
    columns = socrata_columns(app, CONTAINER, location_field=LOCATION)

    workdir = tempfile.TemporaryDirectory(prefix="publish-bench-")
    params_dir = Path(workdir.name) / "params"
    params_dir.mkdir()
    write_params(
        params_dir,
        app_id,
        writer="publish_benchmark.py",
        extra=f"    socrata:\n      resource_id: {DATASET}\n      location_field: {LOCATION}\n",
    )
    stack = Stack(params_dir=str(params_dir), moto_process=True)
    cwd = os.getcwd()
    rows: list[Row] = []
    try:
        stack.start()
        stack.apply_env()
        os.chdir(workdir.name)
        with quiet():
            seed_s3(app_id, app, records)
        if args.snapshot:
            print(
                f"publish benchmark --snapshot: N={n:,} records (seed {args.seed}), "
                f"{os.cpu_count()} CPUs, Python {platform.python_version()}, moto S3 in a "
                "process, Socrata emulator in a thread, chunk_size 1000, added S3 latency "
                + " then ".join(
                    f"{ms:g} ms"
                    for ms in dict.fromkeys([args.s3_latency_ms, args.also_latency_ms])
                    if ms is not None
                )
                + f"; setup {time.perf_counter() - t_setup:.1f} s",
                flush=True,
            )
            return snapshot_phase(stack, app, records, columns, args)
        if args.s3_latency_ms:
            add_s3_latency(args.s3_latency_ms)
        stack.socrata.add_dataset(DATASET, columns, name="bench signals")
        stack.socrata.add_dataset(BASELINE_DATASET, columns, name="bench signals (baseline)")
        print(
            f"publish benchmark: N={n:,} records (seed {args.seed}), {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, moto S3 in a process, Socrata emulator in "
            f"a thread, chunk_size 1000, added S3 latency {args.s3_latency_ms:g} ms; "
            f"setup {time.perf_counter() - t_setup:.1f} s",
            flush=True,
        )
        rows.append(run_ceiling(stack, records, "before"))
        print(f"  ceiling before done ({rows[-1].seconds:.1f} s)", flush=True)
        full = run_full(stack, n)
        print(f"  full publish done ({full.seconds:.1f} s)", flush=True)
        rows.append(run_ceiling(stack, records, "after"))
        rows.append(full)
        baseline = run_baseline(stack, app_id, n)
        rows.insert(2, baseline)
        print(f"  baseline done ({baseline.seconds:.1f} s)", flush=True)
        assert stack.socrata.rows(DATASET) == stack.socrata.rows(BASELINE_DATASET), (
            "the project's dataset differs from the baseline's"
        )
        incremental = run_incremental(stack, records)
        rows.append(incremental)
        print(f"  incremental done ({incremental.seconds:.1f} s)\n", flush=True)
    finally:
        os.chdir(cwd)
        stack.stop()
        workdir.cleanup()

    print_table(rows)
    ceiling_rate = (rows[0].rate + rows[1].rate) / 2
    print()
    print(
        f"ceiling rows/s = mean of the runs before and after the full publish = {ceiling_rate:.1f}"
    )
    print(
        f"ceiling / baseline = {ceiling_rate / baseline.rate:.2f}x: the most a publisher that "
        "GETs every record could gain over the baseline against this S3"
    )
    print(
        f"S3 model: {args.s3_latency_ms:g} ms round trip per request"
        + (
            " (a remote S3; --s3-latency-ms 0 measures moto's own CPU instead, where the "
            "goals conflict: see benchmarks/README.md)"
            if args.s3_latency_ms
            else " (moto's own CPU: see benchmarks/README.md for why the goals conflict here)"
        )
    )
    print(
        "checked: full publish read N, created N, deleted 0; dataset ids == S3 ids; "
        "dataset == baseline's dataset; incremental read and upserted exactly "
        f"{CHANGED}, new notes shown"
    )
    print()
    checks = [
        (
            f"full publish / ceiling        {full.rate / ceiling_rate:6.2f}   (goal >= "
            f"{CEILING_SHARE:.2f}; {full.rate:.1f} vs {ceiling_rate:.1f} rows/s)",
            full.rate >= CEILING_SHARE * ceiling_rate,
        ),
        (
            f"full publish / baseline       {full.rate / baseline.rate:6.2f}x  (goal >= "
            f"{BASELINE_FACTOR:.0f}x; {full.rate:.1f} vs {baseline.rate:.1f} rows/s)",
            full.rate >= BASELINE_FACTOR * baseline.rate,
        ),
        (
            f"incremental / full time       {incremental.seconds / full.seconds:6.2f}   (goal < "
            f"{INCREMENTAL_SHARE:.2f}; {incremental.seconds:.2f} s vs {full.seconds:.2f} s)",
            incremental.seconds < INCREMENTAL_SHARE * full.seconds,
        ),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
