"""The publish reports' outcome table: a row per count, and an ids column only when there
are ids to show (no empty column beside the bars)."""

from emulators.knack import load_fixture_app
from lib import bindings, config
from lib.publish.run import summary_line
from lib.publish.socrata import SocrataPublish


def result(**kw) -> SocrataPublish:
    return SocrataPublish(app_name="demo", env="dev", container="object_3", resource_id="x", **kw)


def test_an_outcome_with_no_deletions_has_no_ids_column():
    r = result(created=25, read=25)
    table = r.outcome()
    assert table.columns == ["what", "records"]
    assert [row["what"] for row in table.rows] == [
        "read from S3",
        "created",
        "updated",
        "deleted",
        "kept",
    ]


def test_an_outcome_with_deletions_names_them():
    r = result(read=2, deleted=["a" * 24, "b" * 24])
    table = r.outcome()
    assert table.columns == ["what", "records", "ids"]
    deleted = next(row for row in table.rows if row["what"] == "deleted")
    assert deleted["records"] == 2 and deleted["ids"] == f"{'a' * 24}, {'b' * 24}"


def test_the_log_line_says_lists_as_words():
    line = summary_line({"container": "x", "mode": "full", "dropped_fields": ["a", "b"]})
    assert line == "mode full · dropped_fields a, b"  # before: dropped_fields ['a', 'b']


def test_the_bindings_table_names_its_container_and_destination_once():
    metadata = load_fixture_app()[0]["application"]
    destination = bindings.Destination.socrata(config.SocrataConfig(resource_id="demo-allf"))
    r = result()
    r.plan = bindings.plan(
        destination,
        "object_3",
        bindings.container_fields(metadata, "object_3"),
        {"short_text": "text"},
        {},
        app_name="demo",
    )
    table = r.bindings_table()
    assert table.columns == ["column", "field", "label", "status", "note"]
    assert table.caption == f"object_3 → {destination.what}"
