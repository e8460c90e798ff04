"""The Knack emulator's write API (emulators/knack_writes.py) over real HTTP: create, update
and delete on object routes, values checked and stored by field type with Knack's 400 body,
ids shaped like Knack's, each app's own key, the rate limit and the faults."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests

from emulators.knack import KnackEmulator
from emulators.knack_pair import (
    ASSETS,
    TARGET_ASSETS,
    TARGET_OWNERS,
    generate_pair,
    source_metadata,
)

KEY = "target-key"


@pytest.fixture
def knack() -> Iterator[tuple[KnackEmulator, str]]:
    (source, records), target = generate_pair(3, seed=2)
    with KnackEmulator(rate_limit=None) as emulator:
        emulator.add_app(source, records)
        yield emulator, emulator.add_app(target, api_key=KEY)


def call(knack, app_id, method, route, body=None, key=KEY):
    emulator = knack
    headers = {"X-Knack-Application-Id": app_id, "X-Knack-REST-API-KEY": key}
    return requests.request(
        method, f"{emulator.url}/objects/{route}", json=body, headers=headers, timeout=10
    )


def owner(knack, app_id, name="Owner A") -> str:
    res = call(knack, app_id, "POST", f"{TARGET_OWNERS}/records", {"field_101": name})
    assert res.status_code == 200, res.text
    return res.json()["id"]


def test_create_answers_the_record_as_a_read_does_with_a_knack_like_id(knack):
    emulator, app_id = knack
    before = int(time.time())
    oid = owner(emulator, app_id)
    body = {
        "field_201": "Lamp 1",
        "field_203": "12",
        "field_204": True,
        "field_205": "03/01/2026 11:30pm",
        "field_206": "ACTIVE",
        "field_207": {
            "street": "1 Main St",
            "city": "Austin",
            "latitude": 30.1,
            "longitude": -97.7,
        },
        "field_208": {"first": "Ana", "last": "Li"},
        "field_209": "ana@example.com",
        "field_210": {"full": "512-555-1234"},
        "field_211": {"url": "https://example.com"},
        "field_212": [oid],
        "field_213": 4,
        "field_214": 12.5,
        "field_216": ["north", "flashing"],
        "field_217": "03/02/2026",
    }
    res = call(emulator, app_id, "POST", f"{TARGET_ASSETS}/records", body)
    assert res.status_code == 200, res.text
    record = res.json()
    assert re.fullmatch(r"[0-9a-f]{24}", record["id"])
    assert int(record["id"][:8], 16) >= before  # an ObjectId: its first 4 bytes are the time
    assert record["field_201_raw"] == "Lamp 1"
    assert record["field_203_raw"] == 12 and record["field_204"] == "Yes"
    assert record["field_205_raw"]["date"] == "03/01/2026"
    assert (record["field_205_raw"]["hours"], record["field_205_raw"]["am_pm"]) == ("11", "PM")
    assert record["field_205"] == "03/01/2026 11:30pm"
    assert record["field_207_raw"]["latitude"] == 30.1
    assert record["field_208"] == "Ana Li"
    assert record["field_209_raw"] == {"email": "ana@example.com"}
    assert record["field_210_raw"]["full"] == "5125551234"
    assert record["field_212_raw"] == [{"id": oid, "identifier": "Owner A"}]
    assert record["field_214_raw"] == "12.50" and record["field_214"] == "$12.50"
    assert record["field_216_raw"] == ["north", "flashing"]
    assert record["field_217_raw"]["date"] == "03/02/2026"
    assert record["field_202_raw"] == ""  # a field not given is empty
    # a read answers the same record
    got = call(emulator, app_id, "GET", f"{TARGET_ASSETS}/records/{record['id']}")
    assert got.json() == record
    assert emulator.records(app_id, TARGET_ASSETS) == [record]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("field_203", "twelve", "Count must be a number"),
        ("field_204", "maybe", "Active must be true or false"),
        ("field_205", "31/31/2026", "Installed is not a valid date"),
        ("field_206", "SOLD", "'SOLD' is not an option of Status"),
        ("field_206", ["ACTIVE", "RETIRED"], "Status takes one option"),
        ("field_207", {"latitude": 95}, "Location: latitude is out of range"),
        ("field_209", "not-an-email", "Please enter a valid email address"),
        ("field_210", "12", "Please enter a valid phone number"),
        ("field_212", ["0123456789abcdef01234567"], "is not a record of the connected object"),
        ("field_213", 9, "Condition must be between 0 and 5"),
        ("field_999", "x", "Field field_999 does not exist on this object"),
    ],
)
def test_a_value_its_field_cannot_take_is_400_with_knacks_body(knack, field, value, message):
    emulator, app_id = knack
    res = call(emulator, app_id, "POST", f"{TARGET_ASSETS}/records", {field: value})
    assert res.status_code == 400
    (error,) = res.json()["errors"]
    assert error["field"] == field and message in error["message"]
    assert emulator.records(app_id, TARGET_ASSETS) == []  # nothing written


def test_update_changes_only_the_given_fields_and_delete_answers_delete_true(knack):
    emulator, app_id = knack
    res = call(emulator, app_id, "POST", f"{TARGET_ASSETS}/records", {"field_201": "a"})
    rid = res.json()["id"]
    res = call(emulator, app_id, "PUT", f"{TARGET_ASSETS}/records/{rid}", {"field_203": 3})
    assert res.status_code == 200
    assert (res.json()["field_201_raw"], res.json()["field_203_raw"]) == ("a", 3)
    bad = call(emulator, app_id, "PUT", f"{TARGET_ASSETS}/records/{rid}", {"field_203": "x"})
    assert bad.status_code == 400
    assert emulator.records(app_id, TARGET_ASSETS)[0]["field_203_raw"] == 3  # unchanged
    res = call(emulator, app_id, "DELETE", f"{TARGET_ASSETS}/records/{rid}")
    assert (res.status_code, res.json()) == (200, {"delete": True})
    assert emulator.records(app_id, TARGET_ASSETS) == []
    for method in ("PUT", "DELETE"):
        gone = call(emulator, app_id, method, f"{TARGET_ASSETS}/records/{rid}", {})
        assert gone.status_code == 404


def test_writes_need_the_apps_own_key_and_an_object_route(knack):
    emulator, app_id = knack
    res = call(emulator, app_id, "POST", f"{TARGET_ASSETS}/records", {}, key=emulator.api_key)
    assert res.status_code == 401  # the emulator's default key is not this app's
    view = requests.post(
        f"{emulator.url}/pages/scene_1/views/view_1/records",
        json={},
        headers={"X-Knack-Application-Id": app_id, "X-Knack-REST-API-KEY": KEY},
        timeout=10,
    )
    assert view.status_code == 405  # views are read only


def test_writes_count_against_the_rate_limit_and_the_faults():
    (source, records), target = generate_pair(1, seed=3)
    with KnackEmulator(rate_limit=3) as emulator:
        app_id = emulator.add_app(target, api_key=KEY)
        statuses = [
            call(
                emulator, app_id, "POST", f"{TARGET_OWNERS}/records", {"field_101": "x"}
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        assert len(emulator.records(app_id, TARGET_OWNERS)) == 3  # the 429 wrote nothing
    with KnackEmulator(rate_limit=None) as emulator:
        app_id = emulator.add_app(target, api_key=KEY)
        emulator.faults.update({"fail_next": 1})
        res = call(emulator, app_id, "POST", f"{TARGET_OWNERS}/records", {"field_101": "x"})
        assert res.status_code == 503 and emulator.records(app_id, TARGET_OWNERS) == []
        emulator.faults.update({"apply_then_fail": 1})  # applied, its answer lost
        res = call(emulator, app_id, "POST", f"{TARGET_OWNERS}/records", {"field_101": "y"})
        assert res.status_code == 503
        assert [r["field_101_raw"] for r in emulator.records(app_id, TARGET_OWNERS)] == ["y"]
        assert [r.method for r in emulator.requests] == ["POST", "POST"]


def test_generated_pair_source_records_hold_every_type_as_knack_stores_it():
    (source, records), target = generate_pair(40, seed=4)
    assert source == source_metadata(4)
    assets = records[ASSETS]
    assert len(assets) == 40 and len({r["id"] for r in assets}) == 40
    for record in assets:
        hours = int(record["field_15_raw"]["hours"]) % 12
        hours += 12 if record["field_15_raw"]["am_pm"] == "PM" else 0
        assert hours in (22, 23, 0, 1)  # within two hours of midnight
        assert record["field_22_raw"][0]["identifier"].startswith("Owner ")
    assert target["settings"]["timezone"] != source["settings"]["timezone"]
