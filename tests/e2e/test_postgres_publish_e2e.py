"""knack_container_to_postgres.ipynb end to end: papermill → kernel → moto S3 → psycopg →
a real PostgreSQL server (emulators/postgres.py, started with the stack). Set-up runs (the
first load before a change) take the notebook's own steps in process (tests/inprocess.py);
each behaviour shown keeps a papermill run.

The table is compared with the store: its ids and ``record`` with the record objects in S3,
its typed columns with the snapshot the sync wrote (the snapshot's types are the table's),
and by hand for one record of every field type of the knackpy fixture (dates as instants in
the app's timezone, Central Time)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from zoneinfo import ZoneInfo

import nbformat
import psutil
import psycopg
import pytest
from inprocess import next_second_after_writes
from inprocess import run as run_in_process

from lib import reports, snapshot, sync
from lib.bindings.destination import postgres_type
from lib.clients.app_store import AppStore
from lib.metadata import upload_metadata

APP_ID = "5d79512148c4af00106d1507"
TABLE = "knack.demo_object_3"
FIRST = "5d7964422d7159001659b27a"  # the fixture's first record
CENTRAL = ZoneInfo("America/Chicago")  # the fixture app's "Central Time (US & Canada)"
WAIT = 120  # seconds at most for the killed run to reach its DELETE (fails, never sleeps)


@pytest.fixture
def demo(demo_env):
    """Metadata and object_3's records in S3, as the sync leaves them; no table yet."""
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    return demo_env


def publish(date=None) -> reports.RunResult:
    return reports.run_notebook(
        "knack_container_to_postgres", app_name="demo", env="dev", container="object_3", date=date
    )


def publish_in_process(date=None) -> reports.RunResult:
    return run_in_process(
        "knack_container_to_postgres", app_name="demo", env="dev", container="object_3", date=date
    )


def query(stack, text: str, *args) -> list[tuple]:
    with psycopg.connect(stack.postgres.url) as conn:
        return conn.execute(text, args or None).fetchall()


def rows(stack) -> dict[str, dict]:
    """The table: id → every column (``xmin``: the transaction that wrote the row)."""
    with psycopg.connect(stack.postgres.url) as conn:
        cur = conn.execute(f"SELECT xmin::text AS xmin, * FROM {TABLE}")
        names = [d.name for d in cur.description]
        return {row[1]: dict(zip(names, row, strict=True)) for row in cur}


def column_types(stack) -> dict[str, str]:
    return dict(
        query(
            stack,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'knack' AND table_name = 'demo_object_3'",
        )
    )


def assert_table_equals_store(stack) -> dict[str, dict]:
    """The table holds exactly the stored records: ids, ``record`` equal to each object's
    JSON, and every field's column equal to the snapshot's typed value."""
    store = AppStore(app_name="demo", env="dev")
    s3 = stack.s3()
    objects = {
        key.rsplit("/", 1)[1].removesuffix(".json"): json.loads(
            s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        )
        for key in stack.s3_keys("demo-dev/object_3/")
    }
    typed = snapshot.read_table(store, "object_3")
    spec = snapshot.Spec.from_schema(typed.schema)
    expected = {r["id"]: r for r in typed.to_pylist()}
    got = rows(stack)
    assert set(got) == set(objects) == set(expected)
    for rid, row in got.items():
        assert row["record"] == objects[rid], rid
    types = column_types(stack)
    for column in spec.columns:  # one assertion per field, so a failure names it
        assert types[column.name] == postgres_type(column.type), column
        assert {i: r[column.name] for i, r in got.items()} == {
            i: r[column.name] for i, r in expected.items()
        }, column
    return got


def report_text(stack, result) -> str:
    body = stack.s3().get_object(
        Bucket=stack.bucket, Key=result.report.removeprefix(f"s3://{stack.bucket}/")
    )["Body"]
    nb = nbformat.reads(body.read().decode(), as_version=4)
    return "\n".join(
        out.get("text") or out.get("data", {}).get("text/plain", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def change_records(stack, ids: list[str], text: str) -> None:
    for rid in ids:
        record = next(r for r in stack.knack.records(APP_ID, "object_3") if r["id"] == rid)
        record["field_7"] = record["field_7_raw"] = f"{text} {rid[-4:]}"
        stack.knack.put_record(APP_ID, "object_3", record)


def full_sync() -> None:
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok


def test_a_full_publish_creates_the_table_equal_to_the_store_with_every_field_type(demo):
    result = publish()
    assert result.ok, result.error
    s = result.summary
    assert (s["table"], s["mode"], s["read"], s["created"], s["updated"], s["deleted"]) == (
        TABLE,
        "full",
        25,
        25,
        0,
        0,
    )
    assert s["table_created"] is True and len(s["columns_added"]) == 32
    got = assert_table_equals_store(demo)
    types = column_types(demo)
    assert (types["id"], types["record"], types["_published_at"]) == (
        "text",
        "jsonb",
        "timestamp with time zone",
    )
    assert query(demo, f"SELECT count(*) FROM {TABLE}") == [(25,)]
    # one record of every field type, read off the fixture by hand
    first = got[FIRST]
    assert first["multiple_choice"] == "Extra Cheese" and first["short_text"] == "hello"
    assert first["number"] == 100.0 and first["currency"] == 100.43
    assert first["auto_increment"] == 1.0 and first["rating"] == 0.0
    assert first["yes_no"] is True and first["pytest_record"] is False
    # "07/03/2018 10:26" in the app's timezone: that instant, whatever the server's zone
    assert first["date_time___w__time_default_current"] == dt.datetime(
        2018, 7, 3, 10, 26, tzinfo=CENTRAL
    )
    assert first["date_time___no_time_no_default"] == dt.datetime(2019, 9, 11, tzinfo=CENTRAL)
    assert first["date_time___range"] == dt.datetime(2019, 9, 11, 16, 14, tzinfo=CENTRAL)
    assert first["name"] == "the Hut, Pizza Danger"
    assert first["email"] == "pizzathehut@spaceballs.com"
    assert first["address_usa"] == "8700 Cameron Rd, Suite 1, Austin, TX, 78754"
    assert first["phone"] == "5129743546" and first["customer"] == "Johnny C"
    assert first["address_lat_lon"] == "Bauchi, Nigeria"
    assert first["timer"] == "09/11/19; 4:14pm to 5:14pm = 1:00 hours"
    text = report_text(demo, result)
    assert "created table knack.demo_object_3" in text
    assert "column added" in text and "date_time___range" in text
    for secret in [*demo.secrets, demo.postgres.url]:
        assert secret not in text


def test_an_unchanged_rerun_updates_no_row(demo):
    assert publish_in_process().ok
    before = rows(demo)

    result = publish()
    assert result.ok, result.error
    s = result.summary
    assert (s["created"], s["updated"], s["unchanged"], s["deleted"]) == (0, 0, 25, 0)
    after = rows(demo)
    # no row was written again: each keeps the transaction id (xmin) that wrote it
    assert {i: r["xmin"] for i, r in after.items()} == {i: r["xmin"] for i, r in before.items()}
    assert after == before
    assert "nothing to write" in report_text(demo, result)

    # a row deleted by hand: the table is no longer as the last publish left it
    query(demo, f"DELETE FROM {TABLE} WHERE id = %s RETURNING id", FIRST)
    again = publish_in_process()
    assert again.ok, again.error
    assert (again.summary["created"], again.summary["updated"]) == (1, 0)
    assert_table_equals_store(demo)


def test_incremental_then_deleting_full_runs_keep_the_table_equal_to_the_store(demo):
    assert publish_in_process().ok
    since = next_second_after_writes(demo, "demo-dev/object_3/")
    ids = sorted(r["id"] for r in demo.knack.records(APP_ID, "object_3"))
    change_records(demo, ids[:2], "changed")
    demo.knack.delete_record(APP_ID, "object_3", ids[-1])
    full_sync()  # S3: 2 records rewritten, 1 deleted

    inc = publish(date=since.isoformat())
    assert inc.ok, inc.error
    s = inc.summary
    assert (s["mode"], s["read"], s["created"], s["updated"], s["deleted"]) == (
        "incremental",
        2,
        0,
        2,
        0,
    )
    table = rows(demo)
    assert [table[i]["short_text"] for i in ids[:2]] == [f"changed {i[-4:]}" for i in ids[:2]]
    assert ids[-1] in table  # an incremental run deletes nothing

    full = publish()
    assert full.ok, full.error
    s = full.summary
    assert (s["mode"], s["created"], s["updated"], s["deleted"]) == ("full", 0, 0, 1)
    got = assert_table_equals_store(demo)
    assert ids[-1] not in got and len(got) == 24


def test_the_mass_delete_guard_refuses_and_writes_nothing(demo):
    assert publish_in_process().ok
    before = rows(demo)
    ids = sorted(r["id"] for r in demo.knack.records(APP_ID, "object_3"))
    for rid in ids[:20]:
        demo.knack.delete_record(APP_ID, "object_3", rid)
    change_records(demo, ids[20:22], "changed")
    sync_result = sync.sync_container(app_name="demo", container="object_3", env="dev")
    assert not sync_result.ok  # the sync's own guard: S3 keeps them
    demo.s3().delete_objects(
        Bucket=demo.bucket,
        Delete={"Objects": [{"Key": f"demo-dev/object_3/{rid}.json"} for rid in ids[:20]]},
    )

    result = publish_in_process()
    assert not result.ok
    assert "refusing to delete 20 of the 25 rows of the table" in result.error
    assert rows(demo) == before  # the upserts of the same run rolled back too


def test_a_run_killed_half_way_leaves_the_table_exactly_as_before(demo):
    """The kernel is killed while its transaction has written (the changed rows upserted)
    and waits to delete a row that this test holds locked: the server rolls it back."""
    assert publish_in_process().ok
    ids = sorted(r["id"] for r in demo.knack.records(APP_ID, "object_3"))
    change_records(demo, ids[:3], "half way")
    demo.knack.delete_record(APP_ID, "object_3", ids[-1])
    full_sync()
    before = rows(demo)

    holder = psycopg.connect(demo.postgres.url)
    holder.execute(f"SELECT 1 FROM {TABLE} WHERE id = %s FOR UPDATE", (ids[-1],))
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(result=publish()))
    runner.start()
    try:
        backend = wait_for_blocked_publish(demo)
        assert backend["xid"] is not None  # it has written: an id is given at the first write
        kernel = process_on_port(backend["port"])
        kernel.kill()
    finally:
        runner.join(timeout=WAIT)
        holder.rollback()
        holder.close()
    assert not runner.is_alive()
    result = outcome["result"]
    assert not result.ok
    assert rows(demo) == before  # not one row changed, xmin included

    rerun = publish()
    assert rerun.ok, rerun.error
    assert (rerun.summary["updated"], rerun.summary["deleted"]) == (3, 1)
    assert_table_equals_store(demo)


def wait_for_blocked_publish(stack) -> dict:
    """The publish's server session once it waits for a lock (its DELETE): its client's
    port and transaction id."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = query(
            stack,
            "SELECT client_port, backend_xid::text FROM pg_stat_activity "
            "WHERE application_name LIKE 'knack-notebooks publish%%' AND wait_event_type = 'Lock'",
        )
        if found:
            return {"port": found[0][0], "xid": found[0][1]}
        time.sleep(0.05)
    raise AssertionError(f"the publish did not reach its DELETE within {WAIT} s")


def process_on_port(port: int) -> psutil.Process:
    """This test's child process (the kernel) whose TCP connection has local ``port``."""
    for child in psutil.Process().children(recursive=True):
        try:
            if any(c.laddr and c.laddr.port == port for c in child.net_connections("tcp")):
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no child process holds the connection from port {port}")


def test_a_renamed_field_keeps_its_column(demo):
    assert publish_in_process().ok
    demo.knack.rename_field(APP_ID, "object_3", "field_7", "Short Label")
    change_records(demo, [FIRST], "after the rename")
    upload_metadata(app_name="demo", env="dev")
    full_sync()

    result = publish()
    assert result.ok, result.error
    assert result.summary["columns_added"] == [] and result.summary["updated"] == 1
    types = column_types(demo)
    assert "short_text" in types and "short_label" not in types
    assert rows(demo)[FIRST]["short_text"] == f"after the rename {FIRST[-4:]}"
    text = report_text(demo, result)
    assert "renamed (followed)" in text and "'Short Text' → 'Short Label'" in text


def test_a_new_field_adds_its_column_and_the_report_says_so(demo):
    assert publish_in_process().ok
    app = demo.knack._app(APP_ID)
    metadata = json.loads(json.dumps(app.metadata))
    obj = next(o for o in metadata["objects"] if o["key"] == "object_3")
    obj["fields"].append({"key": "field_900", "name": "Cabinet Count", "type": "number"})
    app.set_metadata(metadata)
    for record in demo.knack.records(APP_ID, "object_3"):
        value = int(record["id"][-2:], 16)
        record["field_900"] = str(value)
        record["field_900_raw"] = value
        demo.knack.put_record(APP_ID, "object_3", record)
    upload_metadata(app_name="demo", env="dev")
    full_sync()  # rebuilds the snapshot with the new column

    result = publish()
    assert result.ok, result.error
    assert result.summary["columns_added"] == ["cabinet_count"]
    assert column_types(demo)["cabinet_count"] == "double precision"
    got = assert_table_equals_store(demo)
    assert got[FIRST]["cabinet_count"] == float(int(FIRST[-2:], 16))
    text = report_text(demo, result)
    assert "added 1 column(s) for new fields: `cabinet_count` (double precision)" in text


def test_a_gone_bound_field_fails_before_writing_unless_retired(demo, tmp_path, monkeypatch):
    assert publish_in_process().ok
    before = rows(demo)
    demo.knack.remove_field(APP_ID, "object_3", "field_10")
    change_records(demo, [FIRST], "after the removal")
    upload_metadata(app_name="demo", env="dev")
    full_sync()

    failed = publish_in_process()
    assert not failed.ok
    assert "column 'number' of PostgreSQL table knack.demo_object_3 would go blank" in failed.error
    assert rows(demo) == before

    import yaml

    params = yaml.safe_load((demo_params_dir() / "demo.yaml").read_text())
    params["containers"]["object_3"]["postgres"] = {"retired_columns": ["number"]}
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "demo.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(folder))
    retired = publish_in_process()
    assert retired.ok, retired.error
    after = rows(demo)
    assert after[FIRST]["short_text"] == f"after the removal {FIRST[-4:]}"
    assert {i: r["number"] for i, r in after.items()} == {
        i: r["number"] for i, r in before.items()
    }  # left as it was


def demo_params_dir():
    from lib import config

    return config.DEFAULT_PARAMS_DIR


def test_knack_nb_check_reads_the_tables_columns(demo, capsys):
    from lib.cli import main as cli

    assert cli(["check", "-a", "demo", "-e", "dev", "-c", "object_3"]) == 0  # no table yet
    assert publish_in_process().ok
    demo.knack.remove_field(APP_ID, "object_3", "field_30")
    upload_metadata(app_name="demo", env="dev")
    capsys.readouterr()

    assert cli(["check", "-a", "demo", "-e", "dev", "-c", "object_3"]) == 1
    out = capsys.readouterr().out
    (row,) = [
        ln
        for ln in out.splitlines()
        if "PostgreSQL table knack.demo_object_3" in ln and "currency" in ln
    ]
    assert "would blank" in row and "field_30" in row, row
    assert demo.postgres.password not in out


def test_a_retyped_bound_field_fails_before_writing(demo):
    assert publish_in_process().ok
    before = rows(demo)
    app = demo.knack._app(APP_ID)
    metadata = json.loads(json.dumps(app.metadata))
    obj = next(o for o in metadata["objects"] if o["key"] == "object_3")
    next(f for f in obj["fields"] if f["key"] == "field_10")["type"] = "short_text"
    app.set_metadata(metadata)
    change_records(demo, [FIRST], "after the retype")
    upload_metadata(app_name="demo", env="dev")
    full_sync()

    failed = publish_in_process()
    assert not failed.ok
    assert "column 'number' of PostgreSQL table knack.demo_object_3 would go blank" in failed.error
    assert "is short_text now (was number)" in failed.error
    assert rows(demo) == before  # nothing written, the changed record included
