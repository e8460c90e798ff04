"""Tests of the Socrata SODA 2.x emulator (lib/emulators/socrata.py), through sodapy."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.adapters
from sodapy import Socrata

from lib.emulators.socrata import (
    EXAMPLE_RESOURCE_ID,
    SocrataEmulator,
    SocrataFaults,
)

REPO = Path(__file__).resolve().parents[1]
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
    """The shared server with fresh datasets, no faults and an empty log."""
    server.faults = SocrataFaults()
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
        [sys.executable, "-m", "lib.emulators.socrata", "--port", "0"],
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
