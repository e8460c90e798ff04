"""Tests of the Socrata SODA 2.x emulator (emulators/socrata.py), through sodapy."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import requests.adapters
from sodapy import Socrata

import emulators.socrata as socrata_module
from emulators.socrata import (
    EXAMPLE_RESOURCE_ID,
    SocrataEmulator,
    SocrataFaults,
    SocrataRequest,
)

REPO = Path(__file__).resolve().parents[2]
RID = "abcd-1234"
TYPED = "type-5555"

COLUMNS = [
    {"fieldName": "id", "dataTypeName": "text", "name": "ID"},
    {"fieldName": "name", "dataTypeName": "text", "name": "Name"},
    {"fieldName": "count", "dataTypeName": "number", "name": "Count"},
    {"fieldName": "modified", "dataTypeName": "calendar_date", "name": "Modified"},
]
ROWS = [
    {"id": "a", "name": "Alpha", "count": 3, "modified": "2019-09-11T00:00:00"},
    {"id": "b", "name": "Bravo", "count": 1.5},
    {"id": "c", "name": "Charlie", "count": "10", "modified": "2019-09-12"},
]
TYPED_COLUMNS = [
    {"fieldName": "id", "dataTypeName": "text"},
    {"fieldName": "t", "dataTypeName": "text"},
    {"fieldName": "n", "dataTypeName": "number"},
    {"fieldName": "m", "dataTypeName": "money"},
    {"fieldName": "p", "dataTypeName": "percent"},
    {"fieldName": "c", "dataTypeName": "checkbox"},
    {"fieldName": "d", "dataTypeName": "calendar_date"},
    {"fieldName": "pt", "dataTypeName": "point"},
    {"fieldName": "mp", "dataTypeName": "multipoint"},
    {"fieldName": "loc", "dataTypeName": "location"},
    {"fieldName": "u", "dataTypeName": "url"},
    {"fieldName": "odd", "dataTypeName": "some_new_type"},
]


@pytest.fixture(scope="module")
def server() -> Iterator[SocrataEmulator]:
    with SocrataEmulator() as emulator:
        yield emulator


@pytest.fixture
def socrata(server: SocrataEmulator) -> SocrataEmulator:
    """The shared server with fresh datasets, no faults, no hook and an empty log."""
    server.faults = SocrataFaults()
    server.max_limit = 50_000
    server.after_request = None
    server.add_dataset(RID, COLUMNS, ROWS, name="Test dataset")
    server.add_dataset(TYPED, TYPED_COLUMNS)
    server.reset_log()
    return server


def client(
    emulator: SocrataEmulator,
    *,
    app_token: str | None = None,
    key_id: str | None = None,
    key_secret: str | None = None,
    timeout: float = 60,
) -> Socrata:
    """A sodapy client configured as production does it for a plain-HTTP SOCRATA_URL."""
    assert emulator.url == f"http://{emulator.domain}"
    return Socrata(
        emulator.domain,
        emulator.app_token if app_token is None else app_token,
        username=emulator.key_id if key_id is None else key_id,
        password=emulator.key_secret if key_secret is None else key_secret,
        timeout=timeout,
        session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()},
    )


def http_error(call: Any, *args: Any) -> requests.HTTPError:
    with pytest.raises(requests.HTTPError) as info:
        call(*args)
    return info.value


# --------------------------------------------------------------------------- metadata


def test_metadata_lists_columns_and_row_identifier(socrata: SocrataEmulator) -> None:
    meta = client(socrata).get_metadata(RID)
    assert meta["id"] == RID and meta["name"] == "Test dataset"
    columns = meta["columns"]
    assert [c["fieldName"] for c in columns] == ["id", "name", "count", "modified"]
    assert [c["dataTypeName"] for c in columns] == ["text", "text", "number", "calendar_date"]
    assert [c["name"] for c in columns] == ["ID", "Name", "Count", "Modified"]
    assert [c["position"] for c in columns] == [1, 2, 3, 4]
    assert all(isinstance(c["id"], int) for c in columns)
    assert meta["rowIdentifierColumnId"] == columns[0]["id"]
    odd = client(socrata).get_metadata(TYPED)["columns"][-1]
    assert odd["fieldName"] == "odd" and odd["dataTypeName"] == "text"  # unknown type: text


def test_unknown_dataset_is_404(socrata: SocrataEmulator) -> None:
    err = http_error(client(socrata).get_metadata, "zzzz-9999")
    assert err.response.status_code == 404
    assert err.response.json() == {
        "code": "not_found",
        "error": True,
        "message": "Cannot find view with id zzzz-9999",
    }
    assert http_error(client(socrata).get, "zzzz-9999").response.status_code == 404
    err = http_error(client(socrata).upsert, "zzzz-9999", [{"id": "a"}])
    assert err.response.status_code == 404


# --------------------------------------------------------------------------- writes


def test_upsert_creates_updates_and_deletes(socrata: SocrataEmulator) -> None:
    answer = client(socrata).upsert(
        RID,
        [
            {"id": "d", "name": "Delta", "count": 4},  # created
            {"id": "a", "name": "Alpha 2"},  # updated: other fields kept
            {"id": "b", "count": None},  # updated: null clears
            {"id": "c", ":deleted": True},  # deleted
            {"id": "nope", ":deleted": True},  # missing: counts nothing
        ],
    )
    assert answer == {
        "By RowIdentifier": 3,
        "Rows Created": 1,
        "Rows Updated": 2,
        "Rows Deleted": 1,
        "By SID": 0,
        "Errors": 0,
    }
    assert socrata.rows(RID) == [
        {"id": "a", "name": "Alpha 2", "count": "3", "modified": "2019-09-11T00:00:00.000"},
        {"id": "b", "name": "Bravo"},
        {"id": "d", "name": "Delta", "count": "4"},
    ]
    assert client(socrata).get(RID) == socrata.rows(RID)
    assert client(socrata).upsert(RID, [])["Rows Created"] == 0


def test_replace_swaps_all_rows(socrata: SocrataEmulator) -> None:
    answer = client(socrata).replace(RID, [{"id": "x", "count": 1}, {"id": "y"}])
    assert answer["Rows Created"] == 2 and answer["Rows Deleted"] == 3
    assert answer["Rows Updated"] == 0 and answer["Errors"] == 0
    assert socrata.rows(RID) == [{"id": "x", "count": "1"}, {"id": "y"}]
    err = http_error(client(socrata).replace, RID, [{"id": "x", ":deleted": True}])
    assert err.response.status_code == 400
    assert [r["id"] for r in socrata.rows(RID)] == ["x", "y"]


def test_a_bad_payload_applies_nothing(socrata: SocrataEmulator) -> None:
    before = socrata.rows(RID)
    payload = [
        {"id": "new", "name": "New"},
        {"id": "a", ":deleted": True},
        {"id": "b", "count": "abc"},
    ]
    err = http_error(client(socrata).upsert, RID, payload)
    assert err.response.status_code == 400
    body = err.response.json()
    assert body["error"] is True and body["code"]
    assert body["message"].startswith("Could not parse 'abc' as number")
    assert socrata.rows(RID) == before
    assert http_error(client(socrata).replace, RID, payload).response.status_code == 400
    assert socrata.rows(RID) == before


@pytest.mark.parametrize("name", ["foo", "Name", ":id", ":created_at"])
def test_unknown_field_is_illegal_field_name(socrata: SocrataEmulator, name: str) -> None:
    err = http_error(client(socrata).upsert, RID, [{"id": "a"}, {"id": "z", name: "x"}])
    assert err.response.status_code == 400
    message = err.response.json()["message"]
    assert message.startswith("Illegal field name")
    assert f"'{name}'" in message
    assert f"'{name}'" in str(err)  # sodapy puts the message into its exception
    assert len(socrata.rows(RID)) == 3


@pytest.mark.parametrize(
    "row",
    [
        {"name": "no id"},
        {"id": None, "name": "null id"},
        {":deleted": True},
        {"id": 7},  # a text identifier takes strings only
        {"id": "a", ":deleted": "yes"},
    ],
)
def test_rows_need_a_valid_row_identifier(socrata: SocrataEmulator, row: dict) -> None:
    err = http_error(client(socrata).upsert, RID, [row])
    assert err.response.status_code == 400
    assert len(socrata.rows(RID)) == 3


def test_payload_must_be_a_json_array_of_objects(socrata: SocrataEmulator) -> None:
    auth = (socrata.key_id, socrata.key_secret)
    headers = {"X-App-Token": socrata.app_token}
    url = f"{socrata.url}/resource/{RID}.json"
    for body in ("{not json", '{"id": "a"}', '["a"]'):
        response = requests.post(url, data=body, auth=auth, headers=headers, timeout=10)
        assert response.status_code == 400, body
        assert response.json()["error"] is True


# --------------------------------------------------------------------------- value types

ACCEPTED = [
    ("t", "hello", "hello"),
    ("t", "", ""),
    ("n", 3, "3"),
    ("n", 2.5, "2.5"),
    ("n", "42", "42"),
    ("n", "-0.50", "-0.5"),
    ("n", 10.0, "10"),
    ("m", "19.99", "19.99"),
    ("p", 12, "12"),
    ("c", True, True),
    ("c", False, False),
    ("d", "2019-09-11T00:00:00", "2019-09-11T00:00:00.000"),
    ("d", "2019-09-11T13:05:09.120", "2019-09-11T13:05:09.120"),
    ("d", "2019-09-11", "2019-09-11T00:00:00.000"),
    (
        "pt",
        {"type": "Point", "coordinates": [-97.74, 30.27]},
        {"type": "Point", "coordinates": [-97.74, 30.27]},
    ),
    ("pt", "POINT (-97.74 30.27)", {"type": "Point", "coordinates": [-97.74, 30.27]}),
    (
        "mp",
        {"type": "MultiPoint", "coordinates": [[-97.7, 30.2], [-97.8, 30.3]]},
        {"type": "MultiPoint", "coordinates": [[-97.7, 30.2], [-97.8, 30.3]]},
    ),
    (
        "mp",
        "MULTIPOINT ((-97.7 30.2), (-97.8 30.3))",
        {"type": "MultiPoint", "coordinates": [[-97.7, 30.2], [-97.8, 30.3]]},
    ),
    (
        "loc",
        {"latitude": 30.27, "longitude": -97.74, "human_address": '{"city": "Austin"}'},
        {"latitude": "30.27", "longitude": "-97.74", "human_address": '{"city": "Austin"}'},
    ),
    (
        "loc",
        {"latitude": "30.27", "longitude": "-97.74"},
        {"latitude": "30.27", "longitude": "-97.74"},
    ),
    ("u", "https://example.com/a", {"url": "https://example.com/a"}),
    (
        "u",
        {"url": "https://example.com/a", "description": "A"},
        {"url": "https://example.com/a", "description": "A"},
    ),
    ("odd", "anything", "anything"),
]

REJECTED = [
    ("t", 5, "as text"),
    ("t", True, "as text"),
    ("t", {"a": 1}, "as text"),
    ("n", "abc", "Could not parse 'abc' as number"),
    ("n", True, "as number"),
    ("n", "1_000", "as number"),
    ("n", "NaN", "as number"),
    ("m", "$5", "as number"),
    ("c", "true", "as checkbox"),
    ("c", 1, "as checkbox"),
    ("d", "2019-09-11T00:00:00Z", "Could not parse '2019-09-11T00:00:00Z' as floating timestamp"),
    ("d", "2019-09-11T00:00:00.000Z", "as floating timestamp"),
    ("d", "2019-09-11T00:00:00-05:00", "as floating timestamp"),
    ("d", "2019-09-11T00:00:00+00:00", "as floating timestamp"),
    ("d", "09/11/2019", "as floating timestamp"),
    ("d", "2019-02-30", "as floating timestamp"),
    ("d", 1568160000, "as floating timestamp"),
    ("pt", {"type": "Point", "coordinates": [30.27, -97.74]}, "as point"),  # lat, lon swapped
    ("pt", {"type": "Point", "coordinates": [-197.0, 30.0]}, "as point"),
    ("pt", {"type": "Point", "coordinates": [-97.74]}, "as point"),
    ("pt", {"type": "MultiPoint", "coordinates": [[-97.7, 30.2]]}, "as point"),
    ("pt", {"latitude": 30.27, "longitude": -97.74}, "as point"),
    ("pt", "POINT (30.27 -97.74)", "as point"),
    ("pt", [-97.74, 30.27], "as point"),
    ("mp", {"type": "Point", "coordinates": [-97.7, 30.2]}, "as multipoint"),
    ("mp", {"type": "MultiPoint", "coordinates": []}, "as multipoint"),
    ("mp", {"type": "MultiPoint", "coordinates": [[-97.7, 30.2], [0, 95]]}, "as multipoint"),
    ("loc", "30.27, -97.74", "as location"),
    ("loc", {"latitude": 30.27}, "as location"),
    ("loc", {"latitude": 91, "longitude": -97.74}, "as location"),
    ("loc", {"latitude": 30.27, "longitude": -97.74, "zip": "78701"}, "as location"),
    ("loc", {}, "as location"),
    ("u", 5, "as url"),
    ("u", {"description": "no url"}, "as url"),
]


@pytest.mark.parametrize(("field", "value", "stored"), ACCEPTED)
def test_accepted_values(socrata: SocrataEmulator, field: str, value: Any, stored: Any) -> None:
    answer = client(socrata).upsert(TYPED, [{"id": "r", field: value}])
    assert answer["Rows Created"] == 1
    assert socrata.rows(TYPED) == [{"id": "r", field: stored}]
    assert client(socrata).get(TYPED) == [{"id": "r", field: stored}]


@pytest.mark.parametrize(("field", "value", "message"), REJECTED)
def test_rejected_values(socrata: SocrataEmulator, field: str, value: Any, message: str) -> None:
    err = http_error(client(socrata).upsert, TYPED, [{"id": "ok"}, {"id": "r", field: value}])
    assert err.response.status_code == 400
    assert message in err.response.json()["message"]
    assert f"'{field}'" in err.response.json()["message"]  # names the field
    assert socrata.rows(TYPED) == []


def test_null_is_always_accepted_and_omitted(socrata: SocrataEmulator) -> None:
    row = {c["fieldName"]: None for c in TYPED_COLUMNS} | {"id": "r"}
    assert client(socrata).upsert(TYPED, [row])["Rows Created"] == 1
    assert client(socrata).get(TYPED) == [{"id": "r"}]


# --------------------------------------------------------------------------- reads


def test_get_limit_offset_order_and_representation(socrata: SocrataEmulator) -> None:
    soda = client(socrata)
    rows = soda.get(RID)
    assert [r["id"] for r in rows] == ["a", "b", "c"]  # default: row identifier order
    assert rows[0] == {
        "id": "a",
        "name": "Alpha",
        "count": "3",
        "modified": "2019-09-11T00:00:00.000",
    }
    assert rows[1] == {"id": "b", "name": "Bravo", "count": "1.5"}  # null field left out
    assert [r["id"] for r in soda.get(RID, order="count")] == ["b", "a", "c"]  # numeric
    assert [r["id"] for r in soda.get(RID, order="count DESC")] == ["c", "a", "b"]
    assert [r["id"] for r in soda.get(RID, order="modified ASC")] == ["a", "c", "b"]  # nulls last
    assert [r["id"] for r in soda.get(RID, order="name DESC", limit=2)] == ["c", "b"]
    assert [r["id"] for r in soda.get(RID, limit=2, offset=2)] == ["c"]
    assert soda.get(RID, offset=5) == []
    assert soda.get(RID, select="id, count", limit=1) == [{"id": "a", "count": "3"}]
    assert [r["id"] for r in soda.get(RID, name="Bravo")] == ["b"]
    assert [r["id"] for r in soda.get(RID, count="10.0")] == ["c"]


def test_get_default_limit_and_paging(socrata: SocrataEmulator) -> None:
    socrata.add_dataset(RID, COLUMNS, [{"id": f"r{i:05d}", "count": i} for i in range(1205)])
    soda = client(socrata)
    assert len(soda.get(RID)) == 1000
    everything = list(soda.get_all(RID))
    assert len(everything) == 1205 and everything[-1] == {"id": "r01204", "count": "1204"}


def test_bad_queries_are_400(socrata: SocrataEmulator) -> None:
    soda = client(socrata)
    for kwargs in ({"order": "nope"}, {"order": "count SIDEWAYS"}, {"limit": -1}):
        with pytest.raises(requests.HTTPError) as info:
            soda.get(RID, **kwargs)
        assert info.value.response.status_code == 400, kwargs
    err = http_error(lambda: soda.get(RID, where="count > 1"))
    assert err.response.status_code == 400 and "$where" in err.response.json()["message"]
    assert http_error(lambda: soda.get(RID, nope="x")).response.status_code == 400


# --------------------------------------------------------------------------- auth


def test_writes_need_basic_auth_and_app_token(socrata: SocrataEmulator) -> None:
    row = [{"id": "z"}]
    for kwargs in ({"key_secret": "wrong"}, {"key_id": "someone"}):
        err = http_error(client(socrata, **kwargs).upsert, RID, row)
        assert err.response.status_code == 401
        assert err.response.json()["code"] == "authentication_required"
        assert err.response.json()["error"] is True
    anonymous = requests.post(f"{socrata.url}/resource/{RID}.json", json=row, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "authentication_required"
    err = http_error(client(socrata, app_token="wrong-token").upsert, RID, row)
    assert err.response.status_code == 403
    no_token = requests.put(
        f"{socrata.url}/resource/{RID}.json",
        json=row,
        auth=(socrata.key_id, socrata.key_secret),
        timeout=10,
    )
    assert no_token.status_code == 403
    assert len(socrata.rows(RID)) == 3


def test_reads_are_public(socrata: SocrataEmulator) -> None:
    for path in (f"/resource/{RID}.json", f"/api/views/{RID}.json"):
        response = requests.get(socrata.url + path, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
    anonymous = Socrata(
        socrata.domain,
        None,
        session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()},
    )
    assert len(anonymous.get(RID)) == 3


# --------------------------------------------------------------------------- faults, log


def test_fail_next(socrata: SocrataEmulator) -> None:
    socrata.faults.fail_next = 2
    soda = client(socrata)
    err = http_error(soda.get, RID)
    assert err.response.status_code == 503
    assert err.response.json()["error"] is True and err.response.json()["message"]
    assert http_error(soda.upsert, RID, [{"id": "z"}]).response.status_code == 503
    assert len(soda.get(RID)) == 3  # the failed write changed nothing
    socrata.faults.fail_next, socrata.faults.status = 1, 500
    assert http_error(soda.get_metadata, RID).response.status_code == 500
    assert [r.status for r in socrata.requests] == [503, 503, 200, 500]


def test_fail_after_writes(socrata: SocrataEmulator) -> None:
    soda = client(socrata)
    socrata.faults.fail_after_writes = 2
    soda.upsert(RID, [{"id": "w1"}])
    soda.replace(RID, [{"id": "w2"}])
    for _ in range(2):
        assert http_error(soda.upsert, RID, [{"id": "w3"}]).response.status_code == 503
    assert soda.get(RID) == [{"id": "w2"}]  # reads still work
    socrata.faults.fail_after_writes = None
    soda.upsert(RID, [{"id": "w3"}])
    assert [r["id"] for r in socrata.rows(RID)] == ["w2", "w3"]


def test_error_ids_count_as_errors_and_the_rest_applies(socrata: SocrataEmulator) -> None:
    socrata.faults.error_ids = {"bad", "c"}
    answer = client(socrata).upsert(
        RID, [{"id": "bad", "name": "X"}, {"id": "a", "name": "A2"}, {"id": "c", ":deleted": True}]
    )
    assert answer["Errors"] == 2
    assert answer["Rows Updated"] == 1 and answer["Rows Created"] == 0
    assert answer["Rows Deleted"] == 0
    assert [(r["id"], r["name"]) for r in socrata.rows(RID)] == [
        ("a", "A2"),
        ("b", "Bravo"),
        ("c", "Charlie"),
    ]


def test_delay_times_the_client_out_but_the_write_still_lands(socrata: SocrataEmulator) -> None:
    socrata.faults.delay = 0.8
    with pytest.raises(requests.exceptions.Timeout):
        client(socrata, timeout=0.2).upsert(RID, [{"id": "late"}])
    deadline = time.monotonic() + 5
    while "late" not in [r["id"] for r in socrata.rows(RID)]:
        assert time.monotonic() < deadline, "the delayed write was never applied"
        time.sleep(0.05)
    socrata.faults.delay = 0.0
    assert client(socrata, timeout=5).get(RID, limit=1)[0]["id"] == "a"


def test_request_log(socrata: SocrataEmulator) -> None:
    soda = client(socrata)
    soda.upsert(RID, [{"id": "x"}, {"id": "y"}])
    soda.get(RID, limit=1)
    write, read = socrata.requests
    assert (write.method, write.path, write.status, write.n_rows) == (
        "POST",
        f"/resource/{RID}.json",
        200,
        2,
    )
    assert write.resource_id == RID and write.time > 0
    assert (read.method, read.query, read.n_rows) == ("GET", {"$limit": "1"}, None)
    socrata.reset_log()
    assert socrata.requests == []


def test_control_routes(socrata: SocrataEmulator) -> None:
    url = f"{socrata.url}/_emulator/faults"
    answer = requests.post(url, json={"fail_next": 1, "error_ids": ["a"]}, timeout=10)
    assert answer.status_code == 200 and answer.json()["error_ids"] == ["a"]
    assert socrata.faults.fail_next == 1 and socrata.faults.error_ids == {"a"}
    assert requests.post(url, json={"bogus": 1}, timeout=10).status_code == 400
    assert requests.get(f"{socrata.url}/resource/{RID}.json", timeout=10).status_code == 503
    log = requests.get(f"{socrata.url}/_emulator/requests", timeout=10).json()
    assert [entry["status"] for entry in log] == [503]


def test_add_dataset_checks_its_input() -> None:
    emulator = SocrataEmulator()  # not started: data methods work without a server
    with pytest.raises(ValueError, match="row identifier"):
        emulator.add_dataset(RID, COLUMNS, row_identifier="nope")
    with pytest.raises(ValueError, match="Illegal field name 'zzz'"):
        emulator.add_dataset(RID, COLUMNS, [{"id": "a", "zzz": 1}])
    with pytest.raises(ValueError, match="4x4"):
        emulator.add_dataset("not-an-id", COLUMNS)
    emulator.add_dataset(RID, COLUMNS, [{"id": "b"}, {"id": "a", "count": 2}])
    rows = emulator.rows(RID)
    assert rows == [{"id": "a", "count": "2"}, {"id": "b"}]
    rows[0]["count"] = "changed"  # a deep copy
    assert emulator.rows(RID)[0]["count"] == "2"
    with pytest.raises(RuntimeError):
        _ = emulator.url


def test_command_line_serves_the_example_dataset() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "emulators.socrata", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            _check_command_line_output(proc)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _check_command_line_output(proc: subprocess.Popen) -> None:
    """The printed variables work with sodapy as production configures it."""
    assert proc.stdout is not None
    lines = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(4))
    assert set(lines) == {
        "SOCRATA_URL",
        "SOCRATA_APP_TOKEN",
        "SOCRATA_API_KEY_ID",
        "SOCRATA_API_KEY_SECRET",
    }
    domain = lines["SOCRATA_URL"].removeprefix("http://")
    soda = Socrata(
        domain,
        lines["SOCRATA_APP_TOKEN"],
        username=lines["SOCRATA_API_KEY_ID"],
        password=lines["SOCRATA_API_KEY_SECRET"],
        timeout=60,
        session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()},
    )
    assert soda.get_metadata(EXAMPLE_RESOURCE_ID)["columns"]
    assert len(soda.get(EXAMPLE_RESOURCE_ID)) == 2
    assert soda.upsert(EXAMPLE_RESOURCE_ID, [{"id": "new"}])["Rows Created"] == 1


# --------------------------------------------------------------------------- CSV reads, count(*)

FULL_ROW = {
    "id": "r",
    "t": 'say "hi", ok',
    "n": 2.5,
    "m": "19.99",
    "p": 12,
    "c": True,
    "d": "2019-09-11T13:05:09.12",
    "pt": {"type": "Point", "coordinates": [-97.7424, 30.2686]},
    "mp": "MULTIPOINT ((-97.7 30.2), (-97 30))",
    "loc": {"latitude": 30.27, "longitude": -97.74, "human_address": '{"city": "Austin"}'},
    "u": {"url": "https://example.com/a", "description": "A"},
    "odd": "anything",
}


def get_csv(emulator: SocrataEmulator, rid: str, **params: Any) -> requests.Response:
    return requests.get(f"{emulator.url}/resource/{rid}.csv", params=params, timeout=10)


def test_csv_renders_every_column_type(socrata: SocrataEmulator) -> None:
    socrata.upsert_rows(TYPED, [FULL_ROW, {"id": "s", "c": False}])
    response = get_csv(socrata, TYPED)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    names = [c["fieldName"] for c in TYPED_COLUMNS]
    assert json.loads(response.headers["X-SODA2-Fields"]) == names
    assert json.loads(response.headers["X-SODA2-Types"]) == [
        "text", "text", "number", "money", "percent", "checkbox", "calendar_date", "point",
        "multipoint", "location", "url", "text",
    ]  # fmt: skip
    assert response.content.decode("utf-8") == (
        "id,t,n,m,p,c,d,pt,mp,loc,u,odd\n"
        'r,"say ""hi"", ok",2.5,19.99,12,true,2019-09-11T13:05:09.120,'
        'POINT (-97.7424 30.2686),"MULTIPOINT ((-97.7 30.2), (-97.0 30.0))",'
        '"{""human_address"":""{\\""city\\"": \\""Austin\\""}"",""latitude"":""30.27"",'
        '""longitude"":""-97.74""}",'
        '"{""description"":""A"",""url"":""https://example.com/a""}",anything\n'
        "s,,,,,false,,,,,,\n"
    )
    header, full, empty = csv.reader(io.StringIO(response.text))
    assert header == names
    cells = dict(zip(header, full, strict=True))
    assert cells["t"] == 'say "hi", ok' and cells["pt"] == "POINT (-97.7424 30.2686)"
    assert json.loads(cells["loc"]) == socrata.rows(TYPED)[0]["loc"]
    assert json.loads(cells["u"]) == {"url": "https://example.com/a", "description": "A"}
    assert empty == ["s"] + [""] * 4 + ["false"] + [""] * 6  # null cells are empty


def test_csv_text_round_trips_through_csv_reader(socrata: SocrataEmulator) -> None:
    texts = ["a,b", 'quo"te', "two\nlines", "cr\r\nlf", " padded ", "", "naïve ✓", '",\n"']
    socrata.upsert_rows(TYPED, [{"id": f"r{i}", "t": t} for i, t in enumerate(texts)])
    response = get_csv(socrata, TYPED, **{"$select": "id, t", "$order": ":id"})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert rows == [["id", "t"]] + [[f"r{i}", t] for i, t in enumerate(texts)]


def test_csv_has_the_json_query_semantics(socrata: SocrataEmulator) -> None:
    def ids(**params: Any) -> list[str]:
        response = get_csv(socrata, RID, **params)
        assert response.status_code == 200, response.text
        header, *rows = csv.reader(io.StringIO(response.text))
        return [row[header.index("id")] for row in rows]

    assert ids() == ["a", "b", "c"]
    assert ids(**{"$order": "count DESC"}) == ["c", "a", "b"]
    assert ids(**{"$order": ":id DESC", "$limit": "2"}) == ["c", "b"]
    assert ids(**{"$limit": "2", "$offset": "1"}) == ["b", "c"]
    assert ids(name="Bravo") == ["b"]
    assert get_csv(socrata, RID, **{"$select": "count,id", "$limit": "1"}).text == "count,id\n3,a\n"
    assert get_csv(socrata, RID, **{"$offset": "9"}).text == "id,name,count,modified\n"
    for params in ({"$where": "count > 1"}, {"nope": "x"}, {"$order": "nope"}, {"$limit": "x"}):
        response = get_csv(socrata, RID, **params)
        assert response.status_code == 400, params
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"] is True
    missing = get_csv(socrata, "zzzz-9999")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_csv_paging_by_id_covers_every_row_once(socrata: SocrataEmulator) -> None:
    ids = [f"r{i:03d}" for i in range(23)]
    scrambled = ids[7:] + ids[:7]
    socrata.add_dataset(RID, COLUMNS, [{"id": i, "count": int(i[1:])} for i in scrambled])
    soda, seen, offset = client(socrata), [], 0
    while True:
        page = soda.get(RID, content_type="csv", order=":id", limit=5, offset=offset)
        assert page[0] == ["id", "name", "count", "modified"]
        seen += [row[0] for row in page[1:]]
        if len(page) - 1 < 5:
            break
        offset += 5
    assert seen == ids
    assert [r.resource_id for r in socrata.requests] == [RID] * 5
    assert socrata.requests[0].path == f"/resource/{RID}.csv"


def test_sodapy_csv_get_returns_a_header_and_rows(socrata: SocrataEmulator) -> None:
    rows = client(socrata).get(RID, content_type="csv", order=":id", limit=2, offset=0)
    assert rows == [
        ["id", "name", "count", "modified"],
        ["a", "Alpha", "3", "2019-09-11T00:00:00.000"],
        ["b", "Bravo", "1.5", ""],
    ]


def test_count_all_on_json_and_csv(socrata: SocrataEmulator) -> None:
    soda = client(socrata)
    assert soda.get(RID, select="count(*)") == [{"count": "3"}]
    assert soda.get(RID, select="count(*)", limit=1, offset=2, order="name") == [{"count": "3"}]
    assert soda.get(RID, select="count(*)", name="Bravo") == [{"count": "1"}]
    assert soda.get(RID, select="count(*)", name="nobody") == [{"count": "0"}]
    assert soda.get(RID, select=" COUNT ( * )  AS  total ") == [{"total": "3"}]
    assert soda.get(RID, select="count(*) as n", count="3") == [{"n": "1"}]
    assert soda.get(RID, content_type="csv", select="count(*)") == [["count"], ["3"]]
    response = get_csv(socrata, RID, **{"$select": "Count(*) as rows", "$limit": "0"})
    assert response.text == "rows\n3\n"
    assert json.loads(response.headers["X-SODA2-Fields"]) == ["rows"]
    assert json.loads(response.headers["X-SODA2-Types"]) == ["number"]
    assert soda.get(TYPED, select="count(*)") == [{"count": "0"}]
    for select in ("count(id)", "count(*) as", "count(*), id", "count(*) total"):
        assert http_error(lambda s=select: soda.get(RID, select=s)).response.status_code == 400
    assert (
        http_error(lambda: soda.get(RID, select="count(*)", where="x")).response.status_code == 400
    )


def test_max_limit_caps_both_formats(socrata: SocrataEmulator) -> None:
    assert SocrataEmulator().max_limit == 50_000
    assert SocrataEmulator(max_limit=7).max_limit == 7
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="max_limit"):
            SocrataEmulator(max_limit=bad)  # type: ignore[arg-type]
    socrata.add_dataset(RID, COLUMNS, [{"id": f"r{i:02d}"} for i in range(12)])
    soda = client(socrata)
    assert len(soda.get(RID, limit=50_000)) == 12
    socrata.max_limit = 5
    assert [r["id"] for r in soda.get(RID, limit=1000, offset=3)] == [
        f"r{i:02d}" for i in range(3, 8)
    ]
    assert len(soda.get(RID)) == 5  # the default $limit (1000) is capped too
    assert len(soda.get(RID, content_type="csv", limit=100)) == 1 + 5
    assert len(soda.get(RID, limit=2)) == 2
    assert soda.get(RID, select="count(*)") == [{"count": "12"}]  # counts are not capped
    assert len(list(soda.get_all(RID, limit=5))) == 12


def test_writes_to_csv_are_400_and_views_have_no_csv(socrata: SocrataEmulator) -> None:
    auth = (socrata.key_id, socrata.key_secret)
    headers = {"X-App-Token": socrata.app_token}
    url = f"{socrata.url}/resource/{RID}.csv"
    for method in ("POST", "PUT"):
        for body in ('[{"id": "z"}]', "id\nz\n"):
            response = requests.request(
                method, url, data=body, auth=auth, headers=headers, timeout=10
            )
            assert response.status_code == 400, (method, body)
            assert response.json() == {
                "code": "invalid_request",
                "error": True,
                "message": "The emulator takes JSON payloads only",
            }
    assert requests.post(url, data="[]", timeout=10).status_code == 401  # auth comes first
    assert len(socrata.rows(RID)) == 3
    view = requests.get(f"{socrata.url}/api/views/{RID}.csv", timeout=10)
    assert view.status_code == 404 and view.json()["error"] is True


# --------------------------------------------------------------------------- direct data, hook


def test_upsert_rows_and_delete_rows_change_what_get_returns(
    socrata: SocrataEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimpleNamespace(time=lambda: 2_000_000_000.7, sleep=time.sleep)
    monkeypatch.setattr(socrata_module, "time", clock)  # the emulator's clock only
    answer = socrata.upsert_rows(
        RID, [{"id": "d", "count": 4}, {"id": "a", "name": "A2"}, {"id": "b", ":deleted": True}]
    )
    assert answer == {
        "By RowIdentifier": 2,
        "Rows Created": 1,
        "Rows Updated": 1,
        "Rows Deleted": 1,
        "By SID": 0,
        "Errors": 0,
    }
    soda = client(socrata)
    assert [(r["id"], r.get("name")) for r in soda.get(RID)] == [
        ("a", "A2"),
        ("c", "Charlie"),
        ("d", None),
    ]
    assert soda.get_metadata(RID)["rowsUpdatedAt"] == 2_000_000_000
    clock.time = lambda: 2_000_000_100.0
    assert socrata.delete_rows(RID, ["c", "nope", "d"]) == 2
    assert [r["id"] for r in soda.get(RID)] == ["a"]
    assert socrata.metadata(RID)["rowsUpdatedAt"] == 2_000_000_100
    # only the reads above are logged, not the direct writes
    assert [(r.method, r.path) for r in socrata.requests] == [
        ("GET", f"/resource/{RID}.json"),
        ("GET", f"/api/views/{RID}.json"),
        ("GET", f"/resource/{RID}.json"),
    ]


def test_direct_writes_validate_and_ignore_faults(socrata: SocrataEmulator) -> None:
    for rows in ([{"id": "z", "zzz": 1}], [{"name": "no id"}], [{"id": "z", "count": "abc"}], "x"):
        with pytest.raises(ValueError):
            socrata.upsert_rows(RID, rows)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row identifier"):
        socrata.delete_rows(RID, [None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="as text"):
        socrata.delete_rows(RID, [7])  # type: ignore[list-item]
    with pytest.raises(KeyError):
        socrata.upsert_rows("zzzz-9999", [])
    assert len(socrata.rows(RID)) == 3
    socrata.faults.fail_next, socrata.faults.error_ids = 1, {"a", "b"}
    assert socrata.upsert_rows(RID, [{"id": "a", "name": "A2"}])["Errors"] == 0
    assert socrata.delete_rows(RID, ["b"]) == 1
    assert socrata.faults.fail_next == 1  # not used up
    assert socrata.requests == []


def test_after_request_sees_each_request(socrata: SocrataEmulator) -> None:
    seen: list[SocrataRequest] = []
    socrata.after_request = seen.append
    soda = client(socrata)
    soda.get(RID, content_type="csv", limit=1)
    soda.upsert(RID, [{"id": "z"}])
    soda.get_metadata(RID)
    requests.get(f"{socrata.url}/_emulator/requests", timeout=10)  # control: not seen
    socrata.faults.fail_next = 1
    http_error(soda.get, RID)
    assert seen == socrata.requests
    assert [(r.method, r.path, r.status) for r in seen] == [
        ("GET", f"/resource/{RID}.csv", 200),
        ("POST", f"/resource/{RID}.json", 200),
        ("GET", f"/api/views/{RID}.json", 200),
        ("GET", f"/resource/{RID}.json", 503),
    ]


def test_after_request_can_change_data_between_pages(socrata: SocrataEmulator) -> None:
    def hook(request: SocrataRequest) -> None:
        if request.query.get("$offset") == "0":  # after the first page, before the second
            socrata.upsert_rows(RID, [{"id": "0"}])  # sorts first: shifts every page
            socrata.delete_rows(RID, ["c"])

    socrata.after_request = hook
    soda = client(socrata)
    first = soda.get(RID, content_type="csv", order=":id", limit=2, offset=0)
    second = soda.get(RID, content_type="csv", order=":id", limit=2, offset=2)
    assert [row[0] for row in first[1:]] == ["a", "b"]
    assert [row[0] for row in second[1:]] == ["b"]  # now 0, a, b: the second page repeats b


def test_a_raising_after_request_hook_does_not_break_the_answer(
    socrata: SocrataEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(request: SocrataRequest) -> None:
        raise RuntimeError("hook went wrong")

    socrata.after_request = hook
    with caplog.at_level(logging.ERROR, logger="emulators.socrata"):
        assert client(socrata).get(RID, select="count(*)") == [{"count": "3"}]
        assert client(socrata).upsert(RID, [{"id": "z"}])["Rows Created"] == 1
    assert "hook went wrong" in caplog.text
    assert [r.status for r in socrata.requests] == [200, 200]
