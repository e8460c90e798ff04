"""Fault matrix: a full sync of a few thousand records under each Knack and S3 fault, and
full publishes under each mass-delete guard case; PASS when nothing is lost.

    python benchmarks/fault_matrix.py [--records 2500] [--only TEXT,...]

For each sync case Knack first changes (records edited, one added, one deleted), the fault
is set, a full sync runs, and if it fails (as it must under an outage) the fault is cleared
and it runs once more. PASS: S3 equals Knack (same ids, byte-equal records) after at most
one rerun, no record Knack still had was ever deleted from S3, and the first run's outcome
is the expected one, and the snapshot was never presented as fresh (no stale mark) while
it differed from S3's records, after the first run or the rerun. The deletion mid-paging
case needs its one rerun by nature: the record deleted after it was listed is removed by
the next full run, once Knack confirms it. Two cases are not faults of a service: objects
in the container's prefix that are not records (a note, an upper-case stale copy of a
record, a copy in a sub-folder, and a record object holding another record's JSON), and
two full syncs at once (the scheduled run is held just before it writes its snapshot while
a manual run goes from start to end, so the scheduled run's older snapshot lands last).

Publish cases run the real publishers against the Socrata and ArcGIS emulators; PASS when
each destination holds what the guard promises, and no row or feature is anything but a
stored record with its own values (the objects that are not records are still there).
Runs in process (the library calls the notebooks make) against moto's server behind an S3
fault proxy and the Knack emulator. ``--only`` runs the cases whose names contain one of
the comma-separated texts (``--only stray,overlap``), and the publish cases only when one
of them matches "publish".
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from _common import APP, CONTAINER, ENV, quiet, write_params

from emulators.knack import Faults, generate_app
from emulators.s3_faults import S3FaultProxy, S3Faults
from emulators.stack import Stack, agol_fields, socrata_columns
from lib import sync
from lib.clients.app_store import AppStore
from lib.clients.s3_records import RECORD_NAME, dumps_stable, md5_hex
from lib.errors import KnackNbError
from lib.metadata import upload_metadata
from lib.publish import get_publisher
from lib.snapshot import io as snapshot  # its upload, which a case holds
from lib.state import stale_marks

DATASET = "faul-tmtx"
SERVICE = "fa017a7e1c2d4e5f8a9b0c1d2e3f4a5b"
LOCATION = "field_3"
QUIET_LOGGERS = ("lib", "emulators", "botocore", "urllib3", "werkzeug", "moto", "arcgis", "sodapy")


@dataclass
class Outcome:
    case: str
    first: str  # "ok" or the first error, shortened
    reruns: int
    lost: int  # Knack records missing from S3 or different there
    extra: int  # S3 records Knack does not have
    wrongly_deleted: int  # records Knack still had, deleted from S3 by a run
    confirmations: int
    seconds: float
    passed: bool
    fresh_but_old: int = 0  # times the snapshot had no stale mark yet differed from S3
    problem: str = ""  # what a case's own check found wrong
    stuck: int = 0  # marks left "running" by a run that could not write its end (aged)


class Matrix:
    def __init__(self, stack: Stack, proxy: S3FaultProxy, app_id: str) -> None:
        self.stack, self.proxy, self.app_id = stack, proxy, app_id
        self.knack = stack.knack
        self.serial = 0

    # --- state of both sides ------------------------------------------------------------

    def knack_records(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.knack.records(self.app_id, CONTAINER)}

    def s3_records(self) -> dict[str, str]:
        """Record id -> ETag (the MD5 of its body) in S3, from one listing straight to moto
        (not through the proxy); only record objects (``<24 lower-case hex>.json``)."""
        return {
            name.removesuffix(".json"): etag
            for name, etag in self.s3_objects().items()
            if RECORD_NAME.match(name)
        }

    def s3_objects(self) -> dict[str, str]:
        """Every object under the container's prefix: name (after the prefix) -> ETag."""
        return {k[len(PREFIX) :]: etag for k, etag in self.listing(PREFIX).items()}

    def listing(self, prefix: str) -> dict[str, str]:
        out = {}
        pages = (
            self.stack.s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.stack.bucket, Prefix=prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"].strip('"')
        return out

    def marks(self) -> list[str]:
        """The snapshot's stale marks (every run's, and the single mark of earlier versions)."""
        return list(self.listing(f"_state/{APP}-{ENV}/{CONTAINER}/snapshot"))

    def age_stuck_marks(self) -> int:
        """Marks still ``running`` between cases (no run is): left by a run that failed
        while S3 refused its writes, so it could not write that it failed; such a mark
        counts as a live run's until its heartbeat is ``LEASE`` old. Age them past it, as
        ten minutes would, so the next case starts as it would then; returns how many."""
        s3, aged = self.stack.s3(), 0
        for key in self.marks():
            body = json.loads(s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read())
            if isinstance(body, dict) and body.get("status") == stale_marks.RUNNING:
                when = dt.datetime.now(dt.UTC) - stale_marks.LEASE - dt.timedelta(minutes=1)
                body["alive_at"] = when.isoformat()
                s3.put_object(Bucket=self.stack.bucket, Key=key, Body=dumps_stable(body))
                aged += 1
        return aged

    def fresh_but_old(self) -> bool:
        """Whether the snapshot has no stale mark yet its records are not S3's."""
        if self.marks():
            return False
        try:
            body = (
                self.stack.s3()
                .get_object(
                    Bucket=self.stack.bucket, Key=f"_snapshots/{APP}-{ENV}/{CONTAINER}.parquet"
                )["Body"]
                .read()
            )
        except self.stack.s3().exceptions.NoSuchKey:
            return False  # no snapshot yet: nothing is presented
        table = pq.read_table(io.BytesIO(body), columns=["id", "record"])
        held = {
            rid: md5_hex(text.encode())
            for rid, text in zip(
                table.column("id").to_pylist(), table.column("record").to_pylist(), strict=True
            )
        }
        return len(held) != table.num_rows or held != self.s3_records()

    def churn(self) -> None:
        """What Knack does between runs: 3 records edited, one added, one deleted."""
        records = sorted(self.knack_records().values(), key=lambda r: r["id"])
        self.serial += 1
        for r in records[self.serial * 7 : self.serial * 7 + 3]:
            r = copy.deepcopy(r)
            r["field_2"] = r["field_2_raw"] = f"EDITED {self.serial}"
            self.knack.put_record(self.app_id, CONTAINER, r)
        new = copy.deepcopy(records[0])
        new["id"] = self.knack.new_record_id()
        self.knack.put_record(self.app_id, CONTAINER, new)
        self.knack.delete_record(self.app_id, CONTAINER, records[-1]["id"])

    def clear(self) -> None:
        self.knack.faults = Faults()
        self.proxy.faults = S3Faults()

    # --- one case ------------------------------------------------------------------------

    def sync_case(
        self,
        case: str,
        fault: Callable[[], None],
        *,
        expect_ok: bool,
        before: Callable[[], None] | None = None,
        needs_rerun: bool = False,
        first_run: Callable[[], tuple[bool, str, int]] | None = None,
        check: Callable[[], str] | None = None,
    ) -> Outcome:
        """``first_run``: what runs instead of one full sync; ``check``: the case's own
        check after it (what is wrong, or "")."""
        self.clear()  # the S3 proxy's request count starts at the case
        self.churn()
        if before is not None:
            before()
        started = time.monotonic()
        s3_before = set(self.s3_records())
        fault()
        ok, first, confirmations = (first_run or run_sync)()
        self.clear()
        old = int(self.fresh_but_old())
        knack_now = self.knack_records()
        wrongly = len((s3_before & set(knack_now)) - set(self.s3_records()))
        reruns = 0
        if not ok or needs_rerun:
            reruns = 1
            again_ok, again, more = run_sync()
            confirmations += more
            old += int(self.fresh_but_old())
            if not again_ok:
                first += f" | rerun: {again}"
        stored, knack_now = self.s3_records(), self.knack_records()
        lost = sum(1 for rid, r in knack_now.items() if stored.get(rid) != md5_hex(dumps_stable(r)))
        extra = len(stored.keys() - knack_now.keys())
        problem = check() if check is not None else ""
        passed = (
            lost == 0
            and extra == 0
            and wrongly == 0
            and ok == expect_ok
            and old == 0
            and not problem
        )
        aged = self.age_stuck_marks()
        return Outcome(
            case,
            first,
            reruns,
            lost,
            extra,
            wrongly,
            confirmations,
            time.monotonic() - started,
            passed,
            old,
            problem,
            aged,
        )


PREFIX = f"{APP}-{ENV}/{CONTAINER}/"
STALE_RECORD = "STALE COPY"  # the value of an upper-case copy of a record (never published)


def run_sync(notes: list[str] | None = None) -> tuple[bool, str, int]:
    """A full sync: (ok, "ok" or its first error, confirmations); ``notes`` gets its notes."""
    try:
        with quiet():
            result = sync.sync_container(app_name=APP, container=CONTAINER, env=ENV)
    except KnackNbError as e:  # failed before it had a result (an outage at the start)
        return False, f"{type(e).__name__}: {' '.join(str(e).split())}", 0
    if notes is not None:
        notes += result.notes
    error = "ok" if result.ok else " ".join(result.errors[0].split())
    return result.ok, error, result.confirmations


def overlapping_syncs(m: Matrix) -> tuple[bool, str, int]:
    """The scheduled full sync, held just before it writes its snapshot, while Knack
    changes and a manual full sync runs from start to end; then the scheduled run ends and
    its snapshot (without the manual run's writes) lands last."""
    arrived, release = threading.Event(), threading.Event()
    real = snapshot.upload
    scheduled: list[tuple[bool, str, int]] = []
    notes: list[str] = []

    def upload(store: AppStore, container: str, path: str) -> str:
        if threading.current_thread().name == "scheduled-sync":
            arrived.set()
            release.wait(600)
        return real(store, container, path)

    def scheduled_run() -> None:
        try:
            scheduled.append(run_sync(notes))
        finally:
            arrived.set()  # also when it never reached its snapshot

    thread = threading.Thread(target=scheduled_run, name="scheduled-sync")
    snapshot.upload = upload
    try:
        thread.start()
        arrived.wait(600)
        m.churn()  # Knack changes while the scheduled run is about to write its snapshot
        manual = run_sync(notes)
        release.set()
        thread.join()
    finally:
        release.set()
        snapshot.upload = real
    (ok, first, confirmations), (ok2, second, more) = scheduled[0], manual
    said = sum("stays marked stale" in n for n in notes)
    text = f"both ok, {said} reports say stale" if ok and ok2 else f"{first} | {second}"
    return ok and ok2, text, confirmations + more


def add_strays(m: Matrix) -> dict[str, str]:
    """Objects that are not records in the container's prefix: name -> what it is. Also a
    record object holding another record's JSON (a full sync deletes it once Knack
    confirms there is no record of its id)."""
    store, s3 = AppStore(app_name=APP, env=ENV), m.stack.s3()
    ids = sorted(m.s3_records())
    copied = store.get_json(f"{PREFIX}{ids[0]}.json")
    stale = dict(copied, field_2=STALE_RECORD, field_2_raw=STALE_RECORD)
    strays = {
        "notes.json": "a note",
        f"{ids[0].upper()}.json": "an upper-case stale copy",
        f"old/{ids[1]}.json": "a copy in a sub-folder",
    }
    bodies = {
        "notes.json": {"id": "notes", "field_2": "not a record"},
        f"{ids[0].upper()}.json": stale,
        f"old/{ids[1]}.json": stale,
    }
    for name, body in bodies.items():
        s3.put_object(Bucket=m.stack.bucket, Key=PREFIX + name, Body=dumps_stable(body))
    s3.put_object(
        Bucket=m.stack.bucket,
        Key=f"{PREFIX}{'0' * 24}.json",
        Body=dumps_stable(dict(copied, field_2=STALE_RECORD)),
    )
    return strays


def strays_left_alone(m: Matrix, strays: dict[str, str]) -> str:
    """What is wrong after a sync with stray objects ("" when nothing)."""
    objects = m.s3_objects()
    missing = [name for name in strays if name not in objects]
    if missing:
        return f"deleted: {', '.join(missing)}"
    if f"{'0' * 24}.json" in objects:
        return "the record object holding another record is still there"
    return ""


def sync_cases(m: Matrix, only: list[str]) -> list[Outcome]:
    k, p = m.knack, m.proxy
    order = lambda: [r["id"] for r in k.records(m.app_id, CONTAINER)]  # noqa: E731
    strays: dict[str, str] = {}

    def wipe_s3() -> None:  # a first load, so that an S3 outage hits many writes
        store = AppStore(app_name=APP, env=ENV)
        store.delete_records(CONTAINER, list(m.s3_records()))
        store.delete_keys([f"_snapshots/{APP}-{ENV}/{CONTAINER}.parquet"])  # none yet either

    cases = [
        ("no fault (first load)", lambda: None, True, wipe_s3, False),
        (
            "Knack 503 every 3rd request",
            lambda: k.faults.update({"fail_every": 3}),
            True,
            None,
            False,
        ),
        (
            "Knack 429 burst (4, Retry-After)",
            lambda: k.faults.update({"status": 429, "fail_next": 4}),
            True,
            None,
            False,
        ),
        (
            "Knack 503 for good (outage)",
            lambda: k.faults.update({"fail_next": 10_000}),
            False,
            None,
            False,
        ),
        ("Knack empty page 2, once", lambda: k.faults.update({"empty_page": 2}), True, None, False),
        (
            "Knack empty page 2, stays (hole)",
            lambda: k.faults.update({"empty_page": 2, "empty_page_times": 100}),
            False,
            None,
            False,
        ),
        (
            "Knack record deleted after page 1",
            lambda: k.faults.update({"delete_after_page": 1}),
            True,
            None,
            True,
        ),
        (
            "Knack deletes a page-1 record after page 2",
            lambda: k.faults.update({"delete_after_page": 2, "delete_record": order()[10]}),
            True,
            None,
            True,
        ),
        (
            "S3 500 InternalError every 5th request",
            lambda: p.faults.__dict__.update(status=500, fail_every=5),
            True,
            wipe_s3,
            False,
        ),
        (
            "S3 503 SlowDown every 50th request",
            lambda: p.faults.__dict__.update(status=503, fail_every=50),
            True,
            None,
            False,
        ),
        (
            "S3 500 on every PUT, the last 30 (outage)",
            lambda: p.faults.__dict__.update(
                methods={"PUT"}, status=500, fail_after=len(m.knack_records()) - 30
            ),
            False,
            wipe_s3,
            False,
        ),
        (
            "S3 503 on every list (outage)",
            lambda: p.faults.__dict__.update(methods={"GET"}, fail_after=0),
            False,
            None,
            False,
        ),
    ]
    out = []
    if only:  # the cases chosen start from a loaded store, as after the first case
        ok, first, _ = run_sync()
        print(f"  set-up: a first full sync: {first[:160]}", flush=True)
    for case, fault, expect_ok, before, needs_rerun in cases:
        if selected(case, only):
            report(
                out,
                m.sync_case(
                    case, fault, expect_ok=expect_ok, before=before, needs_rerun=needs_rerun
                ),
            )
    case = "stray objects: not records, in the prefix"
    if selected(case, only):
        report(
            out,
            m.sync_case(
                case,
                lambda: strays.update(add_strays(m)),
                expect_ok=True,
                check=lambda: strays_left_alone(m, strays),
            ),
        )
    case = "overlapping full syncs (manual during scheduled)"
    if selected(case, only):
        # the second run of the pair and the rerun: the snapshot is marked stale after the
        # pair, and the rerun (alone) rebuilds it and clears the marks
        report(
            out,
            m.sync_case(
                case,
                lambda: None,
                expect_ok=True,
                needs_rerun=True,
                first_run=lambda: overlapping_syncs(m),
                check=lambda: f"marks left: {m.marks()}" if m.marks() else "",
            ),
        )
    return out


def selected(case: str, only: list[str]) -> bool:
    return not only or any(text.lower() in case.lower() for text in only)


def report(out: list[Outcome], o: Outcome) -> None:
    out.append(o)
    print(
        f"  {o.case}: {'PASS' if o.passed else 'FAIL'} ({o.seconds:.1f} s): first run "
        f"{o.first[:160]}; lost {o.lost}, extra {o.extra}, wrongly deleted "
        f"{o.wrongly_deleted}, fresh but old {o.fresh_but_old}"
        + (f"; {o.problem}" if o.problem else "")
        + (
            f"; {o.stuck} stale marks left 'running' by a run that failed as S3 refused its "
            "writes, aged past the lease"
            if o.stuck
            else ""
        ),
        flush=True,
    )


# --- publishing under the guard ---------------------------------------------------------


def publish_cases(m: Matrix, params_dir: Path, app_id: str) -> list[tuple[str, str, bool]]:
    stack, store = m.stack, AppStore(app_name=APP, env=ENV)
    base = (
        f"    socrata:\n      resource_id: {DATASET}\n      location_field: {LOCATION}\n"
        f"    agol:\n      service_id: {SERVICE}\n      location_field: {LOCATION}\n"
    )

    def params(extra: str = "") -> None:
        write_params(params_dir, app_id, writer="fault_matrix.py", extra=base + extra)

    def publish_both() -> tuple[Any, Any]:
        with quiet():
            return (
                get_publisher("socrata")(app_name=APP, container=CONTAINER, env=ENV),
                get_publisher("agol")(app_name=APP, container=CONTAINER, env=ENV),
            )

    def destinations() -> tuple[set[str], set[str]]:
        rows = {r["id"] for r in stack.socrata.rows(DATASET)}
        features = {f["attributes"]["id"] for f in stack.arcgis.features(SERVICE, 0)}
        return rows, features

    def remove(ids: list[str]) -> None:
        store.delete_records(CONTAINER, ids)

    def restore() -> None:
        with quiet():
            assert sync.sync_container(app_name=APP, container=CONTAINER, env=ENV).ok

    out: list[tuple[str, str, bool]] = []

    def check(case: str, expect_ok: bool, expect_rows: set[str], expect_features: set[str]):
        soc, agol = publish_both()
        rows, features = destinations()
        ok = (
            soc.ok == expect_ok
            and agol.ok == expect_ok
            and rows == expect_rows
            and features == expect_features
        )
        what = (
            f"socrata {'ok' if soc.ok else 'refused'} {len(rows)} rows, agol "
            f"{'ok' if agol.ok else 'refused'} {len(features)} features"
        )
        out.append((case, what, ok))
        print(f"  {case}: {'PASS' if ok else 'FAIL'}", flush=True)

    def wrong_published() -> str:
        """Rows and features that are not a stored record with its own values (the
        location name: an upper-case stale copy of a record holds another), or ""."""
        if m.fresh_but_old() or m.marks():
            return "the snapshot is not fresh: cannot compare"
        body = stack.s3().get_object(
            Bucket=stack.bucket, Key=f"_snapshots/{APP}-{ENV}/{CONTAINER}.parquet"
        )
        table = pq.read_table(io.BytesIO(body["Body"].read()), columns=["id", "location_name"])
        names = dict(
            zip(
                table.column("id").to_pylist(),
                table.column("location_name").to_pylist(),
                strict=True,
            )
        )
        rows = {r["id"]: r.get("location_name") for r in stack.socrata.rows(DATASET)}
        features = {
            f["attributes"]["id"]: f["attributes"].get("location_name")
            for f in stack.arcgis.features(SERVICE, 0)
        }
        wrong = [f"socrata {rid}" for rid, name in rows.items() if names.get(rid, "?") != name]
        wrong += [f"agol {rid}" for rid, name in features.items() if names.get(rid, "?") != name]
        return f"{len(wrong)} wrong: {', '.join(wrong[:5])}" if wrong else ""

    params()
    restore()
    soc, agol = publish_both()
    all_rows, all_features = destinations()
    wrong = wrong_published()
    strays = [n for n in m.s3_objects() if not RECORD_NAME.match(n)]
    ok = soc.ok and agol.ok and not wrong and all_rows == set(m.s3_records())
    out.append(
        (
            "full publish: only the records, their own values",
            f"{len(strays)} objects not records in S3; {wrong or '0 wrong'}",
            ok,
        )
    )
    print(f"  {out[-1][0]}: {'PASS' if ok else 'FAIL'} ({out[-1][1]})", flush=True)
    ids = sorted(m.s3_records())
    located = sorted(all_features)

    remove(ids[: len(ids) * 9 // 10])  # S3 lost 90% (e.g. a first sync still filling it)
    check("S3 holds 10% of the records", False, all_rows, all_features)
    remove(ids)
    check("S3 holds no record", False, all_rows, all_features)
    restore()
    gone = located[: len(located) // 5]  # 20%: under the 50% threshold
    remove(gone)
    check(
        "20% gone from S3 (under the threshold)",
        True,
        all_rows - set(gone),
        all_features - set(gone),
    )
    restore()
    publish_both()
    params("    mass_delete_threshold: 0.1\n")
    remove(gone)
    check("20% gone, threshold 10%", False, all_rows, all_features)
    params("    mass_delete_threshold: 0.1\n    allow_mass_delete: true\n")
    check(
        "20% gone, threshold 10%, allow_mass_delete",
        True,
        all_rows - set(gone),
        all_features - set(gone),
    )
    params()
    restore()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2500, help="records in the container")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated texts: run only the "
        "cases whose names contain one (publish cases: 'publish')",
    )
    args = parser.parse_args(argv)
    only = [text.strip() for text in args.only.split(",") if text.strip()]
    if args.records < 1100:
        parser.error("--records must be at least 1,100: the paging cases need two pages")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    metadata, data = generate_app(args.records, seed=args.seed)
    app = metadata["application"]
    workdir = tempfile.TemporaryDirectory(prefix="fault-matrix-")
    params_dir = Path(workdir.name) / "params"
    params_dir.mkdir()
    started = time.monotonic()
    with Stack(params_dir=str(params_dir)) as stack, S3FaultProxy(stack.s3_url) as proxy:
        stack.apply_env()
        os.environ["AWS_ENDPOINT_URL"] = proxy.url  # the product reaches S3 through faults
        os.chdir(workdir.name)
        app_id = stack.knack.add_app(metadata, data)
        write_params(params_dir, app_id, writer="fault_matrix.py")
        stack.socrata.add_dataset(
            DATASET, socrata_columns(app, CONTAINER, location_field=LOCATION), name="fault matrix"
        )
        stack.arcgis.add_service(
            SERVICE,
            "fault_matrix",
            [
                {
                    "name": "signals",
                    "geometry_type": "esriGeometryPoint",
                    "fields": agol_fields(app, CONTAINER),
                }
            ],
        )
        with quiet():
            upload_metadata(app_name=APP, env=ENV)
        m = Matrix(stack, proxy, app_id)
        print(
            f"fault matrix: {args.records:,} records, full syncs through an S3 fault proxy",
            flush=True,
        )
        outcomes = sync_cases(m, only)
        publishes: list[tuple[str, str, bool]] = []
        if selected("publish", only):
            print("publishing under the mass-delete guard", flush=True)
            publishes = publish_cases(m, params_dir, app_id)

    print(
        f"\n{'sync case':<52} {'first run':<36} rerun lost extra wrong confirm old-snap"
        " stuck  result"
    )
    for o in outcomes:
        print(
            f"{o.case:<52} {o.first[:36]:<36} {o.reruns:>5} {o.lost:>4} {o.extra:>5} "
            f"{o.wrongly_deleted:>5} {o.confirmations:>7} {o.fresh_but_old:>8} {o.stuck:>5}  "
            f"{'PASS' if o.passed else 'FAIL'}"
        )
    if publishes:
        print(f"\n{'publish case':<52} {'what the destinations hold':<54} result")
    for case, what, ok in publishes:
        print(f"{case:<52} {what:<54} {'PASS' if ok else 'FAIL'}")
    failed = [o.case for o in outcomes if not o.passed] + [c for c, _, ok in publishes if not ok]
    print(
        f"\n{len(outcomes) + len(publishes) - len(failed)} of {len(outcomes) + len(publishes)}"
        f" cases PASS in {time.monotonic() - started:.0f} s"
        + (f"; FAIL: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
