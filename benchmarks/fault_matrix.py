"""Fault matrix: a full sync of a few thousand records under each Knack and S3 fault, and
full publishes under each mass-delete guard case; PASS when nothing is lost.

    python benchmarks/fault_matrix.py [--records 2500]

For each sync case Knack first changes (records edited, one added, one deleted), the fault
is set, a full sync runs, and if it fails (as it must under an outage) the fault is cleared
and it runs once more. PASS: S3 equals Knack (same ids, byte-equal records) after at most
one rerun, no record Knack still had was ever deleted from S3, and the first run's outcome
is the expected one. The deletion mid-paging case needs its one rerun by nature: the record
deleted after it was listed is removed by the next full run, once Knack confirms it.

Publish cases run the real publishers against the Socrata and ArcGIS emulators; PASS when
each destination holds what the guard promises. Runs in process (the library calls the
notebooks make) against moto's server behind an S3 fault proxy and the Knack emulator.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import APP, CONTAINER, ENV, quiet, write_params

from lib import sync
from lib.emulators.knack import Faults, generate_app
from lib.emulators.s3_faults import S3FaultProxy, S3Faults
from lib.emulators.stack import Stack, agol_fields, socrata_columns
from lib.errors import KnackNbError
from lib.publish import get_publisher
from lib.store import Store, dumps_stable, md5_hex

DATASET = "faul-tmtx"
SERVICE = "fa017a7e1c2d4e5f8a9b0c1d2e3f4a5b"
LOCATION = "field_3"
QUIET_LOGGERS = ("lib", "botocore", "urllib3", "werkzeug", "moto", "arcgis", "sodapy")


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
        (not through the proxy)."""
        prefix = f"{APP}-{ENV}/{CONTAINER}/"
        out = {}
        pages = self.stack.s3().get_paginator("list_objects_v2").paginate(
            Bucket=self.stack.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"][len(prefix):].removesuffix(".json")] = obj["ETag"].strip('"')
        return out

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

    def sync_case(self, case: str, fault: Callable[[], None], *, expect_ok: bool,
                  before: Callable[[], None] | None = None,
                  needs_rerun: bool = False) -> Outcome:
        self.churn()
        if before is not None:
            before()
        started = time.monotonic()
        s3_before = set(self.s3_records())
        fault()
        ok, first, confirmations = run_sync()
        self.clear()
        knack_now = self.knack_records()
        wrongly = len((s3_before & set(knack_now)) - set(self.s3_records()))
        reruns = 0
        if not ok or needs_rerun:
            reruns = 1
            again_ok, again, more = run_sync()
            confirmations += more
            if not again_ok:
                first += f" | rerun: {again}"
        stored, knack_now = self.s3_records(), self.knack_records()
        lost = sum(1 for rid, r in knack_now.items()
                   if stored.get(rid) != md5_hex(dumps_stable(r)))
        extra = len(stored.keys() - knack_now.keys())
        passed = lost == 0 and extra == 0 and wrongly == 0 and ok == expect_ok
        return Outcome(case, first, reruns, lost, extra, wrongly, confirmations,
                       time.monotonic() - started, passed)


def run_sync() -> tuple[bool, str, int]:
    """A full sync: (ok, "ok" or its first error, confirmations)."""
    try:
        with quiet():
            result = sync.sync_container(app_name=APP, container=CONTAINER, env=ENV)
    except KnackNbError as e:  # failed before it had a result (an outage at the start)
        return False, f"{type(e).__name__}: {' '.join(str(e).split())}", 0
    error = "ok" if result.ok else " ".join(result.errors[0].split())
    return result.ok, error, result.confirmations


def sync_cases(m: Matrix) -> list[Outcome]:
    k, p = m.knack, m.proxy
    order = lambda: [r["id"] for r in k.records(m.app_id, CONTAINER)]  # noqa: E731

    def wipe_s3() -> None:  # a first load, so that an S3 outage hits many writes
        Store(app_name=APP, env=ENV).delete_records(CONTAINER, list(m.s3_records()))

    cases = [
        ("no fault (first load)", lambda: None, True, wipe_s3, False),
        ("Knack 503 every 3rd request", lambda: k.faults.update({"fail_every": 3}), True,
         None, False),
        ("Knack 429 burst (4, Retry-After)",
         lambda: k.faults.update({"status": 429, "fail_next": 4}), True, None, False),
        ("Knack 503 for good (outage)", lambda: k.faults.update({"fail_next": 10_000}), False,
         None, False),
        ("Knack empty page 2, once", lambda: k.faults.update({"empty_page": 2}), True, None,
         False),
        ("Knack empty page 2, stays (hole)",
         lambda: k.faults.update({"empty_page": 2, "empty_page_times": 100}), False, None,
         False),
        ("Knack record deleted after page 1",
         lambda: k.faults.update({"delete_after_page": 1}), True, None, True),
        ("Knack deletes a page-1 record after page 2",
         lambda: k.faults.update({"delete_after_page": 2, "delete_record": order()[10]}),
         True, None, True),
        ("S3 500 InternalError every 5th request",
         lambda: p.faults.__dict__.update(status=500, fail_every=5), True, wipe_s3, False),
        ("S3 503 SlowDown every 50th request",
         lambda: p.faults.__dict__.update(status=503, fail_every=50), True, None, False),
        ("S3 500 on every PUT, the last 30 (outage)",
         lambda: p.faults.__dict__.update(methods={"PUT"}, status=500,
                                          fail_after=len(m.knack_records()) - 30),
         False, wipe_s3, False),
        ("S3 503 on every list (outage)",
         lambda: p.faults.__dict__.update(methods={"GET"}, fail_after=0), False, None, False),
    ]
    out = []
    for case, fault, expect_ok, before, needs_rerun in cases:
        out.append(m.sync_case(case, fault, expect_ok=expect_ok, before=before,
                               needs_rerun=needs_rerun))
        o = out[-1]
        print(f"  {case}: {'PASS' if o.passed else 'FAIL'} ({o.seconds:.1f} s): first run "
              f"{o.first[:160]}; lost {o.lost}, extra {o.extra}, wrongly deleted "
              f"{o.wrongly_deleted}", flush=True)
    return out


# --- publishing under the guard ---------------------------------------------------------


def publish_cases(m: Matrix, params_dir: Path, app_id: str) -> list[tuple[str, str, bool]]:
    stack, store = m.stack, Store(app_name=APP, env=ENV)
    base = (f"    socrata:\n      resource_id: {DATASET}\n      location_field: {LOCATION}\n"
            f"    agol:\n      service_id: {SERVICE}\n      location_field: {LOCATION}\n")

    def params(extra: str = "") -> None:
        write_params(params_dir, app_id, writer="fault_matrix.py", extra=base + extra)

    def publish_both() -> tuple[Any, Any]:
        with quiet():
            return (get_publisher("socrata")(app_name=APP, container=CONTAINER, env=ENV),
                    get_publisher("agol")(app_name=APP, container=CONTAINER, env=ENV))

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
        ok = (soc.ok == expect_ok and agol.ok == expect_ok and rows == expect_rows
              and features == expect_features)
        what = (f"socrata {'ok' if soc.ok else 'refused'} {len(rows)} rows, agol "
                f"{'ok' if agol.ok else 'refused'} {len(features)} features")
        out.append((case, what, ok))
        print(f"  {case}: {'PASS' if ok else 'FAIL'}", flush=True)

    params()
    restore()
    publish_both()
    all_rows, all_features = destinations()
    ids = sorted(m.s3_records())
    located = sorted(all_features)

    remove(ids[: len(ids) * 9 // 10])  # S3 lost 90% (e.g. a first sync still filling it)
    check("S3 holds 10% of the records", False, all_rows, all_features)
    remove(ids)
    check("S3 holds no record", False, all_rows, all_features)
    restore()
    gone = located[: len(located) // 5]  # 20%: under the 50% threshold
    remove(gone)
    check("20% gone from S3 (under the threshold)", True, all_rows - set(gone),
          all_features - set(gone))
    restore()
    publish_both()
    params("    mass_delete_threshold: 0.1\n")
    remove(gone)
    check("20% gone, threshold 10%", False, all_rows, all_features)
    params("    mass_delete_threshold: 0.1\n    allow_mass_delete: true\n")
    check("20% gone, threshold 10%, allow_mass_delete", True, all_rows - set(gone),
          all_features - set(gone))
    params()
    restore()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2500, help="records in the container")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
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
        stack.socrata.add_dataset(DATASET, socrata_columns(app, CONTAINER,
                                                           location_field=LOCATION),
                                  name="fault matrix")
        stack.arcgis.add_service(SERVICE, "fault_matrix", [
            {"name": "signals", "geometry_type": "esriGeometryPoint",
             "fields": agol_fields(app, CONTAINER)}])
        with quiet():
            sync.upload_metadata(app_name=APP, env=ENV)
        m = Matrix(stack, proxy, app_id)
        print(f"fault matrix: {args.records:,} records, full syncs through an S3 fault proxy",
              flush=True)
        outcomes = sync_cases(m)
        print("publishing under the mass-delete guard", flush=True)
        publishes = publish_cases(m, params_dir, app_id)

    print(f"\n{'sync case':<52} {'first run':<36} rerun lost extra wrong confirm  result")
    for o in outcomes:
        print(f"{o.case:<52} {o.first[:36]:<36} {o.reruns:>5} {o.lost:>4} {o.extra:>5} "
              f"{o.wrongly_deleted:>5} {o.confirmations:>7}  {'PASS' if o.passed else 'FAIL'}")
    print(f"\n{'publish case':<52} {'what the destinations hold':<50} result")
    for case, what, ok in publishes:
        print(f"{case:<52} {what:<50} {'PASS' if ok else 'FAIL'}")
    failed = [o.case for o in outcomes if not o.passed] + [c for c, _, ok in publishes if not ok]
    print(f"\n{len(outcomes) + len(publishes) - len(failed)} of {len(outcomes) + len(publishes)}"
          f" cases PASS in {time.monotonic() - started:.0f} s"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
