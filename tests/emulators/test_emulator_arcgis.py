"""Tests of the ArcGIS Online emulator (emulators/arcgis.py), through the real ``arcgis``
package (ArcGIS API for Python) over HTTPS, plus a few raw ``requests`` calls.

A guard refuses every connection (and name lookup) to a host other than 127.0.0.1 or
localhost while this module runs, and fails the module if anything tried one: ``arcgis``
must never reach www.arcgis.com.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from arcgis.features import FeatureLayer, Table
from arcgis.gis import GIS

from emulators.arcgis import (
    EXAMPLE_SERVICE_ID,
    ArcGISEmulator,
    ArcGISFaults,
)

REPO = Path(__file__).resolve().parents[2]
USER = "knack_publisher"
PASSWORD = "correct horse battery staple"
SID = "0123456789abcdef0123456789abcdef"
NAME = "signals_test"
MULTI_SID = "fedcba9876543210fedcba9876543210"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

FIELDS = [
    {"name": "id", "type": "string", "length": 24},
    {"name": "signal_id", "type": "integer"},
    {"name": "location_name", "type": "string"},
    {"name": "signal_status", "type": "string"},
    {"name": "modified_date", "type": "date"},
]
MARCH_2 = int(dt.datetime(2026, 3, 2, 15, 15, tzinfo=dt.UTC).timestamp() * 1000)


def signal(i: int, status: str = "TURNED_ON") -> dict:
    return {
        "attributes": {
            "id": f"r{i:05d}",
            "signal_id": i,
            "location_name": f"STREET {i}",
            "signal_status": status,
            "modified_date": MARCH_2 + i * 60_000,
        },
        "geometry": {"x": -97.7 - i / 10_000, "y": 30.2 + i / 10_000},
    }


LAYERS = [
    {
        "name": "signals",
        "geometry_type": "esriGeometryPoint",
        "fields": FIELDS,
        "features": [signal(1), signal(2, "DESIGN"), signal(3, "DESIGN")],
    },
    {
        "name": "notes",
        "fields": [{"name": "id", "type": "string"}, {"name": "note", "type": "string"}],
    },
]
MULTI_LAYERS = [
    {
        "name": "corridors",
        "geometry_type": "esriGeometryMultipoint",
        "fields": [{"name": "id", "type": "string"}],
        "max_record_count": 200,
    }
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def local_only() -> Iterator[list[str]]:
    """Refuse (and remember) any name lookup or connection to a non-local host."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(host: Any) -> None:
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and host not in LOCAL_HOSTS:
            attempts.append(host)
            raise OSError(f"test guard: no connections to {host!r}")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple):
            check(address[0])
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple):
            check(address[0])
        return real_connect_ex(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield attempts
    assert attempts == [], f"something tried to reach {sorted(set(attempts))}"


@pytest.fixture(scope="module")
def server(local_only: list[str]) -> Iterator[ArcGISEmulator]:
    with ArcGISEmulator(username=USER, password=PASSWORD) as emulator:
        yield emulator
        hosts = {r.host for r in emulator.requests}
        assert hosts <= {urlsplit(emulator.url).netloc}, hosts


@pytest.fixture(scope="module")
def gis(server: ArcGISEmulator) -> GIS:
    """One login for the module (the default OAuth path, as production logs in)."""
    server.add_service(SID, NAME, LAYERS)
    return GIS(server.url, USER, PASSWORD, ca_bundles=server.ca_bundle)


@pytest.fixture
def agol(server: ArcGISEmulator, gis: GIS) -> ArcGISEmulator:
    """The shared server with fresh services, no faults and an empty log."""
    server.reset()
    server.add_service(SID, NAME, LAYERS, title="Signals")
    server.add_service(MULTI_SID, "corridors", MULTI_LAYERS)
    return server


def layer(gis: GIS, service_id: str = SID, index: int = 0) -> FeatureLayer:
    return gis.content.get(service_id).layers[index]


def table(gis: GIS) -> Table:
    return gis.content.get(SID).tables[0]


def stored(agol: ArcGISEmulator, service_id: str = SID, layer_id: int = 0) -> dict[str, dict]:
    """Stored attributes by id."""
    return {f["attributes"]["id"]: f["attributes"] for f in agol.features(service_id, layer_id)}


def raw(agol: ArcGISEmulator, path: str, *, token: str | None = None, **data: Any) -> dict:
    """POST to the emulator with requests (trusting its certificate)."""
    if token is not None:
        data["token"] = token
    response = requests.post(
        agol.url + path, data={"f": "json", **data}, verify=agol.ca_bundle, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


def layer_path(service_id: str = SID, index: int = 0, name: str = NAME) -> str:
    return f"/EmuOrg0123456789/arcgis/rest/services/{name}/FeatureServer/{index}"


# --------------------------------------------------------------------------- login


def test_login_uses_the_oauth_signin_by_default(server: ArcGISEmulator) -> None:
    server.reset_log()
    gis = GIS(server.url, USER, PASSWORD, ca_bundles=server.ca_bundle)
    assert gis.users.me.username == USER
    assert gis.properties["portalName"] == "ArcGIS Online" and gis._is_agol
    operations = [r.operation for r in server.requests]
    assert "signin" in operations and "generateToken" not in operations
    assert {"info", "self", USER} <= set(operations)  # info, portals/self, community/users/<u>
    data = [r for r in server.requests if r.operation in ("self", USER)]
    assert data and all(r.user == USER for r in data)


def test_login_with_generate_token(server: ArcGISEmulator) -> None:
    server.reset_log()
    gis = GIS(server.url, USER, PASSWORD, ca_bundles=server.ca_bundle, use_gen_token=True)
    assert gis.users.me.username == USER
    operations = [r.operation for r in server.requests]
    assert "generateToken" in operations and "signin" not in operations
    assert all("password" not in r.params for r in server.requests)  # never logged


@pytest.mark.parametrize("use_gen_token", [False, True])
def test_wrong_password_raises(server: ArcGISEmulator, use_gen_token: bool) -> None:
    with pytest.raises(Exception, match="Invalid username or password"):
        GIS(server.url, USER, "wrong", ca_bundles=server.ca_bundle, use_gen_token=use_gen_token)


def test_untrusted_certificate_is_refused(server: ArcGISEmulator) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.url}/sharing/rest/info", timeout=10)
    assert server.url.startswith("https://127.0.0.1:")
    info = requests.get(
        f"{server.url}/sharing/rest/info?f=json", verify=server.ca_bundle, timeout=10
    ).json()
    assert info["authInfo"]["tokenServicesUrl"] == f"{server.url}/sharing/rest/generateToken"


# --------------------------------------------------------------------------- items, layers


def test_content_get_gives_a_feature_service_with_layers_and_tables(
    agol: ArcGISEmulator, gis: GIS
) -> None:
    item = gis.content.get(SID)
    assert item.type == "Feature Service" and item.title == "Signals" and item.owner == USER
    assert item.url == agol.service_url(SID)
    assert item.url == f"{agol.url}/EmuOrg0123456789/arcgis/rest/services/{NAME}/FeatureServer"
    (points,) = item.layers
    (notes,) = item.tables
    assert isinstance(points, FeatureLayer) and isinstance(notes, Table)
    assert points.url == agol.layer_url(SID, 0) == f"{item.url}/0"
    assert notes.url == f"{item.url}/1"
    assert points._gis is gis and notes._gis is gis
    assert gis.content.get("ffffffffffffffffffffffffffffffff") is None


def test_layer_properties(agol: ArcGISEmulator, gis: GIS) -> None:
    props = layer(gis).properties
    assert props.geometryType == "esriGeometryPoint" and props.type == "Feature Layer"
    assert props.spatialReference["wkid"] == 4326
    assert props.maxRecordCount == 2000 and props.objectIdField == "OBJECTID"
    assert [(f.name, f.type) for f in props.fields] == [
        ("OBJECTID", "esriFieldTypeOID"),
        ("id", "esriFieldTypeString"),
        ("signal_id", "esriFieldTypeInteger"),
        ("location_name", "esriFieldTypeString"),
        ("signal_status", "esriFieldTypeString"),
        ("modified_date", "esriFieldTypeDate"),
    ]
    assert any(i["fields"] == "id" and i["isUnique"] for i in props.indexes)
    notes = table(gis).properties
    assert notes.type == "Table" and "geometryType" not in notes
    agol.set_max_record_count(SID, 0, 7)
    assert layer(gis).properties.maxRecordCount == 7
    assert layer(gis, MULTI_SID).properties.geometryType == "esriGeometryMultipoint"


# --------------------------------------------------------------------------- queries


def test_query_returns_every_feature_beyond_max_record_count(
    agol: ArcGISEmulator, gis: GIS
) -> None:
    agol.add_service(
        SID,
        NAME,
        [{**LAYERS[0], "max_record_count": 200, "features": [signal(i) for i in range(450)]}],
    )
    raw_page = raw(
        agol, layer_path() + "/query", token=agol.issue_token(), where="1=1", outFields="*"
    )
    assert len(raw_page["features"]) == 200 and raw_page["exceededTransferLimit"] is True
    last = raw(
        agol,
        layer_path() + "/query",
        token=agol.issue_token(),
        where="1=1",
        resultOffset=400,
        resultRecordCount=100,
    )
    assert len(last["features"]) == 50 and "exceededTransferLimit" not in last
    agol.reset_log()
    features = layer(gis).query(where="1=1").features
    assert len(features) == 450
    assert {f.attributes["id"] for f in features} == {f"r{i:05d}" for i in range(450)}
    assert features[0].geometry["x"] < -97
    # how arcgis 2.4 pages: first page, a count, all ids, then pages of 200 object ids
    queries = [r.params for r in agol.requests if r.operation == "query"]
    assert queries[1]["returnCountOnly"] == "true" and queries[2]["returnIdsOnly"] == "true"
    assert sum(1 for q in queries if "objectIds" in q) == 3


def test_arcgis_drops_features_when_max_record_count_is_below_200(
    agol: ArcGISEmulator, gis: GIS
) -> None:
    """A quirk of arcgis 2.4: it fetches pages of 200 object ids and ignores a capped page.

    Ordering the query makes it page with resultOffset instead, which is complete.
    """
    agol.add_service(
        SID,
        NAME,
        [{**LAYERS[0], "max_record_count": 50, "features": [signal(i) for i in range(120)]}],
    )
    assert len(layer(gis).query(where="1=1").features) == 50
    ordered = layer(gis).query(where="1=1", order_by_fields="OBJECTID ASC").features
    assert len(ordered) == 120


def test_query_where_clauses_and_options(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)

    def ids(where: str, **kwargs: Any) -> list[str]:
        return sorted(f.attributes["id"] for f in points.query(where=where, **kwargs).features)

    assert ids("1=1") == ["r00001", "r00002", "r00003"]
    assert ids("signal_status = 'DESIGN'") == ["r00002", "r00003"]
    assert ids("signal_status = 'design'") == ["r00002", "r00003"]  # case-insensitive
    assert ids("id IN ('r00001', 'r00003')") == ["r00001", "r00003"]
    assert ids("ID not in ('r00001')") == ["r00002", "r00003"]
    assert ids("signal_status = 'DESIGN' AND signal_id > 2") == ["r00003"]
    assert ids("(signal_id = 1 OR signal_id = 3) AND NOT id = 'r00003'") == ["r00001"]
    assert ids("location_name LIKE 'street%'") == ["r00001", "r00002", "r00003"]
    assert ids("modified_date >= TIMESTAMP '2026-03-02 15:17:00'") == ["r00002", "r00003"]
    assert ids(f"modified_date = {MARCH_2 + 60_000}") == ["r00001"]
    assert ids("signal_id BETWEEN 2 AND 3") == ["r00002", "r00003"]
    assert points.query(where="signal_status = 'DESIGN'", return_count_only=True) == 2
    only_ids = points.query(where="1=1", return_ids_only=True)
    assert only_ids == {"objectIdFieldName": "OBJECTID", "objectIds": [1, 2, 3]}
    slim = points.query(where="id = 'r00002'", out_fields="signal_id", return_geometry=False)
    assert slim.features[0].attributes == {"OBJECTID": 2, "signal_id": 2}
    assert slim.features[0].geometry is None or slim.features[0].geometry == {}
    for bad in ("nope = 1", "id = ", "signal_id = 'abc'", "id ==== 'x'"):
        with pytest.raises(ValueError, match="Unable to complete operation"):
            points.query(where=bad)


def test_query_null_checks_and_tables(agol: ArcGISEmulator, gis: GIS) -> None:
    notes = table(gis)
    notes.edit_features(
        adds=[{"attributes": {"id": "a", "note": "x"}}, {"attributes": {"id": "b"}}]
    )
    assert [f.attributes["id"] for f in notes.query(where="note IS NULL").features] == ["b"]
    assert [f.attributes["id"] for f in notes.query(where="note IS NOT NULL").features] == ["a"]
    rows = notes.query(where="1=1").features
    assert all(f.geometry is None or f.geometry == {} for f in rows)
    for order, expected in (("note DESC", ["a", "b"]), ("note", ["b", "a"])):  # nulls lowest
        rows = notes.query(where="1=1", order_by_fields=order).features
        assert [f.attributes["id"] for f in rows] == expected, order


def test_a_field_may_be_named_date(agol: ArcGISEmulator) -> None:
    sid = "d" * 32
    agol.add_service(
        sid,
        "dated",
        [
            {
                "name": "t",
                "fields": [{"name": "id", "type": "string"}, {"name": "date", "type": "date"}],
                "features": [
                    {"attributes": {"id": "a", "date": 0}},
                    {"attributes": {"id": "b", "date": 86_400_000}},
                ],
            }
        ],
    )
    path = "/EmuOrg0123456789/arcgis/rest/services/dated/FeatureServer/0/query"
    token = agol.issue_token()
    answer = raw(agol, path, token=token, where="date > DATE '1970-01-01'", outFields="id")
    assert [f["attributes"]["id"] for f in answer["features"]] == ["b"]
    answer = raw(agol, path, token=token, where="date = 0", outFields="*")
    assert answer["features"] == [{"attributes": {"OBJECTID": 1, "id": "a", "date": 0}}]


# --------------------------------------------------------------------------- edits


def test_edit_features_adds_updates_and_deletes(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    when = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)  # aware: arcgis sends epoch ms
    result = points.edit_features(
        adds=[
            {
                "attributes": {"id": "new1", "signal_id": 10, "modified_date": when},
                "geometry": {"x": -97.75, "y": 30.27, "spatialReference": {"wkid": 4326}},
            }
        ],
        updates=[
            {
                "attributes": {"OBJECTID": 1, "signal_status": "REMOVED"},
                "geometry": {"x": -97.8, "y": 30.3},
            }
        ],
        deletes=[3],
    )
    assert result == {
        "addResults": [{"objectId": 4, "uniqueId": 4, "globalId": None, "success": True}],
        "updateResults": [{"objectId": 1, "uniqueId": 1, "globalId": None, "success": True}],
        "deleteResults": [{"objectId": 3, "uniqueId": 3, "globalId": None, "success": True}],
    }
    features = {f["attributes"]["id"]: f for f in agol.features(SID, 0)}
    assert sorted(features) == ["new1", "r00001", "r00002"]
    assert features["new1"]["attributes"]["modified_date"] == int(when.timestamp() * 1000)
    assert features["new1"]["attributes"]["location_name"] is None
    assert features["new1"]["geometry"] == {"x": -97.75, "y": 30.27}
    assert features["r00001"]["attributes"]["signal_status"] == "REMOVED"
    assert features["r00001"]["attributes"]["location_name"] == "STREET 1"  # kept
    assert features["r00001"]["geometry"] == {"x": -97.8, "y": 30.3}
    assert points.edit_features(deletes="1,2")["deleteResults"][1]["success"] is True
    assert sorted(stored(agol)) == ["new1"]


def test_unique_constraint_fails_per_feature(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    adds = [signal(7), signal(1), signal(7)]  # r00001 exists; r00007 twice in the batch
    result = points.edit_features(adds=adds, rollback_on_failure=False)  # raises nothing
    assert [r["success"] for r in result["addResults"]] == [True, False, False]
    assert result["addResults"][1]["error"] == {
        "code": 1022,
        "description": "Unique constraint violation error on inserting the value.",
    }
    assert result["addResults"][1]["objectId"] is None
    assert sorted(stored(agol)) == ["r00001", "r00002", "r00003", "r00007"]
    moved = points.edit_features(
        updates=[{"attributes": {"OBJECTID": 2, "id": "R00001"}}], rollback_on_failure=False
    )  # case-insensitive index
    assert moved["updateResults"][0]["error"]["code"] == 1022


def test_rollback_on_failure_is_the_default(agol: ArcGISEmulator, gis: GIS) -> None:
    result = layer(gis).edit_features(
        adds=[signal(8), signal(1)],
        updates=[{"attributes": {"OBJECTID": 2, "signal_id": 99}}],
        deletes=[3],
    )
    assert result["addResults"][0]["error"] == {
        "code": 1003,
        "description": "Operation rolled back.",
    }
    assert result["addResults"][1]["error"]["code"] == 1022
    assert result["updateResults"][0]["error"]["code"] == 1003
    assert result["deleteResults"][0] == {
        "objectId": 3,
        "uniqueId": 3,
        "globalId": None,
        "success": False,
        "error": {"code": 1003, "description": "Operation rolled back."},
    }
    assert sorted(stored(agol)) == ["r00001", "r00002", "r00003"]
    assert stored(agol)["r00002"]["signal_id"] == 2


@pytest.mark.parametrize(
    ("feature", "code", "description"),
    [
        ({"attributes": {"id": "x", "colour": "red"}}, 1000, "Invalid column name 'colour'."),
        ({"attributes": {"id": "x", "signal_id": "12"}}, 1016, "Setting of value for signal_id"),
        ({"attributes": {"id": "x", "signal_id": 1.5}}, 1016, "Setting of value for signal_id"),
        ({"attributes": {"id": "x", "modified_date": "2026-03-02"}}, 1016, "modified_date"),
        ({"attributes": {"id": "x", "location_name": 5}}, 1016, "location_name"),
        ({"attributes": {"id": "x" * 25}}, 1016, "Setting of value for id"),
        ({"attributes": {"id": "x"}, "geometry": {"x": 30.27, "y": -97.74}}, 1015, "Geometry"),
        ({"attributes": {"id": "x"}, "geometry": {"points": [[-97.7, 30.2]]}}, 1015, "Geometry"),
        (
            {
                "attributes": {"id": "x"},
                "geometry": {"x": -97.7, "y": 30.2, "spatialReference": {"wkid": 3857}},
            },
            1015,
            "Geometry",
        ),
    ],
)
def test_bad_adds_fail_per_feature(
    agol: ArcGISEmulator, gis: GIS, feature: dict, code: int, description: str
) -> None:
    result = layer(gis).edit_features(adds=[feature], rollback_on_failure=False)
    (entry,) = result["addResults"]
    assert entry["success"] is False and entry["error"]["code"] == code
    assert description in entry["error"]["description"]
    assert len(agol.features(SID, 0)) == 3


def test_missing_objects_fail_per_feature(agol: ArcGISEmulator, gis: GIS) -> None:
    result = layer(gis).edit_features(
        updates=[
            {"attributes": {"OBJECTID": 99, "signal_id": 1}},
            {"attributes": {"signal_id": 1}},
        ],
        deletes=[98],
        rollback_on_failure=False,
    )
    errors = [r["error"] for r in result["updateResults"] + result["deleteResults"]]
    assert errors == [{"code": 1011, "description": "Object is missing."}] * 3


def test_multipoint_layer_and_table_geometry(agol: ArcGISEmulator, gis: GIS) -> None:
    corridors = layer(gis, MULTI_SID)
    result = corridors.edit_features(
        adds=[{"attributes": {"id": "c1"}, "geometry": {"points": [[-97.7, 30.2], [-97.8, 30.3]]}}]
    )
    assert result["addResults"][0]["success"] is True
    assert agol.features(MULTI_SID, 0)[0]["geometry"] == {"points": [[-97.7, 30.2], [-97.8, 30.3]]}
    assert corridors.query(where="1=1").features[0].geometry["points"][1] == [-97.8, 30.3]
    table(gis).edit_features(adds=[{"attributes": {"id": "n1"}, "geometry": {"x": 1, "y": 2}}])
    assert agol.features(SID, 1) == [
        {"attributes": {"OBJECTID": 1, "id": "n1", "note": None}, "geometry": None}
    ]


def test_delete_features_by_where_and_object_ids(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    result = points.delete_features(where="signal_status = 'DESIGN'")
    assert [(r["objectId"], r["success"]) for r in result["deleteResults"]] == [
        (2, True),
        (3, True),
    ]
    assert sorted(stored(agol)) == ["r00001"]
    points.edit_features(adds=[signal(4), signal(5)])
    assert points.delete_features(deletes="4")["deleteResults"][0]["objectId"] == 4
    assert points.delete_features(where="1=1")["deleteResults"][-1]["objectId"] == 5
    assert agol.features(SID, 0) == []


def test_manager_truncate(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    assert points.manager.truncate() == {"success": True}
    assert agol.features(SID, 0) == []
    operations = [r.operation for r in agol.requests]
    truncate = agol.requests[operations.index("truncate")]
    assert truncate.method == "POST" and truncate.path == (
        f"/EmuOrg0123456789/arcgis/rest/admin/services/{NAME}/FeatureServer/0/truncate"
    )
    assert operations[operations.index("truncate") + 1] == "refresh"
    added = points.edit_features(adds=[signal(1)])["addResults"][0]
    assert added["objectId"] == 4  # object ids are not reused


# --------------------------------------------------------------------------- faults


def test_fail_next_is_retried_by_arcgis(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    agol.reset_log()
    agol.faults.fail_next = 2
    assert points.query(where="1=1", return_count_only=True) == 3
    assert [r.status for r in agol.requests][:3] == [503, 503, 200]  # urllib3 retried


def test_fail_next_beyond_retries_raises(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    agol.faults.update({"fail_next": 6, "status": 500})  # 1 try + 5 retries
    with pytest.raises(Exception, match="500"):
        points.edit_features(adds=[signal(9)])
    assert agol.faults.fail_next == 0 and "r00009" not in stored(agol)


def test_fail_after_edits(agol: ArcGISEmulator, gis: GIS) -> None:
    points = layer(gis)
    agol.faults.fail_after_edits = 1
    assert points.edit_features(adds=[signal(10)])["addResults"][0]["success"] is True
    with pytest.raises(Exception, match="503"):
        points.edit_features(adds=[signal(11)])
    assert points.query(where="1=1", return_count_only=True) == 4  # reads still work
    agol.faults.fail_after_edits = None
    assert points.edit_features(adds=[signal(11)])["addResults"][0]["success"] is True


def test_error_ids_fail_per_feature(agol: ArcGISEmulator, gis: GIS) -> None:
    agol.faults.error_ids = {"r00002", "r00020"}
    result = layer(gis).edit_features(
        adds=[signal(20), signal(21)], deletes=[2], rollback_on_failure=False
    )
    assert [r["success"] for r in result["addResults"]] == [False, True]
    assert result["addResults"][0]["error"]["code"] == 1000
    assert result["deleteResults"][0]["error"]["code"] == 1000
    assert sorted(stored(agol)) == ["r00001", "r00002", "r00003", "r00021"]


def test_delay_times_out_but_the_edit_still_lands(agol: ArcGISEmulator) -> None:
    token = agol.issue_token()
    agol.faults.delay = 0.4
    with pytest.raises(requests.exceptions.Timeout):
        requests.post(
            agol.url + layer_path() + "/applyEdits",
            data={"f": "json", "token": token, "adds": '[{"attributes": {"id": "late"}}]'},
            verify=agol.ca_bundle,
            timeout=0.2,
        )
    deadline = time.monotonic() + 5
    while "late" not in stored(agol):
        assert time.monotonic() < deadline, "the delayed edit was never applied"
        time.sleep(0.05)
    agol.faults.delay = 0.0


def test_arcgis_resends_timed_out_edits(agol: ArcGISEmulator) -> None:
    """A quirk of arcgis 2.4: urllib3 retries a timed-out POST five times, and the server
    applies each one; only a unique index keeps the copies out."""
    sid = "e" * 32
    agol.add_service(
        sid,
        "no_index",
        [{"name": "t", "unique_field": None, "fields": [{"name": "id", "type": "string"}]}],
    )
    gis = GIS(agol.url, USER, PASSWORD, ca_bundles=agol.ca_bundle, timeout=0.2)
    notes = gis.content.get(sid).tables[0]
    assert notes.properties.name == "t" and gis.version  # both cached before the delay
    agol.reset_log()
    agol.faults.delay = 0.3
    with pytest.raises(Exception, match="Max retries exceeded"):
        notes.edit_features(adds=[{"attributes": {"id": "once"}}])
    deadline = time.monotonic() + 5
    while len(agol.features(sid, 0)) < 6:
        assert time.monotonic() < deadline, agol.features(sid, 0)
        time.sleep(0.05)
    agol.faults.delay = 0.0
    assert [r.operation for r in agol.requests] == ["applyEdits"] * 6


# --------------------------------------------------------------------------- tokens, raw HTTP


def test_every_data_request_needs_a_token(agol: ArcGISEmulator) -> None:
    paths = [
        "/sharing/rest/community/self",
        f"/sharing/rest/content/items/{SID}",
        f"/EmuOrg0123456789/arcgis/rest/services/{NAME}/FeatureServer",
        layer_path(),
        layer_path() + "/query",
        layer_path() + "/applyEdits",
        f"/EmuOrg0123456789/arcgis/rest/admin/services/{NAME}/FeatureServer/0/truncate",
    ]
    for path in paths:
        assert raw(agol, path, where="1=1")["error"]["code"] == 499, path
        forged = raw(agol, path, token="forged", where="1=1")["error"]
        assert forged["code"] == 498, path
        assert forged["message"] == (
            "Invalid token." if path.startswith("/sharing/") else "Invalid Token"
        ), path
    token = agol.issue_token()
    assert raw(agol, layer_path() + "/query", token=token, where="1=1", returnCountOnly="true") == {
        "count": 3
    }
    bearer = requests.get(
        agol.url + layer_path() + "/query",
        params={"f": "json", "where": "1=1", "returnCountOnly": "true"},
        headers={"X-Esri-Authorization": f"Bearer {token}"},
        verify=agol.ca_bundle,
        timeout=10,
    )
    assert bearer.json() == {"count": 3}
    assert len(agol.features(SID, 0)) == 3
    public = raw(agol, "/sharing/rest/portals/self")
    assert public["portalName"] == "ArcGIS Online" and "user" not in public


def test_generate_token_over_raw_http(agol: ArcGISEmulator) -> None:
    bad = raw(agol, "/sharing/rest/generateToken", username=USER, password="nope")
    assert bad["error"]["message"] == "Unable to generate token."
    good = raw(
        agol, "/sharing/rest/generateToken", username=USER, password=PASSWORD, expiration="5"
    )
    assert good["ssl"] is True and good["expires"] > time.time() * 1000
    assert raw(agol, "/sharing/rest/community/self", token=good["token"])["username"] == USER


@pytest.mark.parametrize("use_gen_token", [False, True])
def test_revoked_tokens_make_arcgis_raise(use_gen_token: bool) -> None:
    with ArcGISEmulator(username=USER, password=PASSWORD) as emulator:  # not the shared one
        emulator.add_service(SID, NAME, LAYERS)
        gis = GIS(
            emulator.url, USER, PASSWORD, ca_bundles=emulator.ca_bundle, use_gen_token=use_gen_token
        )
        points = gis.content.get(SID).layers[0]
        emulator.revoke_tokens()
        emulator.reset_log()
        with pytest.raises(ValueError, match="Token Required"):
            points.query(where="1=1")
        # arcgis resends the request without its token, then gives up
        assert [r.error_code for r in emulator.requests] == [498, 499]
        assert {r.host for r in emulator.requests} == {urlsplit(emulator.url).netloc}


def test_request_log_and_control_routes(agol: ArcGISEmulator, gis: GIS) -> None:
    agol.reset_log()
    layer(gis).query(where="1=1", return_count_only=True)
    entry = agol.requests[-1]
    assert (entry.method, entry.operation, entry.status, entry.user) == ("GET", "query", 200, USER)
    assert entry.host == urlsplit(agol.url).netloc and entry.params["where"] == "1=1"
    assert "token" not in entry.params
    url = f"{agol.url}/_emulator/faults"
    answer = requests.post(
        url, json={"fail_next": 1, "error_ids": ["a"]}, verify=agol.ca_bundle, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["error_ids"] == ["a"]
    assert agol.faults.fail_next == 1 and agol.faults.error_ids == {"a"}
    assert (
        requests.post(url, json={"bogus": 1}, verify=agol.ca_bundle, timeout=10).status_code == 400
    )
    assert (
        requests.get(f"{agol.url}/sharing/rest/info", verify=agol.ca_bundle, timeout=10).status_code
        == 503
    )
    log = requests.get(f"{agol.url}/_emulator/requests", verify=agol.ca_bundle, timeout=10).json()
    assert log[-1]["status"] == 503 and log[-1]["operation"] == "info"
    assert log[-1]["host"] == urlsplit(agol.url).netloc


# --------------------------------------------------------------------------- python API


def test_add_service_checks_its_input() -> None:
    emulator = ArcGISEmulator()  # not started: data methods work without a server
    good = {"name": "l", "fields": [{"name": "id", "type": "string"}]}
    with pytest.raises(ValueError, match="32 lowercase hex"):
        emulator.add_service("nope", NAME, [good])
    with pytest.raises(ValueError, match="unknown layer keys"):
        emulator.add_service(SID, NAME, [{**good, "geometry": "point"}])
    with pytest.raises(ValueError, match="has type 'blob'"):
        emulator.add_service(SID, NAME, [{"name": "l", "fields": [{"name": "a", "type": "blob"}]}])
    with pytest.raises(ValueError, match="unique_field 'code'"):
        emulator.add_service(SID, NAME, [{**good, "unique_field": "code"}])
    with pytest.raises(ValueError, match="initial features rejected: Invalid column"):
        emulator.add_service(SID, NAME, [{**good, "features": [{"attributes": {"x": 1}}]}])
    emulator.add_service(SID, NAME, [{**good, "features": [{"attributes": {"id": "a"}}]}])
    features = emulator.features(SID, 0)
    assert features == [{"attributes": {"OBJECTID": 1, "id": "a"}, "geometry": None}]
    features[0]["attributes"]["id"] = "changed"  # a deep copy
    assert emulator.features(SID, 0)[0]["attributes"]["id"] == "a"
    assert emulator.service_ids == [SID]
    emulator.remove_service(SID)
    assert emulator.service_ids == []
    with pytest.raises(RuntimeError):
        _ = emulator.url
    with pytest.raises(RuntimeError):
        _ = emulator.ca_bundle
    faults = ArcGISFaults()
    with pytest.raises(ValueError):
        faults.update({"status": 200})
    faults.update({"fail_after_edits": 2, "delay": 1})
    assert faults.to_dict()["fail_after_edits"] == 2 and faults.delay == 1.0


def test_command_line_serves_the_example_service() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "emulators.arcgis", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = dict(proc.stdout.readline().strip().split("=", 1) for _ in range(4))
            assert set(lines) == {"AGOL_URL", "AGOL_USERNAME", "AGOL_PASSWORD", "AGOL_CA_BUNDLE"}
            url, bundle = lines["AGOL_URL"], lines["AGOL_CA_BUNDLE"]
            token = requests.post(
                f"{url}/sharing/rest/generateToken",
                data={
                    "f": "json",
                    "username": lines["AGOL_USERNAME"],
                    "password": lines["AGOL_PASSWORD"],
                },
                verify=bundle,
                timeout=10,
            ).json()["token"]
            item = requests.get(
                f"{url}/sharing/rest/content/items/{EXAMPLE_SERVICE_ID}",
                params={"f": "json", "token": token},
                verify=bundle,
                timeout=10,
            ).json()
            count = requests.get(
                f"{item['url']}/0/query",
                params={"f": "json", "token": token, "where": "1=1", "returnCountOnly": "true"},
                verify=bundle,
                timeout=10,
            ).json()
            assert count == {"count": 1}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
