"""The Socrata publisher in-process against the stand-ins: naming, every fixture field type
into text columns, retries, bad configuration."""

from __future__ import annotations

import pytest

from emulators.knack import load_fixture_app
from emulators.stack import DEMO_DATASET, socrata_columns
from lib import sync
from lib.errors import ConfigError
from lib.metadata import upload_metadata
from lib.publish import get_publisher
from lib.records import coordinates, field_name

APP_ID = "5d79512148c4af00106d1507"


@pytest.mark.parametrize(
    "label, name",
    [
        ("Date/Time - w/ Time default current", "date_time___w__time_default_current"),
        ("Yes/No", "yes_no"),
        ("id", "_id"),
        ("ID", "_id"),
        ("Signal ID", "signal_id"),
        ("Order Total ($)", "order_total____"),
        ("  Location Name ", "location_name"),
    ],
)
def test_field_names(label, name):
    assert field_name(label) == name


def test_coordinates_of_one_several_or_no_addresses():
    assert coordinates({"latitude": 30.1, "longitude": -97.2}) == [(-97.2, 30.1)]
    assert coordinates([{"latitude": "1", "longitude": "2"}, {"latitude": 3, "longitude": 4}]) == [
        (2.0, 1.0),
        (4.0, 3.0),
    ]
    assert coordinates("") == [] and coordinates(None) == []
    assert coordinates({"latitude": "", "longitude": ""}) == []


@pytest.fixture
def demo(demo_env):
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    return demo_env


def test_every_fixture_field_type_is_accepted_by_text_columns(demo):
    # many real datasets hold everything as text: every Knack type must still be accepted
    columns = [
        {**c, "dataTypeName": "text"} if c["fieldName"] != "id" else c
        for c in socrata_columns(
            load_fixture_app()[0]["application"], "object_3", location_field=None
        )
    ]
    demo.socrata.add_dataset(DEMO_DATASET, columns)
    result = get_publisher("socrata")(app_name="demo", container="object_3", env="dev")
    assert result.ok, result.errors
    rows = {r["id"]: r for r in demo.socrata.rows(DEMO_DATASET)}
    assert len(rows) == 25 and not result.dropped_fields
    first = rows["5d7964422d7159001659b27a"]
    assert first["yes_no"] == "True"  # booleans as strings outside checkbox columns
    assert first["number"] == "100"  # numbers as text
    # a text column keeps knackpy's ISO-8601 with the app's offset (only calendar_date
    # columns take floating timestamps)
    assert first["date_time___w__time_default_current"] == "2018-07-03T10:26:00-05:00"


def test_5xx_are_retried(demo):
    demo.socrata.faults.fail_next = 2
    result = get_publisher("socrata")(app_name="demo", container="object_3", env="dev")
    assert result.ok and result.retries == 2
    assert len(demo.socrata.rows(DEMO_DATASET)) == 25


def test_a_container_without_socrata_settings(demo):
    with pytest.raises(ConfigError, match="view_6 has no `socrata:` settings in demo.yaml"):
        get_publisher("socrata")(app_name="demo", container="view_6", env="dev")
    with pytest.raises(ConfigError, match="no publisher for destination 'ftp'"):
        get_publisher("ftp")


def test_no_metadata_in_s3_says_to_upload_it(demo_env):
    with pytest.raises(ConfigError, match="run upload_metadata first"):
        get_publisher("socrata")(app_name="demo", container="object_3", env="dev")


def test_an_empty_s3_never_empties_the_dataset(demo):
    publisher = get_publisher("socrata")
    assert publisher(app_name="demo", container="object_3", env="dev").ok
    for key in demo.s3_keys("demo-dev/object_3/"):
        demo.s3().delete_object(Bucket=demo.bucket, Key=key)
    result = publisher(app_name="demo", container="object_3", env="dev")
    assert not result.ok and "refusing to delete all 25 of the 25 rows" in result.errors[0]
    assert "S3 holds no records of object_3" in result.errors[0]
    assert len(demo.socrata.rows(DEMO_DATASET)) == 25
