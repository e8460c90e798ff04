"""The publish reports' outcome table: a row per count, and an ids column only when there
are ids to show (no empty column beside the bars)."""

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
