"""Unit tests of the ArcGIS features built from formatted records (no server)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from emulators.knack import generate_app
from lib.publish import agol
from lib.publish.values import Refused
from lib.records import Formatted, format_records

CENTRAL = ZoneInfo("America/Chicago")
FIELDS = {
    "id": "esriFieldTypeString",
    "signal_id": "esriFieldTypeInteger",
    "location_name": "esriFieldTypeString",
    "modified_date": "esriFieldTypeDate",
    "is_flashing": "esriFieldTypeString",
    "cabinet_count": "esriFieldTypeDouble",
}


def layer(geometry_type="esriGeometryPoint", fields=FIELDS):
    return SimpleNamespace(
        fields=dict(fields),
        names={n.lower(): n for n in fields},
        geometry_type=geometry_type,
        oid_field="OBJECTID",
        name="signals",
    )


def result():
    return agol.AgolPublish(
        app_name="signals", env="dev", container="object_1", service_id="svc", layer_id=0
    )


@pytest.fixture(scope="module")
def formatted():
    metadata, data = generate_app(300, seed=1)
    return format_records(
        metadata["application"], "object_1", data["object_1"], location_field="field_3"
    )


def test_attributes_are_named_typed_and_dated_in_utc(formatted):
    r = result()
    f = formatted[0]
    feature = agol._feature(f, layer(), "id", CENTRAL, r)
    attrs = feature["attributes"]
    assert attrs["id"] == f.id
    assert attrs["signal_id"] == 1 and isinstance(attrs["signal_id"], int)
    assert attrs["is_flashing"] == str(f.values["is_flashing"])  # a boolean in a text field
    assert isinstance(attrs["cabinet_count"], float)
    when = dt.datetime.fromisoformat(f.values["modified_date"])
    assert attrs["modified_date"] == int(when.timestamp() * 1000)
    assert dt.datetime.fromtimestamp(attrs["modified_date"] / 1000, dt.UTC) == when
    # fields the layer lacks are dropped, and said so
    assert {"location", "signal_status", "notes"} <= set(r.dropped_fields)
    assert "location" not in attrs


def test_point_geometry_in_wgs84_lon_then_lat(formatted):
    f = next(x for x in formatted if x.location)
    feature = agol._feature(f, layer(), "id", CENTRAL, result())
    assert feature["geometry"] == {
        "x": f.location["longitude"],
        "y": f.location["latitude"],
        "spatialReference": {"wkid": 4326},
    }


def test_empty_coordinates_are_skipped_and_listed(formatted):
    r = result()
    empty = [f for f in formatted if not f.location]
    assert empty, "the generated app has records without a location"
    features = [agol._feature(f, layer(), "id", CENTRAL, r) for f in formatted]
    assert sum(ft is None for ft in features) == len(empty)
    assert set(r.skipped) == {f.id for f in empty}
    assert all("no coordinates" in why for why in r.skipped.values())
    assert len(r.points) == len(formatted) - len(empty)


def test_a_table_gets_no_geometry_and_skips_nothing(formatted):
    r = result()
    features = [agol._feature(f, layer(geometry_type=None), "id", CENTRAL, r) for f in formatted]
    assert all(ft is not None and "geometry" not in ft for ft in features)
    assert not r.skipped and not r.points


def test_a_list_of_addresses_is_a_multipoint():
    f = Formatted(
        "a" * 24,
        {},
        {},
        location=[
            {"latitude": 30.1, "longitude": -97.1},
            {"latitude": "30.2", "longitude": "-97.2"},
            {"latitude": "", "longitude": ""},  # Knack may hold empty strings: left out
        ],
        location_name="location",
    )
    feature = agol._feature(f, layer(), "id", CENTRAL, result())
    assert feature["geometry"] == {
        "points": [[-97.1, 30.1], [-97.2, 30.2]],
        "spatialReference": {"wkid": 4326},
    }
    one = Formatted(
        "b" * 24, {}, {}, location={"latitude": 30.1, "longitude": -97.1}, location_name="location"
    )
    multipoint = agol._feature(one, layer("esriGeometryMultipoint"), "id", CENTRAL, result())
    assert multipoint["geometry"]["points"] == [[-97.1, 30.1]]


def test_values_by_field_type():
    assert agol._value(["a", "b"], "esriFieldTypeString", CENTRAL) == "a, b"
    assert agol._value(True, "esriFieldTypeSmallInteger", CENTRAL) == 1
    assert agol._value("$1,234.50", "esriFieldTypeDouble", CENTRAL) == 1234.5
    assert agol._value("", "esriFieldTypeString", CENTRAL) is None
    # a wall time with no offset is the app's local time
    noon = agol._value("2026-07-01T12:00:00", agol.DATE, CENTRAL)
    assert noon == int(dt.datetime(2026, 7, 1, 17, tzinfo=dt.UTC).timestamp() * 1000)
    # a value the field cannot take is refused (the record fails), never sent as null
    with pytest.raises(Refused, match="not a number"):
        agol._value("n/a", "esriFieldTypeInteger", CENTRAL)
    with pytest.raises(Refused, match="not an ISO date"):
        agol._value("not a date", agol.DATE, CENTRAL)
    with pytest.raises(Refused, match="not a whole number"):
        agol._value("3.5", "esriFieldTypeInteger", CENTRAL)  # never truncated to 3
    with pytest.raises(Refused, match="outside -32768..32767"):
        agol._value(40000, "esriFieldTypeSmallInteger", CENTRAL)
    # empty values stay null, whatever the type
    for kind in (agol.DATE, "esriFieldTypeInteger", "esriFieldTypeDouble"):
        assert agol._value(" ", kind, CENTRAL) is None and agol._value([], kind, CENTRAL) is None


def test_a_record_without_the_matching_value_is_skipped():
    r = result()
    f = Formatted("c" * 24, {"signal_id": None}, {}, location=None, location_name=None)
    assert agol._feature(f, layer(geometry_type=None), "signal_id", CENTRAL, r) is None
    assert "matching field" in r.skipped["c" * 24]


class FakeLayer:
    """A layer whose first applyEdits adds the features but answers a failure for them, as
    when the library re-sends a request that timed out after the layer applied it."""

    oid_field = "OBJECTID"
    name = "fake"

    def __init__(self):
        self.held: dict[str, int] = {}
        self.calls: list[dict] = []
        self.layer = self

    def call(self, what, fn, *args, before_retry=None, **kwargs):
        return fn(*args, **kwargs)

    def existing(self, match, values):
        return {v: [self.held[v]] for v in values if v in self.held}

    def edit_features(self, adds, updates, rollback_on_failure):
        self.calls.append({"adds": len(adds), "updates": len(updates)})
        if len(self.calls) == 1:
            for f in adds:
                self.held[f["attributes"]["id"]] = len(self.held) + 1
            return {
                "addResults": [
                    {"success": False, "error": {"code": 1000, "description": "dup"}} for _ in adds
                ],
                "updateResults": [],
            }
        return {
            "addResults": [{"success": True} for _ in adds],
            "updateResults": [{"success": True} for _ in updates],
        }


def test_an_add_that_failed_but_landed_becomes_an_update():
    fake, r = FakeLayer(), result()
    features = [(rid, {"attributes": {"id": rid}}) for rid in ("a" * 24, "b" * 24)]
    agol._upsert(fake, "id", features, {}, 500, r)
    assert fake.calls == [{"adds": 2, "updates": 0}, {"adds": 0, "updates": 2}]
    assert (r.added, r.updated, r.failed) == (0, 2, {})


def test_every_publisher_is_found_whatever_was_imported_first():
    from lib.publish import get_publisher  # agol was imported by this module already

    assert get_publisher("socrata").__module__ == "lib.publish.socrata"
    assert get_publisher("agol") is agol.publish


def test_layer_field_names_match_whatever_their_case(formatted):
    fields = {"ID": "esriFieldTypeString", "Signal_ID": "esriFieldTypeInteger"}
    r = result()
    feature = agol._feature(
        formatted[0], layer(geometry_type=None, fields=fields), "ID", CENTRAL, r
    )
    assert feature["attributes"] == {"ID": formatted[0].id, "Signal_ID": 1}
    assert "signal_id" not in r.dropped_fields


def test_repeated_skip_reasons_are_one_row_with_their_ids(formatted):
    """23 records without coordinates are one row (why, how many, which), not 23."""
    from lib.publish.run import grouped_table

    skipped = {f"id{i:02d}": "no coordinates in 'Location'" for i in range(23)}
    skipped["other"] = "a value already taken"
    table = grouped_table(skipped, "record ids", "why")
    assert table.columns == ["why", "records", "record ids"]
    first, second = table.rows
    assert (first["why"], first["records"]) == ("no coordinates in 'Location'", 23)
    assert first["record ids"].split(", ") == [f"id{i:02d}" for i in range(23)]
    assert (second["records"], second["record ids"]) == (1, "other")
