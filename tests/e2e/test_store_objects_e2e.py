"""Objects in a container's prefix that are not its records, end to end.

Only ``<24 lower-case hex>.json`` directly under ``<app>-<env>/<container>/`` is a record. Any
other object there (``notes.json``, an upper-case copy of a record's key, a sub-folder) is
never deleted, never published and never put in the snapshot; the sync's and the publish's
reports list it. A record object whose ``id`` is not its key's is refused by name: it is never
published, and a full sync (which rewrites it from Knack, or deletes it once Knack confirms
there is no such record) repairs it.

The sync and the full Socrata publish run through papermill (their reports list the
objects); set-up and reruns take the notebooks' steps in process (tests/inprocess.py).
"""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
from inprocess import next_second_after_writes
from inprocess import run as run_in_process

from emulators.stack import DEMO_DATASET
from lib import reports, sync
from lib.clients.s3_records import Strays, dumps_stable
from lib.metadata import upload_metadata

APP_ID = "5d79512148c4af00106d1507"
PREFIX = "demo-dev/object_3/"


@pytest.fixture
def demo(demo_env):
    """Metadata and object_3's records in S3, as the sync leaves them."""
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    return demo_env


def put(stack, key: str, obj) -> None:
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=dumps_stable(obj))


def get(stack, key: str) -> dict:
    return json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def report_text(stack, result) -> str:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def record_ids(stack) -> set[str]:
    """The ids of the record objects in S3 (lower-case hex keys directly under the prefix)."""
    names = [k[len(PREFIX) :] for k in stack.s3_keys(PREFIX)]
    return {
        n.removesuffix(".json")
        for n in names
        if n.endswith(".json") and "/" not in n and n == n.lower() and len(n) == 29
    }


def stale_marks(stack) -> list[str]:
    return stack.s3_keys("_state/demo-dev/object_3/snapshot")


def snapshot_ids(stack) -> list[str]:
    body = (
        stack.s3()
        .get_object(Bucket=stack.bucket, Key="_snapshots/demo-dev/object_3.parquet")["Body"]
        .read()
    )
    return pq.read_table(io.BytesIO(body), columns=["id"]).column("id").to_pylist()


def add_strays(stack) -> tuple[str, dict[str, str]]:
    """A note, a stale upper-case copy of a record and a record in a sub-folder: (the copied
    record's id, stray key -> what it is)."""
    rid = sorted(record_ids(stack))[0]
    stale = dict(get(stack, f"{PREFIX}{rid}.json"), field_7="stale copy", field_7_raw="stale copy")
    strays = {
        f"{PREFIX}notes.json": "a note",
        f"{PREFIX}{rid.upper()}.json": "an upper-case copy",
        f"{PREFIX}old/{rid}.json": "a copy in a sub-folder",
    }
    put(stack, f"{PREFIX}notes.json", {"id": "notes", "field_7": "not a record"})
    put(stack, f"{PREFIX}{rid.upper()}.json", stale)
    put(stack, f"{PREFIX}old/{rid}.json", stale)
    return rid, strays


def test_stray_objects_are_left_alone_and_listed_by_a_full_sync(demo):
    rid, strays = add_strays(demo)
    knack = {r["id"]: r for r in demo.knack.records(APP_ID, "object_3")}
    changed = dict(knack[rid], field_7="changed in Knack", field_7_raw="changed in Knack")
    demo.knack.put_record(APP_ID, "object_3", changed)

    result = reports.run_notebook(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3"
    )
    assert result.ok, result.error
    assert (result.summary["written"], result.summary["deleted"]) == (1, 0)
    assert set(demo.s3_keys(PREFIX)) >= set(strays)  # never deleted
    assert record_ids(demo) == set(knack)
    assert get(demo, f"{PREFIX}{rid}.json")["field_7"] == "changed in Knack"
    assert sorted(snapshot_ids(demo)) == sorted(knack)  # not in the snapshot
    assert stale_marks(demo) == []  # the run finished: the snapshot is fresh
    text = report_text(demo, result)
    assert "3 objects under" in text and "are not records" in text
    for key in strays:
        assert key.rsplit("/", 1)[1] in text
    # and the next full run does the same (the stray objects never make it fail)
    again = run_in_process(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3"
    )
    assert again.ok, again.error
    assert stale_marks(demo) == []


def test_a_full_publish_sends_only_the_records_and_lists_the_other_objects(demo):
    rid, strays = add_strays(demo)
    real = get(demo, f"{PREFIX}{rid}.json")

    result = reports.run_notebook(
        "upsert_knack_container_to_socrata", app_name="demo", env="dev", container="object_3"
    )
    assert result.ok, result.error
    rows = {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
    assert "notes" not in rows and rid.upper() not in rows
    assert set(rows) == record_ids(demo)
    assert rows[rid]["short_text"] == real["field_7"] != "stale copy"  # the record's own values
    assert result.summary["read"] == len(record_ids(demo))
    text = report_text(demo, result)
    assert "3 objects under" in text and "are not records" in text
    assert "notes.json" in text and f"{rid.upper()}.json" in text

    # an incremental publish skips them too
    since = next_second_after_writes(demo, PREFIX)
    put(demo, f"{PREFIX}notes.json", {"id": "notes", "field_7": "written again"})
    record = dict(real, field_7="changed in S3", field_7_raw="changed in S3")
    put(demo, f"{PREFIX}{rid}.json", record)
    inc = run_in_process(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date=since.isoformat(),
    )
    assert inc.ok, inc.error
    assert inc.summary["read"] == 1
    rows = {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
    assert "notes" not in rows and rows[rid]["short_text"] == "changed in S3"


def test_a_record_object_holding_another_record_is_refused_by_name(demo):
    """``<A>.json`` holding record B: never published (a full or incremental publish fails
    before any write, naming the key, the id inside and what to do); a full sync deletes it
    once Knack confirms there is no record A, and publishing then works."""
    since = next_second_after_writes(demo, PREFIX)
    other = sorted(record_ids(demo))[3]
    alien = "0123456789abcdef01234567"
    key = f"{PREFIX}{alien}.json"
    put(demo, key, dict(get(demo, f"{PREFIX}{other}.json"), field_7="a copy under another key"))

    full = reports.run_notebook(
        "upsert_knack_container_to_socrata", app_name="demo", env="dev", container="object_3"
    )
    assert not full.ok
    assert f"s3://{demo.bucket}/{key}" in full.error
    assert f"holds the record {other!r}" in full.error
    assert "run a full knack_container_to_s3 of object_3" in full.error
    assert demo.socrata.rows(DEMO_DATASET) == []  # nothing published
    assert key in report_text(demo, full)

    inc = run_in_process(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env="dev",
        container="object_3",
        date=since.isoformat(),
    )
    assert not inc.ok and key in inc.error and repr(other) in inc.error
    assert demo.socrata.rows(DEMO_DATASET) == []

    repaired = run_in_process(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3"
    )
    assert repaired.ok, repaired.error
    assert repaired.summary["deleted"] == 1 and key not in demo.s3_keys(PREFIX)
    again = run_in_process(
        "upsert_knack_container_to_socrata", app_name="demo", env="dev", container="object_3"
    )
    assert again.ok, again.error
    rows = {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
    assert (
        set(rows) == record_ids(demo)
        and rows[other].get("short_text") != "a copy under another key"
    )


def test_an_incremental_sync_that_rebuilds_the_snapshot_refuses_a_record_under_another_key(demo):
    """The snapshot is rebuilt from the stored records when it is marked stale: a record
    object holding another id fails the run by name instead of giving that id two rows."""
    other = sorted(record_ids(demo))[5]
    alien = "0123456789abcdef01234567"
    key = f"{PREFIX}{alien}.json"
    put(demo, key, get(demo, f"{PREFIX}{other}.json"))
    put(demo, "_state/demo-dev/object_3/snapshot.json", {"stale": True})  # a killed run's mark
    later = next_second_after_writes(demo, PREFIX)
    result = run_in_process(
        "knack_container_to_s3",
        app_name="demo",
        env="dev",
        container="object_3",
        date=later.isoformat(),
    )
    assert not result.ok
    assert f"s3://{demo.bucket}/{key}" in result.error and repr(other) in result.error
    assert "run a full knack_container_to_s3 of object_3" in result.error
    assert stale_marks(demo)  # the snapshot stays marked stale
    assert sorted(snapshot_ids(demo)) == sorted(record_ids(demo) - {alien})  # as it was

    full = run_in_process("knack_container_to_s3", app_name="demo", env="dev", container="object_3")
    assert full.ok, full.error
    assert alien not in record_ids(demo) and stale_marks(demo) == []
    assert sorted(snapshot_ids(demo)) == sorted(record_ids(demo))


def test_a_report_shows_the_keys_of_stray_objects_as_code_whatever_they_hold():
    strays = Strays(prefix_url="s3://bucket/demo-dev/object_3/")
    names = ["[x](javascript:alert(1)).json", "a`b\nc.json", "![i](http://e.x/i.png)", "d", "e"]
    for name in [*names, "f.json"]:
        strays.add(name)
    note = strays.note()
    assert note.startswith("6 objects under s3://bucket/demo-dev/object_3/ are not records")
    assert "`[x](javascript:alert(1)).json`, `a?b?c.json`, `![i](http://e.x/i.png)`" in note
    assert note.count("`") == 12 and "and 1 more" in note and "f.json" not in note
    assert Strays().note() is None
