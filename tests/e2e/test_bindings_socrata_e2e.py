"""A schema change in Knack never blanks a Socrata column (lib/bindings), end to end on the
demo (object_3 and its dataset): papermill → kernel → moto S3 → sodapy → the Socrata
emulator, with the field renamed or removed in the Knack emulator.

Set-up runs (the first publish, syncs) take the notebooks' own steps in process
(tests/inprocess.py); the runs whose report or exit a test checks go through papermill
(``reports.run_notebook``) or ``knack-nb`` itself (``lib.cli.main``).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml
from inprocess import run as run_in_process

from emulators.stack import DEMO_DATASET
from lib import reports, snapshot, sync
from lib.cli import main as cli
from lib.clients.app_store import AppStore
from lib.metadata import upload_metadata

PARAMS = Path(__file__).resolve().parents[2] / "params" / "demo.yaml"
APP_ID = "5d79512148c4af00106d1507"
BINDINGS = f"_state/bindings/socrata/{DEMO_DATASET}.json"
AUTO = "_state/demo-dev/object_3/upsert_knack_container_to_socrata.json"
RECORD = "5d7964422d7159001659b27a"  # the fixture's first record
FIELD, LABEL, COLUMN = "field_7", "Short Text", "short_text"


@pytest.fixture
def demo(demo_env):
    """Metadata and object_3 in S3 (dev), published once to the demo dataset: the
    bindings are stored."""
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    first = publish_in_process()
    assert first.ok, first.error
    assert BINDINGS in demo_env.s3_keys("_state/bindings/")
    return demo_env


def publish(env="dev", date=None) -> reports.RunResult:
    return reports.run_notebook(
        "upsert_knack_container_to_socrata",
        app_name="demo",
        env=env,
        container="object_3",
        date=date,
    )


def publish_in_process(env="dev") -> reports.RunResult:
    return run_in_process(
        "upsert_knack_container_to_socrata", app_name="demo", env=env, container="object_3"
    )


def dataset(stack) -> dict[str, dict]:
    return {r["id"]: r for r in stack.socrata.rows(DEMO_DATASET)}


def text_of(stack, key) -> str:
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def report_text(stack, result) -> str:
    """What a reader of the report sees: the text/plain form of every output, and the
    streams, of the report in S3."""
    nb = nbformat.reads(
        text_of(stack, result.report.removeprefix(f"s3://{stack.bucket}/")), as_version=4
    )
    return "\n".join(
        out.get("text") or out.get("data", {}).get("text/plain", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def change_record(stack, value: str) -> None:
    """Change the first record's field_7 in Knack."""
    record = next(r for r in stack.knack.records(APP_ID, "object_3") if r["id"] == RECORD)
    record[FIELD] = record[f"{FIELD}_raw"] = value
    stack.knack.put_record(APP_ID, "object_3", record)


def sync_all(env="dev") -> None:
    upload_metadata(app_name="demo", env=env)
    assert sync.sync_container(app_name="demo", container="object_3", env=env).ok


def writes(stack) -> list:
    return [r for r in stack.socrata.requests if r.method in ("POST", "PUT", "DELETE")]


def with_params(tmp_path, monkeypatch, **socrata) -> None:
    params = yaml.safe_load(PARAMS.read_text())
    params["containers"]["object_3"]["socrata"].update(socrata)
    folder = tmp_path / "params"
    folder.mkdir(exist_ok=True)
    (folder / "demo.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(folder))


def test_a_renamed_field_keeps_filling_its_column_and_the_reports_say_so(demo):
    """On the old code (columns by current label) the publish dropped `short_label`, left
    `short_text` stale and exited 0."""
    demo.knack.rename_field(APP_ID, "object_3", FIELD, "Short Label")
    change_record(demo, "changed after the rename")

    uploaded = reports.run_notebook("upload_metadata", app_name="demo", env="dev")
    assert uploaded.ok, uploaded.error
    text = report_text(demo, uploaded)
    assert "renamed (followed)" in text and "'Short Text' → 'Short Label'" in text
    assert "not published yet" in text  # the ArcGIS layer: never published
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok

    result = publish()
    assert result.ok, result.error
    assert result.summary["dropped_fields"] == ["signature"]  # as before the rename
    rows = dataset(demo)
    assert rows[RECORD][COLUMN] == "changed after the rename"
    assert "short_label" not in rows[RECORD]
    text = report_text(demo, result)
    assert "field_7 renamed 'Short Text' → 'Short Label': still published as `short_text`" in text
    stored = json.loads(text_of(demo, BINDINGS))
    assert stored["bindings"][COLUMN] == {
        "field": FIELD,
        "label": "Short Label",
        "type": "short_text",
    }


def test_a_removed_field_fails_the_publish_before_any_write_until_its_column_is_retired(
    demo, tmp_path, monkeypatch
):
    """On the old code the publish succeeded (exit 0) and sent every row without
    short_text: new rows would get nulls, the others keep stale values."""
    before = dataset(demo)
    auto_before, bindings_before = text_of(demo, AUTO), text_of(demo, BINDINGS)
    demo.knack.remove_field(APP_ID, "object_3", FIELD)
    record = next(r for r in demo.knack.records(APP_ID, "object_3") if r["id"] == RECORD)
    record["field_10"] = record["field_10_raw"] = 7777
    demo.knack.put_record(APP_ID, "object_3", record)
    sync_all()
    demo.socrata.reset_log()

    result = publish()
    assert not result.ok
    for words in (
        "column 'short_text' of Socrata dataset demo-allf would go blank",
        "field_7 'Short Text'",
        "socrata.fields",
        "socrata.retired_columns: [short_text]",
        "Nothing was written",
        "a rerun alone fails the same way",
    ):
        assert words in result.error, words
    assert writes(demo) == [] and demo.socrata.requests  # it read the columns, wrote nothing
    assert dataset(demo) == before
    assert text_of(demo, AUTO) == auto_before  # the auto state did not move
    assert text_of(demo, BINDINGS) == bindings_before  # nor the bindings
    assert "would blank (fails)" in report_text(demo, result)

    with_params(tmp_path, monkeypatch, retired_columns=[COLUMN])
    retired = publish_in_process()
    assert retired.ok, retired.error
    rows = dataset(demo)
    assert {rid: r.get(COLUMN) for rid, r in rows.items()} == {
        rid: r.get(COLUMN) for rid, r in before.items()
    }  # left as it was
    assert rows[RECORD]["number"] == "7777"  # the other columns were published
    assert COLUMN not in json.loads(text_of(demo, BINDINGS))["bindings"]


def test_bindings_survive_a_change_of_env_a_full_run_and_a_rebuilt_snapshot(demo):
    """Published from dev, then (after the rename) from prod: the bindings are the
    dataset's. On the old code the prod publish dropped `short_label`."""
    demo.knack.rename_field(APP_ID, "object_3", FIELD, "Short Label")
    change_record(demo, "from prod")
    sync_all(env="prod")
    from_prod = publish_in_process(env="prod")
    assert from_prod.ok, from_prod.error
    assert dataset(demo)[RECORD][COLUMN] == "from prod"
    assert from_prod.summary["dropped_fields"] == ["signature"]

    # dev: a full sync, then its snapshot rebuilt from the stored records
    change_record(demo, "from dev")
    sync_all(env="dev")  # full
    store = AppStore(app_name="demo", env="dev")
    demo.s3().delete_object(Bucket=demo.bucket, Key=snapshot.snapshot_key(store, "object_3"))
    rebuilt = run_in_process(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3", date="auto"
    )
    assert rebuilt.ok, rebuilt.error
    # an incremental run with no snapshot: rebuilt from the 25 stored records
    assert (rebuilt.summary["mode"], rebuilt.summary["snapshot_rows"]) == ("incremental", 25)
    assert json.loads(text_of(demo, BINDINGS))["bindings"][COLUMN]["field"] == FIELD
    from_dev = publish(env="dev")
    assert from_dev.ok, from_dev.error
    assert dataset(demo)[RECORD][COLUMN] == "from dev"


def test_knack_nb_check_on_the_demo_then_after_a_removal(demo, capsys):
    """On the old code there was no check command (argparse: exit 2)."""
    assert cli(["check", "-a", "demo", "-e", "dev"]) == 0
    out = capsys.readouterr().out
    assert "nothing would blank" in out
    for words in ("object_3", "Socrata dataset demo-allf", "ArcGIS item", "short_text", "field_7"):
        assert words in out, words
    assert "signature (text)" in out and "new (not published)" in out

    demo.knack.remove_field(APP_ID, "object_3", FIELD)
    demo.socrata.reset_log()
    assert cli(["check", "-a", "demo", "-e", "dev", "-c", "object_3", "--refresh"]) == 1
    captured = capsys.readouterr()
    table = [line for line in captured.out.splitlines() if "would blank (fails)" in line]
    assert any("Socrata dataset demo-allf" in line and COLUMN in line for line in table), table
    assert "column 'short_text' of Socrata dataset demo-allf would go blank" in captured.err
    assert writes(demo) == []


def test_params_pin_a_column_to_a_field_of_another_name(demo, tmp_path, monkeypatch):
    with_params(tmp_path, monkeypatch, fields={COLUMN: "field_8"})  # "Rich Text"
    result = publish_in_process()
    assert result.ok, result.error
    rows = dataset(demo)
    assert all(r.get(COLUMN) == r.get("rich_text") for r in rows.values())
    assert any(r.get(COLUMN) for r in rows.values())
    assert "short_text" in result.summary["dropped_fields"]  # field_7 fills no column now
    stored = json.loads(text_of(demo, BINDINGS))["bindings"]
    assert stored[COLUMN] == {"field": "field_8", "label": "Rich Text", "type": "rich_text"}


def test_unreadable_bindings_fail_before_any_write_naming_the_object(demo):
    demo.s3().put_object(Bucket=demo.bucket, Key=BINDINGS, Body=b"{not json")
    demo.socrata.reset_log()
    result = publish_in_process()
    assert not result.ok
    assert f"s3://{demo.bucket}/{BINDINGS} is not JSON" in result.error
    assert "the next publish then binds the columns by their labels again" in result.error
    assert writes(demo) == []
