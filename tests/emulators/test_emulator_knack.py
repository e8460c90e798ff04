"""Tests of the Knack REST API emulator (emulators/knack.py), over real HTTP."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import knackpy
import pytest
import requests

from emulators.knack import Faults, KnackEmulator, generate_app, load_fixture_app

REPO = Path(__file__).resolve().parents[2]
UTC = dt.UTC
FIXTURE_APP_ID = "5d79512148c4af00106d1507"


@pytest.fixture(scope="module")
def fixture_app() -> tuple[dict, dict[str, list[dict]]]:
    return load_fixture_app()


@pytest.fixture(scope="module")
def big_app() -> tuple[dict, dict[str, list[dict]]]:
    return generate_app(2500, seed=7)


@pytest.fixture
def knack(fixture_app, big_app) -> Iterator[KnackEmulator]:
    """An emulator without rate limit serving the fixture app and a 2,500-record app."""
    with KnackEmulator(rate_limit=None) as emulator:
        emulator.add_app(*fixture_app)
        emulator.add_app(*big_app)
        yield emulator


def app_id_of(app: tuple[dict, dict]) -> str:
    return app[0]["application"]["id"]


def get_object(
    knack: KnackEmulator, app_id: str, object_key: str, *, key: str | None = None, **params
) -> requests.Response:
    headers = {
        "X-Knack-Application-Id": app_id,
        "X-Knack-REST-API-KEY": knack.api_key if key is None else key,
    }
    return requests.get(
        f"{knack.url}/objects/{object_key}/records", headers=headers, params=params, timeout=10
    )


def filtered_ids(knack: KnackEmulator, app_id: str, object_key: str, filters) -> list[str]:
    res = get_object(knack, app_id, object_key, filters=json.dumps(filters), rows_per_page=1000)
    assert res.status_code == 200, res.text
    return [r["id"] for r in res.json()["records"]]


# --------------------------------------------------------------------------- routes, auth


def test_metadata_answer_equals_fixture(knack, fixture_app):
    res = requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=10)
    assert res.status_code == 200
    assert res.headers["Content-Type"] == "application/json"
    assert res.json() == fixture_app[0]


def test_unknown_app_and_routes_are_404(knack):
    res = requests.get(f"{knack.url}/applications/{'0' * 24}", timeout=10)
    assert res.status_code == 404
    assert res.json()["errors"][0]["message"]
    assert requests.get(f"{knack.url}/nothing", timeout=10).status_code == 404
    res = get_object(knack, "0" * 24, "object_3")
    assert res.status_code == 404
    res = requests.get(f"{knack.url}/objects/object_3/records", timeout=10)  # no app header
    assert res.status_code == 400
    assert "X-Knack-Application-Id" in res.json()["errors"][0]["message"]


def test_objects_need_the_api_key(knack):
    for key in ("", "knack", "wrong"):
        res = get_object(knack, FIXTURE_APP_ID, "object_3", key=key)
        assert res.status_code == 401
        assert res.json() == {"errors": [{"message": "Invalid API key"}]}
    res = requests.get(
        f"{knack.url}/objects/object_3/records",
        headers={"X-Knack-Application-Id": FIXTURE_APP_ID},
        timeout=10,
    )
    assert res.status_code == 401
    res = get_object(knack, FIXTURE_APP_ID, "object_3")
    assert res.status_code == 200
    body = res.json()
    assert body["total_records"] == 25
    assert len(body["records"]) == 25
    assert get_object(knack, FIXTURE_APP_ID, "object_99").status_code == 404


def test_views_are_public(knack, fixture_app):
    url = f"{knack.url}/pages/scene_1/views/view_6/records"
    expected = [r["id"] for r in fixture_app[1]["object_3"]]
    for headers in (
        {"X-Knack-Application-Id": FIXTURE_APP_ID, "X-Knack-REST-API-KEY": "knack"},
        {"X-Knack-Application-Id": FIXTURE_APP_ID},
        {"X-Knack-Application-Id": FIXTURE_APP_ID, "X-Knack-REST-API-KEY": knack.api_key},
    ):
        res = requests.get(url, headers=headers, timeout=10)
        assert res.status_code == 200, res.text
        assert [r["id"] for r in res.json()["records"]] == expected
    headers = {"X-Knack-Application-Id": FIXTURE_APP_ID, "X-Knack-REST-API-KEY": "knack"}
    for path in ("scene_6/views/view_6", "scene_1/views/view_99", "scene_1/views/view_2x"):
        res = requests.get(f"{knack.url}/pages/{path}/records", headers=headers, timeout=10)
        assert res.status_code == 404
        assert res.json()["errors"][0]["message"]


def test_every_response_is_json(knack):
    for res in (
        requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=10),
        requests.get(f"{knack.url}/applications/x", timeout=10),
        get_object(knack, FIXTURE_APP_ID, "object_3", key="bad"),
        get_object(knack, FIXTURE_APP_ID, "object_3", filters="{not json"),
    ):
        assert res.headers["Content-Type"] == "application/json"
        res.json()


# --------------------------------------------------------------------------- paging


def test_paging(knack, big_app):
    app_id = app_id_of(big_app)
    all_ids = [r["id"] for r in big_app[1]["object_1"]]

    body = get_object(knack, app_id, "object_1").json()  # defaults: page 1, 25 rows
    assert (body["current_page"], body["total_pages"], body["total_records"]) == (1, 100, 2500)
    assert [r["id"] for r in body["records"]] == all_ids[:25]

    seen = []
    for page in (1, 2, 3):
        body = get_object(knack, app_id, "object_1", page=page, rows_per_page=1000).json()
        assert body["total_pages"] == 3
        assert body["current_page"] == page
        assert body["total_records"] == 2500
        seen += [r["id"] for r in body["records"]]
    assert len(body["records"]) == 500  # last page
    assert seen == all_ids  # stable insertion order, nothing lost or repeated

    body = get_object(knack, app_id, "object_1", page=4, rows_per_page=1000).json()
    assert body["records"] == []
    assert body["total_records"] == 2500

    body = get_object(knack, app_id, "object_1", rows_per_page=5000).json()  # capped
    assert len(body["records"]) == 1000
    assert body["total_pages"] == 3

    body = get_object(knack, app_id, "object_1", page=7, rows_per_page=7).json()
    assert [r["id"] for r in body["records"]] == all_ids[42:49]

    knack.max_rows_per_page = 100  # a test's lower cap: the same paging with smaller pages
    try:
        body = get_object(knack, app_id, "object_1", page=3, rows_per_page=1000).json()
        assert (body["total_pages"], body["current_page"]) == (25, 3)
        assert [r["id"] for r in body["records"]] == all_ids[200:300]
    finally:
        knack.max_rows_per_page = 1000

    assert get_object(knack, app_id, "object_1", page="x").status_code == 400
    assert get_object(knack, app_id, "object_1", rows_per_page=0).status_code == 400


def test_view_records_page_like_objects(knack, big_app):
    app_id = app_id_of(big_app)
    headers = {"X-Knack-Application-Id": app_id, "X-Knack-REST-API-KEY": "knack"}
    res = requests.get(
        f"{knack.url}/pages/scene_1/views/view_1/records",
        headers=headers,
        params={"page": 3, "rows_per_page": 1000},
        timeout=10,
    )
    body = res.json()
    assert body["total_records"] == 2500
    assert len(body["records"]) == 500
    assert body["records"][-1] == big_app[1]["object_1"][-1]


# --------------------------------------------------------------------------- filters


def test_date_filter_uses_the_calendar_date_in_the_app_timezone(knack, fixture_app):
    record_id = fixture_app[1]["object_3"][4]["id"]
    # 03:00 UTC on March 1st is 9 pm on February 28th in Central time.
    knack.touch(
        FIXTURE_APP_ID,
        "object_3",
        record_id,
        field="field_37",
        when=dt.datetime(2026, 3, 1, 3, 0, tzinfo=UTC),
    )
    touched = {r["id"]: r for r in knack.records(FIXTURE_APP_ID, "object_3")}[record_id]
    assert touched["field_37"] == "02/28/2026 9:00pm"
    assert touched["field_37_raw"]["date"] == "02/28/2026"

    def rule(operator: str, value: str) -> dict:
        return {"field": "field_37", "operator": operator, "value": value}

    def ids(*rules: dict, match: str = "and") -> list[str]:
        return filtered_ids(
            knack, FIXTURE_APP_ID, "object_3", {"match": match, "rules": list(rules)}
        )

    assert ids(rule("is", "02/28/2026")) == [record_id]
    assert ids(rule("is", "2026-02-28")) == [record_id]
    assert ids(rule("is", "03/01/2026")) == []
    assert ids(rule("is after", "02/28/2026")) == []
    assert ids(rule("is after", "02/27/2026")) == [record_id]
    assert ids(rule("is before", "03/01/2026")) != []  # the fixture's 2019 dates too
    assert record_id in ids(rule("is before", "03/01/2026"))
    assert record_id not in ids(rule("is before", "02/28/2026"))
    # The incremental filter: `is DATE` or `is after DATE`.
    assert ids(rule("is", "02/28/2026"), rule("is after", "02/28/2026"), match="or") == [record_id]
    assert ids(rule("is", "02/27/2026"), rule("is after", "02/27/2026"), match="or") == [record_id]
    assert ids(rule("is", "03/01/2026"), rule("is after", "03/01/2026"), match="or") == []
    # With "and" both must hold: nothing is both on and after a date.
    assert ids(rule("is", "02/28/2026"), rule("is after", "02/28/2026")) == []


def test_empty_dates_never_match(knack, fixture_app):
    records = fixture_app[1]["object_3"]
    empty = {r["id"] for r in records if not r.get("field_37_raw")}
    dated = {r["id"] for r in records if r.get("field_37_raw")}
    assert empty and dated
    result = filtered_ids(
        knack,
        FIXTURE_APP_ID,
        "object_3",
        {
            "match": "and",
            "rules": [{"field": "field_37", "operator": "is not", "value": "01/01/2000"}],
        },
    )
    assert set(result) == dated
    result = filtered_ids(
        knack,
        FIXTURE_APP_ID,
        "object_3",
        [{"field": "field_37", "operator": "is blank"}],  # a bare list of rules is "and"
    )
    assert set(result) == empty


def test_date_filters_on_generated_app(knack, big_app):
    app_id = app_id_of(big_app)
    rows = big_app[1]["object_1"]
    cut = dt.date(2026, 4, 15)

    def day(r: dict) -> dt.date:
        return dt.datetime.strptime(r["field_5_raw"]["date"], "%m/%d/%Y").date()

    expected = [r["id"] for r in rows if day(r) >= cut]
    filters = {
        "match": "or",
        "rules": [
            {"field": "field_5", "operator": "is", "value": "04/15/2026"},
            {"field": "field_5", "operator": "is after", "value": "04/15/2026"},
        ],
    }
    res = get_object(knack, app_id, "object_1", filters=json.dumps(filters), rows_per_page=1000)
    body = res.json()
    assert body["total_records"] == len(expected)
    assert body["total_pages"] == -(-len(expected) // 1000)
    got = []
    for page in range(1, body["total_pages"] + 1):
        res = get_object(
            knack, app_id, "object_1", filters=json.dumps(filters), rows_per_page=1000, page=page
        )
        got += [r["id"] for r in res.json()["records"]]
    assert got == expected


def test_text_filters(knack, big_app):
    app_id = app_id_of(big_app)
    rows = big_app[1]["object_1"]

    def ids(field: str, operator: str, value=None) -> list[str]:
        return filtered_ids(
            knack, app_id, "object_1", [{"field": field, "operator": operator, "value": value}]
        )

    design = [r["id"] for r in rows if r["field_4"] == "DESIGN"]
    assert design and ids("field_4", "is", "DESIGN") == design
    assert ids("field_4", "is", "design") == design  # case-insensitive
    not_design = [r["id"] for r in rows if r["field_4"] != "DESIGN"]
    assert ids("field_4", "is not", "DESIGN") == not_design[:1000]
    lamar = [r["id"] for r in rows if "LAMAR" in r["field_2"]]
    assert ids("field_2", "contains", "lamar") == lamar[:1000]
    no_location = [r["id"] for r in rows if r["field_3"] == ""]
    assert ids("field_3", "is blank") == no_location
    flashing = [r["id"] for r in rows if r["field_6_raw"] is True]
    assert ids("field_6", "is", True) == flashing
    assert ids("field_6", "is", "Yes") == flashing
    three = [r["id"] for r in rows if r["field_7"] == 3]
    assert ids("field_7", "is", "3") == three[:1000]
    assert ids("field_7", "higher than", 2) == three[:1000]


@pytest.mark.parametrize(
    "filters",
    [
        "{not json",
        json.dumps({"match": "xor", "rules": []}),
        json.dumps({"match": "and", "rules": [{"field": "field_5", "operator": "sounds like"}]}),
        json.dumps({"rules": [{"field": "field_2", "operator": "is near", "value": "x"}]}),
        json.dumps({"rules": [{"field": "field_5", "operator": "is", "value": "tomorrow"}]}),
        json.dumps({"rules": [{"field": "field_99", "operator": "is", "value": "x"}]}),
        json.dumps("just a string"),
    ],
)
def test_bad_filters_are_400(knack, big_app, filters):
    res = get_object(knack, app_id_of(big_app), "object_1", filters=filters)
    assert res.status_code == 400
    assert res.json()["errors"][0]["message"]


# --------------------------------------------------------------------------- rate limit, faults


def test_rate_limit(fixture_app):
    with KnackEmulator() as knack:  # the default: 10 requests per second per app
        knack.add_app(*fixture_app)
        statuses = [get_object(knack, FIXTURE_APP_ID, "object_3").status_code for _ in range(10)]
        assert statuses == [200] * 10
        res = get_object(knack, FIXTURE_APP_ID, "object_3")
        assert res.status_code == 429
        assert res.json() == {"errors": [{"message": "Rate limit exceeded"}]}
        assert int(res.headers["Retry-After"]) >= 1
        assert res.headers["X-RateLimit-Limit"] == "10"
        assert res.headers["X-RateLimit-Remaining"] == "0"
        assert int(res.headers["X-RateLimit-Reset"]) >= int(time.time())
        # the metadata route counts too
        assert (
            requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=10).status_code
            == 429
        )
        time.sleep(1.05)
        res = get_object(knack, FIXTURE_APP_ID, "object_3")
        assert res.status_code == 200
        assert res.headers["X-RateLimit-Remaining"] == "9"


def test_rate_limit_is_per_app(fixture_app, big_app):
    with KnackEmulator(rate_limit=3) as knack:
        knack.add_app(*fixture_app)
        knack.add_app(*big_app)
        assert [get_object(knack, FIXTURE_APP_ID, "object_3").status_code for _ in range(4)] == [
            200,
            200,
            200,
            429,
        ]
        assert get_object(knack, app_id_of(big_app), "object_1").status_code == 200


def test_fault_fail_every(knack):
    knack.faults.fail_every = 3
    statuses = [get_object(knack, FIXTURE_APP_ID, "object_3").status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]
    knack.faults.status = 500
    statuses = [get_object(knack, FIXTURE_APP_ID, "object_3").status_code for _ in range(3)]
    assert statuses == [200, 200, 500]
    res = get_object(knack, FIXTURE_APP_ID, "object_3", page=1)
    knack.faults.fail_every = 0
    assert res.status_code == 200
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 200


def test_fault_fail_next(knack):
    knack.faults.fail_next = 2
    res = get_object(knack, FIXTURE_APP_ID, "object_3")
    assert res.status_code == 503
    assert res.headers["Content-Type"] == "application/json"
    assert res.json()["errors"][0]["message"]
    assert requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=10).status_code == 503
    assert knack.faults.fail_next == 0
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 200
    knack.faults.update({"fail_next": 1, "status": 400, "message": "custom \x1b[31mtext"})
    res = get_object(knack, FIXTURE_APP_ID, "object_3")
    assert (res.status_code, res.json()["errors"][0]["message"]) == (400, "custom \x1b[31mtext")


def test_fault_overstate_total_records(knack, big_app):
    knack.faults.overstate_total_records = 1
    body = get_object(knack, app_id_of(big_app), "object_1", rows_per_page=1000).json()
    assert body["total_records"] == 2501
    assert body["total_pages"] == 3
    knack.faults.overstate_total_records = 500
    body = get_object(knack, app_id_of(big_app), "object_1", rows_per_page=1000, page=3).json()
    assert (body["total_records"], body["total_pages"], len(body["records"])) == (3000, 3, 500)
    body = get_object(knack, app_id_of(big_app), "object_1", rows_per_page=1000, page=4).json()
    assert body["records"] == []  # a client must stop on an empty page


def test_single_record_routes_and_404_for_a_gone_id(knack, big_app):
    app_id = app_id_of(big_app)
    record = knack.records(app_id, "object_1")[0]
    headers = {"X-Knack-Application-Id": app_id, "X-Knack-REST-API-KEY": knack.api_key}
    one = requests.get(
        f"{knack.url}/objects/object_1/records/{record['id']}", headers=headers, timeout=10
    )
    assert one.status_code == 200 and one.json() == record
    view = requests.get(
        f"{knack.url}/pages/scene_1/views/view_1/records/{record['id']}",
        headers={**headers, "X-Knack-REST-API-KEY": "knack"},
        timeout=10,
    )
    assert view.status_code == 200 and view.json() == record
    knack.delete_record(app_id, "object_1", record["id"])
    gone = requests.get(
        f"{knack.url}/objects/object_1/records/{record['id']}", headers=headers, timeout=10
    )
    assert gone.status_code == 404 and "not found" in gone.json()["errors"][0]["message"]


def test_fault_delete_after_page_shifts_the_later_pages(knack, big_app):
    app_id = app_id_of(big_app)
    before = [r["id"] for r in knack.records(app_id, "object_1")]
    knack.faults.delete_after_page = 1
    page1 = get_object(knack, app_id, "object_1", rows_per_page=1000, page=1).json()["records"]
    assert [r["id"] for r in page1] == before[:1000]  # served whole, then its first deleted
    assert knack.faults.delete_after_page == 0  # once
    page2 = get_object(knack, app_id, "object_1", rows_per_page=1000, page=2).json()["records"]
    assert [r["id"] for r in page2] == before[1001:2001]  # before[1000] moved to page 1
    assert before[0] not in {r["id"] for r in knack.records(app_id, "object_1")}
    knack.faults.update({"delete_after_page": 2, "delete_record": before[5]})
    get_object(knack, app_id, "object_1", rows_per_page=1000, page=2)
    assert before[5] not in {r["id"] for r in knack.records(app_id, "object_1")}


def test_fault_empty_page_before_the_last(knack, big_app):
    app_id = app_id_of(big_app)
    knack.faults.update({"empty_page": 2, "empty_page_times": 2})
    for _ in range(2):
        body = get_object(knack, app_id, "object_1", rows_per_page=1000, page=2).json()
        assert (body["records"], body["total_pages"], body["current_page"]) == ([], 3, 2)
    assert (
        len(get_object(knack, app_id, "object_1", rows_per_page=1000, page=3).json()["records"])
        == 500
    )
    assert (
        len(get_object(knack, app_id, "object_1", rows_per_page=1000, page=2).json()["records"])
        == 1000
    )  # the third time it answers in full


def test_fault_repeat_page_answers_the_same_page_for_every_page_number_after_it(knack, big_app):
    app_id = app_id_of(big_app)
    order = [r["id"] for r in knack.records(app_id, "object_1")]
    knack.faults.repeat_page = 2

    def page(n):
        body = get_object(knack, app_id, "object_1", rows_per_page=1000, page=n).json()
        return [r["id"] for r in body["records"]], body["current_page"], body["total_pages"]

    assert page(1) == (order[:1000], 1, 3)
    for n in (2, 3, 4, 99):  # never an empty page: a client that waits for one never ends
        assert page(n) == (order[1000:2000], n, 3)
    knack.faults.repeat_page = 0
    assert page(4)[0] == []


@pytest.mark.parametrize("raw", ["<html>Service temporarily down</html>", '{"apps": []}'])
def test_fault_metadata_body(knack, raw):
    knack.faults.metadata_body = raw
    res = requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=10)
    assert res.status_code == 200
    assert res.text == raw
    assert res.headers["Content-Type"].startswith("text/html")


def test_fault_delay(knack):
    knack.faults.delay = 0.3
    started = time.monotonic()
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{knack.url}/applications/{FIXTURE_APP_ID}", timeout=0.1)


def test_control_endpoints(knack):
    base = knack.url.removesuffix("/v1")
    res = requests.post(
        f"{base}/_emulator/faults", json={"fail_next": 1, "status": 502}, timeout=10
    )
    assert res.status_code == 200
    assert res.json()["fail_next"] == 1
    assert knack.faults.status == 502
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 502
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 200
    assert (
        requests.post(f"{base}/_emulator/faults", json={"nope": 1}, timeout=10).status_code == 400
    )
    assert requests.post(f"{base}/_emulator/faults", data="{x", timeout=10).status_code == 400
    log = requests.get(f"{base}/_emulator/requests", timeout=10).json()
    assert [entry["status"] for entry in log] == [502, 200]  # control routes are not logged
    assert log[0]["path"] == "/v1/objects/object_3/records"
    assert log[0]["app_id"] == FIXTURE_APP_ID
    assert requests.delete(f"{base}/_emulator/requests", timeout=10).json() == []
    assert knack.requests == []
    # control routes count neither for the rate limit nor for fail_every
    knack.faults.fail_every = 2
    for _ in range(3):
        requests.get(f"{base}/_emulator/faults", timeout=10)
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 200
    assert get_object(knack, FIXTURE_APP_ID, "object_3").status_code == 502  # status stays set


def test_faults_dataclass():
    faults = Faults()
    assert faults.to_dict() == {
        "fail_every": 0,
        "fail_next": 0,
        "status": 503,
        "message": None,
        "retry_after": 1.0,
        "fail_path": None,
        "delay": 0.0,
        "overstate_total_records": 0,
        "metadata_body": None,
        "delete_after_page": 0,
        "delete_record": None,
        "empty_page": 0,
        "empty_page_times": 1,
        "repeat_page": 0,
        "apply_then_fail": 0,
    }
    with pytest.raises(ValueError):
        faults.update({"fail_next": -1})
    with pytest.raises(ValueError):
        faults.update({"delay": "slow"})
    faults.update({"delay": 1, "metadata_body": "x"})
    assert faults.delay == 1.0 and faults.metadata_body == "x"


def test_request_log(knack, big_app):
    get_object(knack, app_id_of(big_app), "object_1", page=2, rows_per_page=10)
    get_object(knack, FIXTURE_APP_ID, "object_3", key="bad")
    first, second = knack.requests
    assert (first.method, first.path, first.status) == ("GET", "/v1/objects/object_1/records", 200)
    assert first.query == {"page": "2", "rows_per_page": "10"}
    assert first.app_id == app_id_of(big_app)
    assert first.api_key == knack.api_key
    assert abs(first.time - time.time()) < 5
    assert (second.status, second.api_key) == (401, "bad")
    knack.reset_log()
    assert knack.requests == []


# --------------------------------------------------------------------------- data changes


def test_put_delete_touch_are_visible_over_http(knack, big_app):
    app_id = app_id_of(big_app)
    rows = knack.records(app_id, "object_1")
    first = rows[0]

    new = copy.deepcopy(first)
    new["id"] = knack.new_record_id()
    new["field_2"] = new["field_2_raw"] = "NEW SIGNAL"
    knack.put_record(app_id, "object_1", new)
    body = get_object(knack, app_id, "object_1", page=3, rows_per_page=1000).json()
    assert body["total_records"] == 2501
    assert body["records"][-1]["field_2"] == "NEW SIGNAL"

    changed = dict(first, field_2="CHANGED", field_2_raw="CHANGED")
    knack.put_record(app_id, "object_1", changed)  # replaces in place
    body = get_object(knack, app_id, "object_1", rows_per_page=1).json()
    assert body["records"][0]["field_2"] == "CHANGED"
    assert body["total_records"] == 2501

    knack.delete_record(app_id, "object_1", new["id"])
    assert get_object(knack, app_id, "object_1").json()["total_records"] == 2500
    with pytest.raises(KeyError):
        knack.delete_record(app_id, "object_1", new["id"])

    knack.touch(
        app_id,
        "object_1",
        first["id"],
        field="field_5",
        when=dt.datetime(2026, 7, 4, 17, 5, tzinfo=UTC),
    )
    ids = filtered_ids(
        knack, app_id, "object_1", [{"field": "field_5", "operator": "is", "value": "07/04/2026"}]
    )
    assert ids == [first["id"]]
    record = knack.records(app_id, "object_1")[0]
    assert record["field_5"] == "07/04/2026 12:05pm"  # CDT is UTC-5
    assert record["field_5_raw"]["hours"] == "12"
    assert record["field_5_raw"]["am_pm"] == "PM"
    assert record["field_5_raw"]["time"] == 725

    # records() hands out copies
    knack.records(app_id, "object_1")[0]["field_2"] = "not stored"
    assert knack.records(app_id, "object_1")[0]["field_2"] == "CHANGED"


def test_touch_formats_like_the_fixture(knack, fixture_app):
    original = fixture_app[1]["object_3"][0]  # field_37: "09/13/2019 2:43am" Central (CDT)
    knack.touch(
        FIXTURE_APP_ID,
        "object_3",
        original["id"],
        field="field_37",
        when=dt.datetime(2019, 9, 13, 7, 43, 59, tzinfo=UTC),
    )
    record = knack.records(FIXTURE_APP_ID, "object_3")[0]
    assert record["field_37"] == original["field_37"]
    assert record["field_37_raw"] == original["field_37_raw"]
    # midnight: Knack says 12 AM and time 720, as the fixture's field_12 does
    knack.touch(
        FIXTURE_APP_ID,
        "object_3",
        original["id"],
        field="field_12",
        when=dt.datetime(2019, 9, 11, 5, 0, tzinfo=UTC),
    )
    record = knack.records(FIXTURE_APP_ID, "object_3")[0]
    assert record["field_12"] == original["field_12"]
    assert record["field_12_raw"] == original["field_12_raw"]
    with pytest.raises(ValueError):
        knack.touch(
            FIXTURE_APP_ID, "object_3", original["id"], field="field_7", when=dt.datetime.now(UTC)
        )
    with pytest.raises(ValueError):
        knack.touch(
            FIXTURE_APP_ID,
            "object_3",
            original["id"],
            field="field_37",
            when=dt.datetime(2026, 1, 1),
        )


def test_new_record_ids_are_unique_hex(knack):
    ids = {knack.new_record_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)


def test_several_apps_and_stop():
    with KnackEmulator(rate_limit=None) as knack:
        a = knack.add_app(*generate_app(3, seed=1))
        b = knack.add_app(generate_app(4, seed=2)[0]["application"], generate_app(4, seed=2)[1])
        assert a != b
        assert get_object(knack, a, "object_1").json()["total_records"] == 3
        assert get_object(knack, b, "object_1").json()["total_records"] == 4
        url = knack.url
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/applications/{a}", timeout=2)
    with pytest.raises(RuntimeError):
        _ = knack.url


# --------------------------------------------------------------------------- generated apps


def test_generate_app_is_deterministic(big_app):
    again = generate_app(2500, seed=7)
    assert json.dumps(again, sort_keys=True) == json.dumps(big_app, sort_keys=True)
    other = generate_app(2500, seed=8)
    assert app_id_of(other) != app_id_of(big_app)
    assert other[1]["object_1"] != big_app[1]["object_1"]


def test_generated_app_shape(big_app):
    metadata, records = big_app
    app = metadata["application"]
    assert re.fullmatch(r"[0-9a-f]{24}", app["id"])
    assert app["settings"]["timezone"] == "Central Time (US & Canada)"
    assert app["counts"]["object_1"] == 2500
    fields = {f["key"]: (f["type"], f["name"]) for f in app["objects"][0]["fields"]}
    assert fields == {
        "field_1": ("auto_increment", "Signal ID"),
        "field_2": ("short_text", "Location Name"),
        "field_3": ("address", "Location"),
        "field_4": ("multiple_choice", "Signal Status"),
        "field_5": ("date_time", "Modified Date"),
        "field_6": ("boolean", "Is Flashing"),
        "field_7": ("number", "Cabinet Count"),
        "field_8": ("rich_text", "Notes"),
    }
    view = app["scenes"][0]["views"][0]
    assert (app["scenes"][0]["key"], app["scenes"][0]["slug"]) == ("scene_1", "signals")
    assert (view["key"], view["type"], view["source"]["object"]) == ("view_1", "table", "object_1")

    rows = records["object_1"]
    assert len(rows) == 2500
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 2500
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert [r["field_1"] for r in rows] == list(range(1, 2501))
    empty = [r for r in rows if r["field_3"] == ""]
    assert 10 <= len(empty) <= 100  # about 2 %
    assert all(r["field_3_raw"] == "" for r in empty)
    for r in rows:
        if r["field_3"]:
            assert 30.0 < r["field_3_raw"]["latitude"] < 30.5
            assert -98.0 < r["field_3_raw"]["longitude"] < -97.5
            assert r["field_3"].endswith(r["field_3_raw"]["zip"])
        day = dt.datetime.strptime(r["field_5_raw"]["date"], "%m/%d/%Y").date()
        assert dt.date(2026, 1, 1) <= day <= dt.date(2026, 6, 30)
        assert r["field_4"] in ("TURNED_ON", "DESIGN", "CONSTRUCTION")
    assert generate_app(0)[1] == {"object_1": []}


@pytest.mark.parametrize("container", ["object_1", "view_1"])
def test_knackpy_reads_generated_app(big_app, container):
    metadata, records = copy.deepcopy(big_app)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No API key has been supplied"
        app = knackpy.App(app_id=metadata["application"]["id"], metadata=metadata)
    app.data[container] = records["object_1"]
    rows = list(app.get(container))
    assert len(rows) == 2500
    formatted = [r.format() for r in rows]
    first = formatted[0]
    assert set(first) == {
        "id",
        "Signal ID",
        "Location Name",
        "Location",
        "Signal Status",
        "Modified Date",
        "Is Flashing",
        "Cabinet Count",
        "Notes",
    }
    # knackpy turns the local "unix_timestamp" into an aware time in the app's timezone
    raw = big_app[1]["object_1"][0]["field_5_raw"]
    stamp = dt.datetime.fromisoformat(first["Modified Date"])
    assert stamp.strftime("%m/%d/%Y") == raw["date"]
    assert stamp.utcoffset() in (dt.timedelta(hours=-6), dt.timedelta(hours=-5))
    assert any(f["Location"] is None for f in formatted)


@pytest.mark.parametrize("container", ["object_3", "view_6"])
def test_knackpy_reads_fixture_app(fixture_app, container):
    metadata, records = copy.deepcopy(fixture_app)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = knackpy.App(app_id=FIXTURE_APP_ID, metadata=metadata)
    app.data[container] = records["object_3"]
    assert len([r.format() for r in app.get(container)]) == 25


def test_machine_timezone_does_not_matter(big_app):
    """generate_app() and touch() give the same answers whatever TZ the process has."""
    script = (
        "import datetime as dt, json\n"
        "from emulators.knack import KnackEmulator, generate_app\n"
        "meta, recs = generate_app(2500, seed=7)\n"
        "e = KnackEmulator(); a = e.add_app(meta, recs)\n"
        "rid = recs['object_1'][0]['id']\n"
        "e.touch(a, 'object_1', rid, field='field_5',\n"
        "        when=dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.timezone.utc))\n"
        "print(json.dumps([recs, e.records(a, 'object_1')[0]], sort_keys=True))\n"
    )
    outputs = []
    for tz in ("Pacific/Kiritimati", "America/Los_Angeles"):
        env = dict(os.environ, TZ=tz)
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    recs, touched = outputs[0]
    assert recs == big_app[1]
    assert touched["field_5_raw"]["date"] == "02/28/2026"
    assert touched["field_5"] == "02/28/2026 9:00pm"


def test_command_line_serves_until_stopped():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.knack",
            "--generate",
            "5",
            "--seed",
            "3",
            "--fixture",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        url = lines[0].removeprefix("KNACK_API_URL=")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        app_ids = {line.split()[1] for line in lines[2:]}
        assert app_ids == {FIXTURE_APP_ID, app_id_of(generate_app(5, seed=3))}
        res = requests.get(f"{url}/applications/{FIXTURE_APP_ID}", timeout=10)
        assert res.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_knackpy_client_over_http(knack, big_app, monkeypatch):
    """knackpy itself (its URL pointed at the emulator) fetches metadata, pages and filters."""
    monkeypatch.setattr(knackpy.api, "_url", lambda *, route, slug=None: f"{knack.url}{route}")
    app_id = app_id_of(big_app)
    app = knackpy.App(app_id=app_id, api_key=knack.api_key)
    rows = app.get("object_1")
    assert len(rows) == 2500
    filters = {
        "match": "or",
        "rules": [
            {"field": "field_5", "operator": "is", "value": "06/01/2026"},
            {"field": "field_5", "operator": "is after", "value": "06/01/2026"},
        ],
    }
    recent = app.get("view_1", filters=filters, refresh=True)
    expected = [r["id"] for r in big_app[1]["object_1"] if r["field_5_raw"]["date"] >= "06/01/2026"]
    assert [r["id"] for r in recent] == expected
    assert all(r.format()["Modified Date"] >= "2026-06-01" for r in recent)
    paths = [entry.path for entry in knack.requests]
    assert paths[0] == f"/v1/applications/{app_id}"
    assert paths.count("/v1/objects/object_1/records") == 3  # 1000 rows per page
