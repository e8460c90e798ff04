"""upload_metadata.ipynb end to end on metadata lacking optional members: every report cell
copes and says "not given" (papermill → kernel → Knack emulator → moto S3)."""

from __future__ import annotations

import copy

import pytest

from emulators.knack import load_fixture_app
from lib import reports, schema
from lib.metadata import upload_metadata


def sparse(case: str) -> dict:
    metadata, _ = load_fixture_app()
    app = copy.deepcopy(metadata["application"])
    if case == "bare":  # no counts, no scenes, no settings, objects without fields or name
        for member in ("counts", "scenes", "settings", "name"):
            del app[member]
        for obj in app["objects"][:3]:
            del obj["fields"]
        for obj in app["objects"][2:5]:
            del obj["name"]
    else:  # partial counts, views without source, settings without timezone
        app["counts"] = {"object_3": 23}
        del app["settings"]["timezone"]
        for scene in app["scenes"]:
            for view in scene["views"]:
                view.pop("source", None)
            scene.pop("slug", None)
        app["scenes"].append({"key": "scene_99"})  # a scene without views
    return app


def report_text(stack, result) -> str:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


@pytest.mark.parametrize("case", ["bare", "partial"])
def test_report_cells_cope_with_absent_optional_members(demo_env, case):
    """The first upload of the sparse metadata runs in process (the notebook's one call; its
    report's only branch of its own says "first upload", from no metadata at all); the second,
    still sparse and now changed, runs through papermill: every report cell, the diff's
    included, on sparse metadata."""
    stack = demo_env
    app = sparse(case)
    stack.knack.add_app(app, {})
    assert upload_metadata(app_name="demo", env="dev").written
    # a second upload diffs against the sparse metadata stored by the first
    changed = copy.deepcopy(app)
    changed["objects"][0].setdefault("fields", []).append(
        {"key": "field_900", "name": "Added", "type": "short_text"}
    )
    stack.knack.add_app(changed, {})
    second = reports.run_notebook("upload_metadata", app_name="demo", env="dev")
    assert second.ok, second.error
    assert second.summary["schema_changes"] == 1
    text = report_text(stack, second)
    assert "not given" in text
    assert "Traceback" not in text
    assert "need a full run" in text  # the diff's cell, on sparse metadata
    if case == "bare":
        assert "Knack gave no record counts" in text
        assert second.summary["views"] == 0
    else:
        assert "Knack gave no record count for" in text  # the objects left out of the plot


def test_helpers_say_not_given():
    app = sparse("bare")
    objects = schema.objects_table(app).by("object")
    first, named = app["objects"][0]["key"], app["objects"][5]["key"]
    assert objects[first]["fields"] == "not given"
    assert objects[first]["records"] == "not given"
    assert objects[app["objects"][3]["key"]]["name"] == "not given"
    assert objects[named]["name"] == app["objects"][5]["name"]
    assert schema.record_counts(app).counts == {}
    assert schema.app_description(app) == "name not given, timezone not given"
    partial = sparse("partial")
    counts = schema.record_counts(partial)
    assert counts.counts == {"object_3": 23}
    assert "Knack gave no record count for" in counts.note
    views = schema.views_table(partial)
    assert set(views.column("source object")) == {"not given"}
