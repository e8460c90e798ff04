"""backup_socrata.ipynb and ``knack-nb restore-socrata`` end to end: papermill → kernel →
sodapy → the Socrata emulator, and boto3 → moto S3.

The demo dataset is filled by an in-process full publish of object_3 (25 rows, one column of
each type the publisher writes: text, number, checkbox, calendar_date, point). Backups whose
report is not what a test checks run in process (``tests/inprocess.py`` takes the notebook's
own step), stamped with times relative to now. The emulator serves at most a few rows per
request here, so every backup pages.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import zlib
from pathlib import Path

import pytest
import yaml
from inprocess import run as run_in_process

from emulators.stack import DEMO_DATASET
from lib import backup, cli, reports, sync
from lib.errors import ConfigError
from lib.metadata import upload_metadata

PARAMS = Path(__file__).resolve().parents[2] / "params" / "demo.yaml"
PREFIX = f"_backups/demo-dev/object_3/socrata-{DEMO_DATASET}/"
PAGE = 7  # rows per request the emulator serves: 25 rows are 4 pages
IDS = {"app_name": "demo", "container": "object_3", "env": "dev"}


@pytest.fixture
def published(demo_env, monkeypatch):
    """object_3 published to the demo dataset; the emulator pages by PAGE rows."""
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    assert run_in_process("upsert_knack_container_to_socrata", **IDS).ok
    monkeypatch.setattr(demo_env.socrata, "max_limit", PAGE)
    monkeypatch.setattr(demo_env.socrata, "after_request", None)
    assert len(demo_env.socrata.rows(DEMO_DATASET)) == 25
    return demo_env


def demo_params(tmp_path, monkeypatch, container=None, **socrata) -> None:
    params = yaml.safe_load(PARAMS.read_text())
    params["containers"]["object_3"]["socrata"].update(socrata)
    params["containers"]["object_3"].update(container or {})
    folder = tmp_path / "params"
    folder.mkdir(exist_ok=True)
    (folder / "demo.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(folder))


def run_backup() -> reports.RunResult:
    return reports.run_notebook("backup_socrata", **IDS)


def read_backup(stack, key: str) -> list[list[str]]:
    body = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read()
    return list(csv.reader(io.StringIO(gzip.decompress(body).decode("utf-8"), newline="")))


def socrata_csv(stack) -> list[list[str]]:
    """The whole dataset as Socrata's own CSV shows it, in one request (no cap)."""
    import requests

    stack.socrata.max_limit = 50_000
    try:
        answer = requests.get(
            f"{stack.socrata.url}/resource/{DEMO_DATASET}.csv",
            params={"$order": ":id", "$limit": 50_000},
            timeout=30,
        )
    finally:
        stack.socrata.max_limit = PAGE
    answer.raise_for_status()
    return list(csv.reader(io.StringIO(answer.text, newline="")))


def backup_keys(stack) -> list[str]:
    return sorted(stack.s3_keys(PREFIX))


def report_text(stack, result) -> str:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def ago(**delta) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(**delta)


def restore(*args: str) -> int:
    return cli.main(["restore-socrata", "-a", "demo", "-e", "dev", "-c", "object_3", *args])


# --- backup ----------------------------------------------------------------------------


def test_backup_equals_the_dataset_row_for_row(published):
    result = run_backup()
    assert result.ok, result.error
    s = result.summary
    assert (s["rows"], s["attempts"], s["kept"], s["deleted"], s["errors"]) == (25, 1, 1, 0, 0)
    (key,) = backup_keys(published)
    assert s["backup"] == f"s3://{published.bucket}/{key}"
    assert backup.STAMP and key.removeprefix(PREFIX).endswith(".csv.gz")
    stamp = dt.datetime.strptime(key.removeprefix(PREFIX), f"{backup.STAMP}.csv.gz")
    assert abs(stamp.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)

    # it paged: 25 rows at 7 a request are 4 pages and the empty page that ends them (sodapy
    # sends no $offset for 0)
    reads = [r for r in published.socrata.requests if r.path.endswith(".csv")]
    assert [int(r.query.get("$offset", 0)) for r in reads] == [0, 7, 14, 21, 25]
    assert all(r.query["$order"] == ":id" for r in reads)
    rows = read_backup(published, key)
    assert rows == socrata_csv(published)  # header and every row, cell for cell
    header = rows[0]
    columns = [c["fieldName"] for c in published.socrata.metadata(DEMO_DATASET)["columns"]]
    assert header == columns and "id" in header
    ids = [r[header.index("id")] for r in rows[1:]]
    assert sorted(ids) == sorted(r["id"] for r in published.socrata.rows(DEMO_DATASET))
    assert (
        s["bytes"] == published.s3().head_object(Bucket=published.bucket, Key=key)["ContentLength"]
    )

    text = report_text(published, result)
    assert "How to restore" in text
    stamp = key.removeprefix(PREFIX).removesuffix(".csv.gz")
    command = "knack-nb restore-socrata --app-name demo --env dev --container object_3"
    assert f"{command} --backup {stamp}" in text
    assert key in text
    for secret in (published.socrata_key_secret, published.socrata_app_token):
        assert secret not in text


def test_retention_keeps_exactly_backup_keep_newest_and_nothing_else(
    published, tmp_path, monkeypatch
):
    demo_params(tmp_path, monkeypatch, backup_keep=3)
    s3 = published.s3()
    foreign = f"{PREFIX}notes.txt"  # not a backup: retention never touches it
    s3.put_object(Bucket=published.bucket, Key=foreign, Body=b"kept by hand")
    older = []
    for days in (5, 4, 3, 2):
        done = backup.backup(**IDS, now=ago(days=days))
        assert done.ok, done.errors
        older.append(done.key)
        assert len(done.kept) == min(3, len(older))
    assert backup_keys(published) == sorted([*older[1:], foreign])  # the oldest went

    result = run_backup()  # stamped now: the newest
    assert result.ok, result.error
    assert (result.summary["kept"], result.summary["deleted"]) == (3, 1)
    new = result.summary["backup"].removeprefix(f"s3://{published.bucket}/")
    assert backup_keys(published) == sorted([older[2], older[3], new, foreign])
    text = report_text(published, result)
    assert older[1].rsplit("/", 1)[-1] in text  # the deleted one is named in the table


def test_backup_keep_1_keeps_the_new_backup_even_behind_a_newer_stamp(
    published, tmp_path, monkeypatch
):
    demo_params(tmp_path, monkeypatch, backup_keep=1)
    later = backup.backup(**IDS, now=ago(days=-1))  # a clock ahead: stamped tomorrow
    assert later.ok
    now = backup.backup(**IDS, now=ago(days=1))
    assert now.ok
    assert backup_keys(published) == sorted([later.key, now.key])  # neither deleted
    assert now.deleted == []


def test_a_dataset_written_during_the_backup_is_read_again(published):
    socrata = published.socrata
    extra = {"id": "5d79640000000000000000ff", "short_text": "written during the backup"}
    hits = []

    def write_once(request):
        if request.path.endswith(".csv") and not hits:
            hits.append(request)
            socrata.upsert_rows(DEMO_DATASET, [extra])

    socrata.after_request = write_once
    result = backup.backup(**IDS)
    assert result.ok, result.errors
    assert (result.attempts, result.rows) == (2, 26)
    rows = read_backup(published, result.key)
    assert rows == socrata_csv(published)
    assert extra["id"] in {r[0] for r in rows}


def test_a_dataset_that_keeps_changing_fails_the_run_and_deletes_nothing(published):
    first = backup.backup(**IDS, now=ago(days=1))
    assert first.ok
    socrata = published.socrata
    n = iter(range(10_000))

    def write_every_page(request):
        if request.path.endswith(".csv"):
            socrata.upsert_rows(DEMO_DATASET, [{"id": f"5d796400000000000000{next(n):04x}"}])

    socrata.after_request = write_every_page
    result = run_backup()
    assert not result.ok
    assert "failed its check 3 times" in result.error
    assert "Nothing was written to S3 and no backup was deleted" in result.error
    assert backup_keys(published) == [first.key]
    assert result.summary["attempts"] == 3
    text = report_text(published, result)
    assert "rerun when it is done" in text


def test_transient_socrata_errors_are_retried(published):
    published.socrata.faults.fail_next = 2
    published.socrata.faults.status = 503
    result = backup.backup(**IDS)
    assert result.ok, result.errors
    assert result.retries == 2 and result.rows == 25


def test_a_container_without_socrata_is_a_clear_error(published):
    with pytest.raises(ConfigError, match="view_6 has no `socrata:` settings"):
        backup.backup(app_name="demo", container="view_6", env="dev")
    result = reports.run_notebook("backup_socrata", app_name="demo", env="qa", container="object_3")
    assert not result.ok and "env must be 'prod' or 'dev'" in result.error


# --- restore ---------------------------------------------------------------------------


def test_restore_brings_a_damaged_dataset_back_equal_to_the_backup(published, capsys):
    socrata = published.socrata
    before = socrata.rows(DEMO_DATASET)
    made = backup.backup(**IDS)
    assert made.ok
    ids = [r["id"] for r in before]
    # damage: rows deleted, values changed or cleared (text, number, checkbox, date, point),
    # and a row the backup never had
    socrata.delete_rows(DEMO_DATASET, ids[:3])
    row = dict(before[5])
    changed = {"id": row["id"]}
    for name, value in row.items():
        if name == "id":
            continue
        if isinstance(value, bool):
            changed[name] = not value
        elif isinstance(value, dict):
            changed[name] = {"type": "Point", "coordinates": [1.0, 2.0]}
        else:
            changed[name] = None  # cleared
    socrata.upsert_rows(DEMO_DATASET, [changed, {"id": "5d7964000000000000000abc"}])
    assert socrata.rows(DEMO_DATASET) != before

    assert restore("--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run, nothing written" in out and "to_delete: 1" in out
    assert len(socrata.rows(DEMO_DATASET)) == 23

    assert restore() == 0
    out = capsys.readouterr().out
    assert "restored" in out and f"backup: s3://{published.bucket}/{made.key}" in out
    assert "rows_after: 25" in out and "deleted: 1" in out
    assert socrata.rows(DEMO_DATASET) == before  # every row, every typed value


def test_restore_of_a_chosen_backup_and_the_listing(published, capsys):
    socrata = published.socrata
    old = backup.backup(**IDS, now=ago(days=2))
    old_rows = socrata.rows(DEMO_DATASET)
    socrata.upsert_rows(DEMO_DATASET, [{"id": "5d7964000000000000000abc", "short_text": "new"}])
    new = backup.backup(**IDS, now=ago(days=1))
    assert old.ok and new.ok

    assert restore("--list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in listing] == [new.key, old.key]  # newest first

    # the forms --backup takes: the URL, the key, the file name and its stamp (the report's)
    for form in (f"s3://{published.bucket}/{old.key}", old.key, old.key.rsplit("/", 1)[-1]):
        assert restore("--dry-run", "--backup", form) == 0
        assert f"backup: s3://{published.bucket}/{old.key}" in capsys.readouterr().out
    assert restore("--backup", old.key.rsplit("/", 1)[-1].removesuffix(".csv.gz")) == 0
    assert socrata.rows(DEMO_DATASET) == old_rows
    assert restore("--backup", "20000101T000000Z") == 1
    err = capsys.readouterr().err
    assert "no backup '20000101T000000Z'" in err and new.key.rsplit("/", 1)[-1] in err


def test_restore_says_which_dataset_columns_the_backup_does_not_have(published, capsys):
    """A column added to the dataset after the backup: the restore leaves it as it is on
    the rows the dataset holds (the rows it creates have it empty) and says so, dry run too."""
    socrata = published.socrata
    made = backup.backup(**IDS)
    assert made.ok
    columns = socrata.metadata(DEMO_DATASET)["columns"]
    rows = socrata.rows(DEMO_DATASET)
    socrata.add_dataset(
        DEMO_DATASET,
        [
            *({k: c[k] for k in ("fieldName", "dataTypeName", "name")} for c in columns),
            {"fieldName": "inspector", "dataTypeName": "text", "name": "Inspector"},
        ],
        [{**r, "inspector": f"inspector {i}"} for i, r in enumerate(rows)],
    )
    socrata.delete_rows(DEMO_DATASET, [r["id"] for r in rows[:2]])
    capsys.readouterr()
    note = (
        "note: columns of the dataset that the backup does not have (added since it was "
        "taken) are left as they are on the rows the dataset holds, and empty on the rows "
        "the restore creates: inspector"
    )
    assert restore("--dry-run") == 0
    out = capsys.readouterr().out
    assert note in out and "columns_not_in_backup: ['inspector']" in out

    assert restore() == 0
    out = capsys.readouterr().out
    assert note in out and "created: 2" in out
    after = {r["id"]: r for r in socrata.rows(DEMO_DATASET)}
    assert [after[r["id"]].get("inspector") for r in rows[:3]] == [None, None, "inspector 2"]
    assert all(
        after[r["id"]]["inspector"] == f"inspector {i}" for i, r in enumerate(rows) if i >= 2
    )


def test_the_guard_refuses_a_destructive_restore(published, tmp_path, monkeypatch, capsys):
    socrata = published.socrata
    made = backup.backup(**IDS)
    assert made.ok
    socrata.upsert_rows(DEMO_DATASET, [{"id": f"5d7964000000000000000{i:03x}"} for i in range(40)])
    grown = socrata.rows(DEMO_DATASET)
    socrata.reset_log()

    assert restore() == 1  # 40 of 65 rows would go: more than 50%
    err = capsys.readouterr().err
    assert "refusing to restore" in err and "40 of the 65 rows" in err
    assert "mass_delete_threshold" in err and "allow_mass_delete: true" in err
    assert socrata.rows(DEMO_DATASET) == grown  # nothing changed
    assert not [r for r in socrata.requests if r.method in ("POST", "PUT")]

    demo_params(tmp_path, monkeypatch, container={"allow_mass_delete": True})
    assert restore() == 0
    assert len(socrata.rows(DEMO_DATASET)) == 25


def test_an_empty_backup_never_empties_the_dataset(published):
    socrata = published.socrata
    full = socrata.rows(DEMO_DATASET)
    socrata.delete_rows(DEMO_DATASET, [r["id"] for r in full])
    empty = backup.backup(**IDS, now=ago(days=1))
    assert empty.ok and empty.rows == 0
    assert read_backup(published, empty.key)[1:] == []  # a header, no rows
    socrata.upsert_rows(DEMO_DATASET, full)
    result = backup.restore(**IDS)
    assert not result.ok and "all 25 of the 25 rows" in result.errors[0]
    assert len(socrata.rows(DEMO_DATASET)) == 25


def test_a_corrupt_backup_is_refused_before_any_write(published, capsys):
    made = backup.backup(**IDS)
    assert made.ok
    published.s3().put_object(Bucket=published.bucket, Key=made.key, Body=b"not gzip")
    published.socrata.reset_log()
    assert restore() == 1
    assert "is not a readable gzip CSV" in capsys.readouterr().err
    assert not [r for r in published.socrata.requests if r.method in ("POST", "PUT")]


def corrupted_mid_stream(body: bytes) -> bytes:
    """``body`` (gzip) with one byte of its deflate stream changed so that zlib itself
    refuses it (not only gzip's CRC check at the end): the first such byte from the middle."""
    for at in range(len(body) // 2, len(body) - 8):
        bad = body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]
        try:
            gzip.decompress(bad)
        except zlib.error:
            return bad
        except (OSError, EOFError):
            continue
    raise AssertionError("no byte of the stream makes zlib fail")


def test_a_backup_corrupted_mid_file_is_one_line_and_nothing_is_written(published, capsys):
    made = backup.backup(**IDS)
    assert made.ok
    s3 = published.s3()
    body = s3.get_object(Bucket=published.bucket, Key=made.key)["Body"].read()
    s3.put_object(Bucket=published.bucket, Key=made.key, Body=corrupted_mid_stream(body))
    rows = published.socrata.rows(DEMO_DATASET)
    published.socrata.reset_log()
    capsys.readouterr()  # the backup's progress
    assert restore() == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert line.startswith(
        f"knack-nb: s3://{published.bucket}/{made.key} is not a readable gzip CSV"
    ), line
    assert "nothing was written to the dataset: pick another backup with --backup" in line
    assert not [r for r in published.socrata.requests if r.method in ("POST", "PUT", "DELETE")]
    assert published.socrata.rows(DEMO_DATASET) == rows


def test_no_backup_yet_is_a_clear_error(published, capsys):
    assert restore() == 1
    err = capsys.readouterr().err
    assert "no backup of dataset demo-allf" in err and "run backup_socrata first" in err


@pytest.mark.parametrize(
    ("cell", "kind", "value"),
    [
        ("", "text", None),
        ('a, "b"', "text", 'a, "b"'),
        ("3.5", "number", "3.5"),
        ("true", "checkbox", True),
        ("false", "checkbox", False),
        ("", "checkbox", None),
        ("2019-09-11T00:00:00.000", "calendar_date", "2019-09-11T00:00:00.000"),
        ("POINT (-97.7 30.2)", "point", {"type": "Point", "coordinates": [-97.7, 30.2]}),
        (
            "MULTIPOINT ((-97.7 30.2), (-97 3e1))",
            "multipoint",
            {"type": "MultiPoint", "coordinates": [[-97.7, 30.2], [-97.0, 30.0]]},
        ),
        ('{"type":"Point","coordinates":[1,2]}', "point", {"type": "Point", "coordinates": [1, 2]}),
        ("somewhere", "point", "somewhere"),
        ('{"url":"https://x.org"}', "url", {"url": "https://x.org"}),
        (
            '{"latitude":"30.2","longitude":"-97.7"}',
            "location",
            {"latitude": "30.2", "longitude": "-97.7"},
        ),
    ],
)
def test_csv_cells_become_upsert_values_by_column_type(cell, kind, value):
    assert backup._typed(cell, kind) == value  # noqa: SLF001


def test_the_installed_command_restores(published):
    """``knack-nb restore-socrata`` as an operator runs it: the console script, in a process
    of its own, with the credentials only in its environment."""
    import os
    import subprocess
    import sys

    socrata = published.socrata
    before = socrata.rows(DEMO_DATASET)
    assert backup.backup(**IDS).ok
    socrata.delete_rows(DEMO_DATASET, [before[0]["id"]])
    command = [
        str(Path(sys.executable).with_name("knack-nb")),
        "restore-socrata",
        "--app-name",
        "demo",
        "--env",
        "dev",
        "--container",
        "object_3",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "restore-socrata: restored" in done.stdout and "created: 1" in done.stdout
    assert socrata.rows(DEMO_DATASET) == before
    for secret in (published.socrata_key_secret, published.socrata_app_token):
        assert secret not in done.stdout + done.stderr
