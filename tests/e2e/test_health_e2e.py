"""The health check (``knack-nb health``, ``lib.health``, ``health.ipynb``) on the demo.

The demo is synced, published and backed up in process (:func:`healthy_demo`); then:
all ok; records deleted from S3 behind the sync's back (mismatch: fail); a container never
synced (fail); a container whose Knack count has not changed for weeks but was synced an
hour ago (ok), on a clock three weeks ahead (the check's ``now``); a drop of the Knack count
since the last check (fail); a failing sync (fail, with its error); and the notebook itself
through papermill (its summary's ``containers``).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from inprocess import run

from lib import health
from lib.cli import main as cli
from lib.reports import run_notebook

KNACK_NB = str(Path(sys.executable).with_name("knack-nb"))
CONTAINERS = ("object_3", "view_6")


def healthy_demo() -> None:
    """The demo as ``make demo`` leaves it: metadata, both containers synced, object_3
    published to Socrata and ArcGIS, its dataset backed up."""
    steps = [("upload_metadata", None)]
    steps += [("knack_container_to_s3", c) for c in CONTAINERS]
    steps += [
        (name, "object_3")
        for name in (
            "upsert_knack_container_to_socrata",
            "knack_container_to_agol",
            "backup_socrata",
        )
    ]
    for notebook, container in steps:
        done = run(notebook, app_name="demo", env="dev", container=container)
        assert done.ok, (notebook, done.error)


def statuses(result: health.HealthResult) -> dict[str, str]:
    return {c: h.status for c, h in result.containers.items()}


def test_the_healthy_demo_is_all_ok_from_the_command_line(demo_env):
    healthy_demo()
    done = subprocess.run(
        [KNACK_NB, "health", "-a", "demo", "-e", "dev"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "health of demo-dev"
    rows = {line.split()[0]: line for line in lines[2:4]}
    assert set(rows) == set(CONTAINERS)
    for line in rows.values():
        assert "✓ ok" in line and " s ago" in line
    assert "no problem found" in done.stdout
    # object_3's counts: 25 in Knack, S3 and Socrata; 2 features (the records with
    # coordinates: the layer has a location_field)
    assert rows["object_3"].split()[9:13] == ["25", "25", "25", "2"]
    for secret in demo_env.secrets:
        assert secret not in done.stdout + done.stderr


def test_records_deleted_from_s3_behind_the_syncs_back_fail_with_the_difference(demo_env):
    healthy_demo()
    s3 = demo_env.s3()
    keys = sorted(k for k in demo_env.s3_keys("demo-dev/view_6/") if k.endswith(".json"))
    for key in keys[:3]:
        s3.delete_object(Bucket=demo_env.bucket, Key=key)
    result = health.check_app(app_name="demo", env="dev")
    assert statuses(result) == {"object_3": "ok", "view_6": "fail"}
    (problem,) = result.containers["view_6"].problems
    assert problem.startswith("mismatch: S3 holds 22 records, Knack counts 25: 3 missing from S3")
    assert result.summary()["containers"]["view_6"] == {"status": "fail", "problems": [problem]}
    assert result.errors == [f"view_6: {problem}"] and result.rerun_helps is False

    assert cli(["health", "-a", "demo", "-e", "dev"]) == 1  # exit 1 on any fail


def test_a_container_never_synced_fails(demo_env, capsys):
    run("upload_metadata", app_name="demo", env="dev")
    assert run("knack_container_to_s3", app_name="demo", env="dev", container="view_6").ok
    result = health.check_app(app_name="demo", env="dev")
    assert result.containers["object_3"].status == "fail"
    assert result.containers["object_3"].problems[0] == (
        "never synced: run knack_container_to_s3 for object_3"
    )
    assert result.containers["view_6"].status == "ok"
    assert cli(["health", "-a", "demo", "-e", "dev"]) == 1
    out = capsys.readouterr().out
    assert "object_3 fail: never synced: run knack_container_to_s3 for object_3" in out


def test_unchanged_for_weeks_but_synced_an_hour_ago_is_ok(demo_env):
    """The clock reads three weeks after the records were written: the last check (two weeks
    before it) found the same counts, and the last sync started an hour before it."""
    healthy_demo()
    now = dt.datetime.now(dt.UTC) + dt.timedelta(days=21)
    store = health.RunStore(app_name="demo", env="dev")
    first = health.check_app(app_name="demo", env="dev")  # the counts of an earlier check
    state = store.get_json(health.state_key(store))
    state["checked_at"] = (now - dt.timedelta(days=14)).isoformat()
    store.put_json(health.state_key(store), state)
    for container in CONTAINERS:
        key = store.state_key("knack_container_to_s3", container)
        synced = store.get_json(key)
        synced["last_success_start"] = (now - dt.timedelta(hours=1)).isoformat()
        store.put_json(key, synced)
    # the backup is made daily: one taken this morning of the clock's day
    later = now - dt.timedelta(hours=1)
    for key in demo_env.s3_keys("_backups/"):
        moved = key.rsplit("/", 1)[0] + f"/{later:%Y%m%dT%H%M%SZ}.csv.gz"
        demo_env.s3().copy_object(
            Bucket=demo_env.bucket, Key=moved, CopySource={"Bucket": demo_env.bucket, "Key": key}
        )

    result = health.check_app(app_name="demo", env="dev", now=now)
    assert statuses(first) == statuses(result) == {"object_3": "ok", "view_6": "ok"}
    for h in result.containers.values():
        assert h.problems == []
        assert h.line == "no change for 21 days, last sync 1 h ago, ok"


def test_a_drop_of_knacks_count_since_the_last_check_fails(demo_env):
    healthy_demo()
    health.check_app(app_name="demo", env="dev")  # the counts: 25 in Knack
    knack, app_id = demo_env.knack, demo_env.fixture_app_id
    for record in knack.records(app_id, "object_3")[10:]:  # view_6 shows object_3's records
        knack.delete_record(app_id, "object_3", record["id"])
    result = health.check_app(app_name="demo", env="dev")
    assert statuses(result) == {"object_3": "fail", "view_6": "fail"}
    problems = result.containers["view_6"].problems
    assert problems == [
        problems[0],
        "S3 holds 15 records more than Knack counts (25 vs 10): deleted in Knack; the next "
        "full run removes them",
    ]
    assert problems[0].startswith("drop: Knack's count fell from 25 to 10 since the last check")
    assert problems[0].endswith(": 60%, more than mass_delete_threshold 50%")


def test_a_failing_sync_fails_with_its_error(demo_env):
    healthy_demo()
    demo_env.knack.faults.update({"status": 400, "fail_next": 1, "message": "Bad filter"})
    done = run_notebook("knack_container_to_s3", app_name="demo", env="dev", container="view_6")
    assert not done.ok
    result = health.check_app(app_name="demo", env="dev")
    view = result.containers["view_6"]
    assert view.status == "fail"
    assert view.problems[0].startswith("failing: 1 sync run since the last success failed;")
    assert "KnackAPIError: Knack refused GET" in view.problems[0]


def test_the_health_notebook_glues_every_containers_status(demo_env, tmp_path):
    healthy_demo()
    out = tmp_path / "health.ipynb"
    done = run_notebook("health", app_name="demo", env="dev", output=str(out))
    assert done.ok, done.error
    assert done.summary["containers"] == {
        "object_3": {"status": "ok", "problems": []},
        "view_6": {"status": "ok", "problems": []},
    }
    text = json.dumps(json.loads(out.read_text()))
    assert "health of demo-dev" in text
    for secret in demo_env.secrets:
        assert secret not in text


def test_a_published_field_removed_in_knack_fails_as_a_column_that_would_blank(demo_env):
    """The schema-change rule (``knack-nb check``) is part of health: once the metadata with
    the field removed is fetched, the container fails before its next publish does."""
    healthy_demo()
    assert health.check_app(app_name="demo", env="dev").containers["object_3"].status == "ok"
    demo_env.knack.remove_field(demo_env.fixture_app_id, "object_3", "field_7")  # short_text
    assert run("upload_metadata", app_name="demo", env="dev").ok
    result = health.check_app(app_name="demo", env="dev")
    problems = result.containers["object_3"].problems
    blank = [p for p in problems if p.startswith("would blank: ")]
    assert result.containers["object_3"].status == "fail"
    assert len(blank) == 2, problems  # the Socrata column and the ArcGIS field
    for problem in blank:
        assert "'short_text'" in problem and "field_7" in problem, problem
    assert any("Socrata dataset" in p for p in blank) and any("layer" in p for p in blank)
    assert cli(["health", "-a", "demo", "-e", "dev"]) == 1
