import copy
import json
from pathlib import Path

from lib import schema

FIXTURE = Path(__file__).resolve().parents[2] / "emulators/fixtures/knackpy/metadata.json"


def metadata() -> dict:
    return json.loads(FIXTURE.read_text())["application"]


def test_tables_list_objects_views_and_counts():
    m = metadata()
    table = schema.objects_table(m)
    objects = table.by("object")
    assert len(table) == len(objects) == 7
    assert objects["object_3"]["name"] == "all_fields_test"
    assert objects["object_3"]["records"] == 23
    assert objects["object_3"]["fields"] == 32
    assert table.columns == ["object", "name", "fields", "records"]
    views = schema.views_table(m).by("view")
    assert len(views) == 9
    assert views["view_6"]["scene"] == "scene_1"
    assert views["view_6"]["source object"] == "object_3"
    html = schema.objects_table(m)._repr_html_()  # as the report shows it
    assert html.count("<tr>") == 1 + 7 and "all_fields_test" in html
    assert schema.view_scene(m, "view_18") == "scene_6"
    assert schema.view_scene(m, "view_999") is None


def test_diff_of_equal_metadata_is_empty():
    assert schema.diff(metadata(), metadata()) == []


def test_diff_finds_added_removed_renamed_retyped():
    before = metadata()
    after = copy.deepcopy(before)
    obj3 = next(o for o in after["objects"] if o["key"] == "object_3")
    fields = {f["key"]: f for f in obj3["fields"]}
    fields["field_7"]["name"] = "Short Text Renamed"
    fields["field_10"]["type"] = "currency"
    obj3["fields"] = [f for f in obj3["fields"] if f["key"] != "field_22"]
    obj3["fields"].append({"key": "field_999", "name": "New", "type": "short_text"})
    after["objects"] = [o for o in after["objects"] if o["key"] != "object_15"]
    after["objects"].append({"key": "object_99", "name": "new object", "fields": []})

    changes = {(c.container, c.change, c.field): c for c in schema.diff(before, after)}
    assert set(changes) == {
        ("object_3", "field renamed", "field_7"),
        ("object_3", "field retyped", "field_10"),
        ("object_3", "field removed", "field_22"),
        ("object_3", "field added", "field_999"),
        ("object_15", "object removed", ""),
        ("object_99", "object added", ""),
    }
    renamed = changes[("object_3", "field renamed", "field_7")]
    assert (renamed.before, renamed.after) == ("Short Text", "Short Text Renamed")
    assert changes[("object_3", "field retyped", "field_10")].after == "currency"
    # views showing a changed object need a full run too
    assert schema.containers_needing_full_run(list(changes.values()), after) == [
        "object_3",
        "object_15",
        "object_99",
        "view_6",
        "view_12",
        "view_18",
    ]
    table = schema.changes_table(list(changes.values()))
    assert list(table.columns) == ["container", "change", "field", "before", "after"]
    assert len(table) == 6
