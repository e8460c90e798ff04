"""A local stand-in for a Socrata SODA 2.x data portal (e.g. ``https://data.austintexas.gov``).

It serves, on 127.0.0.1, the routes a publisher uses:

- ``GET /api/views/{id}.json``: dataset metadata (``columns[]`` with ``id``, ``fieldName``,
  ``dataTypeName``, ``name``, ``position``; ``rowIdentifierColumnId``); public;
- ``GET /resource/{id}.json`` (or ``.csv``, see below): rows, with ``$limit`` (default
  1000, at most :attr:`SocrataEmulator.max_limit`, default 50 000 as SODA 2.0 caps it),
  ``$offset``, ``$order`` (``field [ASC|DESC]`` or ``:id``, comma-separated; default: the
  row identifier), ``$select`` (plain field names, or ``count(*)`` [``as name``]: one row
  ``{"count": "N"}`` counting the rows the filters match, ``$limit``/``$offset``/``$order``
  ignored) and simple ``field=value`` equality filters; public. Headers ``X-SODA2-Fields``
  and ``X-SODA2-Types`` list the fields selected and their types. Other SoQL (``$where``,
  ``$q``, ``$group``, ``$query``, ``$having``) answers 400;
- ``POST /resource/{id}.json``: upsert of a JSON array of rows, matched on the row
  identifier; ``":deleted": true`` deletes a row. Answers ``{"By RowIdentifier",
  "Rows Created", "Rows Updated", "Rows Deleted", "By SID", "Errors"}``;
  ``By RowIdentifier`` counts the rows that matched an existing row (updated + deleted);
- ``PUT /resource/{id}.json``: replace all rows (``Rows Created`` = rows stored,
  ``Rows Deleted`` = rows there were before).

Writes need HTTP Basic auth with the API key id and secret (401 otherwise) and the
``X-App-Token`` header (or ``$$app_token`` query parameter) equal to the app token (403
otherwise). Reads are public. A write payload is validated as a whole before anything is
applied; any problem answers 400 ``{"code", "error": true, "message"}`` and changes nothing:
unknown fields (``Illegal field name 'foo' in filter or upsert payload``), a missing row
identifier, and values of the wrong type for their column:

==================  ===================================================================
``text``            a string (numbers are refused, to keep the publisher honest)
``number``,         a JSON number or a numeric string; read back as a string ("3.5")
``money``,
``percent``
``checkbox``        JSON ``true``/``false`` only
``calendar_date``   a floating timestamp: ISO-8601 without offset (``2019-09-11``,
                    ``2019-09-11T00:00:00``, ``...00.000``); a ``Z`` or an offset is
                    refused. Read back as ``YYYY-MM-DDTHH:MM:SS.mmm``
``point``           GeoJSON ``{"type": "Point", "coordinates": [lon, lat]}`` or WKT
                    ``POINT (lon lat)``; read back as GeoJSON
``multipoint``      GeoJSON ``MultiPoint`` or WKT ``MULTIPOINT ((lon lat), ...)``
``location``        ``{"latitude", "longitude", "human_address" (str), "needs_recoding"}``;
                    latitude and longitude are read back as strings
``url``             a string or ``{"url", "description"}``; read back as the object
others              treated as ``text``
==================  ===================================================================

``null`` is always accepted: on upsert it clears the field. Null fields are left out of
the rows a read returns, as Socrata does.

``GET /resource/{id}.csv`` answers the same query as ``.json`` (errors are still JSON) as
``text/csv; charset=utf-8``, written by the ``csv`` module (minimal quoting, lines ending
in a bare newline): a header of the selected field names (all columns in order without
``$select``; ``count`` or the alias for ``count(*)``), then one line per row of the page
(a header only for an empty page). Cells:

==================  ===================================================================
null / missing      an empty cell
``text``, numbers,  as the JSON read shows them (``3.5``, ``2019-09-11T00:00:00.000``)
``calendar_date``
``checkbox``        ``true`` / ``false``
``point``           WKT ``POINT (lon lat)`` (floats as ``repr`` prints them)
``multipoint``      WKT ``MULTIPOINT ((lon lat), (lon lat))``
``location``,       the stored object as compact JSON with sorted keys
``url``             (``{"description":"A","url":"https://..."}``)
==================  ===================================================================

A ``POST``/``PUT`` to ``.csv`` answers 400 (JSON payloads only); ``/api/views/{id}.csv``
is 404.

Faults (:class:`SocrataFaults`, applied to ``/resource`` and ``/api`` requests before
anything else): ``fail_next`` N requests answer ``status``; ``fail_after_writes`` lets that
many more writes through, then fails every write until it is set back to ``None`` (it
counts down as writes pass); ``delay`` sleeps before answering. A delayed write is still
applied after the sleep, even when the client has given up (timed out) meanwhile, like a
real server that finishes a request its client abandoned. ``error_ids``: rows (upserts,
deletes, replace rows) whose row identifier is in the set are not applied and are counted
in ``Errors`` (HTTP 200: a partial failure, as Socrata reports it).

For tests in the same process: :meth:`SocrataEmulator.upsert_rows` and
:meth:`SocrataEmulator.delete_rows` change the rows directly (validated like an upsert,
``rowsUpdatedAt`` updated; no faults, nothing logged), and
:attr:`SocrataEmulator.after_request`, if set, is called with each answered request's
:class:`SocrataRequest` once it is logged and before its answer is sent (e.g. to change a
dataset between a client's pages); an exception in it is logged and ignored.

Control routes for another process: ``GET``/``POST /_emulator/faults`` (JSON merged into
:class:`SocrataFaults`; ``error_ids`` as a list) and ``GET``/``DELETE /_emulator/requests``.

Using it with sodapy 2.2: sodapy builds URLs as ``uri_prefix + domain + path`` where
``uri_prefix`` is the ``session_adapter`` prefix (``"https://"`` without one). So for
``SOCRATA_URL = emulator.url = "http://127.0.0.1:PORT"`` the ``domain`` is the URL without
its scheme, ``"127.0.0.1:PORT"`` (also :attr:`SocrataEmulator.domain`), and::

    Socrata("127.0.0.1:PORT", app_token, username=key_id, password=key_secret, timeout=60,
            session_adapter={"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()})

Run it by hand with ``python -m emulators.socrata --help``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import csv
import datetime as dt
import hmac
import io
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from emulators._http import HTTPEmulator, Response, ServerThread, ServiceFaults

logger = logging.getLogger(__name__)

DEFAULT_APP_TOKEN = "emulator-app-token"
DEFAULT_KEY_ID = "emulator-key-id"
DEFAULT_KEY_SECRET = "emulator-key-secret"
DEFAULT_LIMIT = 1000
DEFAULT_MAX_LIMIT = 50_000  # SODA 2.0's cap on $limit

NUMBER_TYPES = frozenset({"number", "money", "percent", "double"})
KNOWN_TYPES = frozenset(
    {"text", "checkbox", "calendar_date", "point", "multipoint", "location", "url"} | NUMBER_TYPES
)
_IDENTIFIER_TYPES = frozenset({"text"} | NUMBER_TYPES)
_UNSUPPORTED_SOQL = ("$where", "$q", "$group", "$query", "$having", "$search")

_RESOURCE_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_VIEW_PATH = re.compile(r"^/api/views/([^/]+?)(?:\.json)?$")
_RESOURCE_PATH = re.compile(r"^/resource/([^/]+?)(?:\.(json|csv))?$")
_COUNT_ALL = re.compile(r"^count\s*\(\s*\*\s*\)(?:\s+as\s+([a-z_][a-z0-9_]*))?$", re.IGNORECASE)
_NUMBER_TEXT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_FLOATING = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?$"
)
_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_WKT_POINT = re.compile(rf"^\s*POINT\s*\(\s*({_NUM})\s+({_NUM})\s*\)\s*$", re.IGNORECASE)
_WKT_MULTIPOINT = re.compile(r"^\s*MULTIPOINT\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_WKT_PAIR = re.compile(rf"^\s*\(?\s*({_NUM})\s+({_NUM})\s*\)?\s*$")


# --------------------------------------------------------------------------- faults, log


@dataclass
class SocrataFaults(ServiceFaults):
    """Faults applied to ``/resource`` and ``/api`` requests; mutable while the server runs.

    ``error_ids``: rows whose row identifier is in there are not applied and are counted
    in "Errors".
    """

    budget: ClassVar[str | None] = "fail_after_writes"
    # let this many more writes (POST/PUT /resource) succeed, then fail every later write
    # with `status` until set back to None; counts down as writes pass
    fail_after_writes: int | None = None


@dataclass
class SocrataRequest:
    """One request the emulator answered (control routes are not logged)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    time: float  # POSIX seconds when the request arrived
    resource_id: str | None = None
    n_rows: int | None = None  # rows in a write's payload (None for reads, or unparsable)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


_Response = Response


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=headers)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> _Response:
    return _json_response(status, {"code": code, "error": True, "message": message}, headers)


def _shown(value: Any) -> str:
    """A value as an error message quotes it."""
    return value if isinstance(value, str) else json.dumps(value)


def _bad_value(value: Any, kind: str, where: str, why: str = "") -> _ApiError:
    detail = f": {why}" if why else ""
    return _ApiError(
        400, "invalid_value", f"Could not parse '{_shown(value)}' as {kind}{detail} ({where})"
    )


# --------------------------------------------------------------------------- value types


def _number_text(number: Decimal) -> str:
    """Socrata's text for a number: plain notation, no trailing zeros ("3.5", "10")."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _parse_decimal(value: Any) -> Decimal | None:
    """A finite Decimal for a JSON number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _coordinate(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if low <= value <= high else None


def _lon_lat(pair: Any) -> list[float] | None:
    if not isinstance(pair, list) or len(pair) != 2:
        return None
    lon, lat = _coordinate(pair[0], -180, 180), _coordinate(pair[1], -90, 90)
    return None if lon is None or lat is None else [lon, lat]


def _wkt_lon_lat(lon_text: str, lat_text: str) -> list[float] | None:
    return _lon_lat([float(lon_text), float(lat_text)])


def _to_text(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        raise _bad_value(value, "text", where, "a text column takes strings only")
    return value


def _to_number(value: Any, where: str) -> Any:
    number = _parse_decimal(value)
    if number is None:
        raise _bad_value(value, "number", where)
    return _number_text(number)


def _to_checkbox(value: Any, where: str) -> Any:
    if not isinstance(value, bool):
        raise _bad_value(value, "checkbox", where, "use JSON true or false")
    return value


def _to_floating(value: Any, where: str) -> Any:
    match = _FLOATING.match(value) if isinstance(value, str) else None
    if match is None:
        raise _bad_value(
            value, "floating timestamp", where, "use ISO-8601 without an offset or 'Z'"
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        when = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as exc:
        raise _bad_value(value, "floating timestamp", where, str(exc)) from None
    millis = (fraction or "").ljust(3, "0")[:3]
    return f"{when:%Y-%m-%dT%H:%M:%S}.{millis}"


def _to_point(value: Any, where: str) -> Any:
    coords: list[float] | None = None
    if isinstance(value, dict):
        if value.get("type") == "Point":
            coords = _lon_lat(value.get("coordinates"))
    elif isinstance(value, str):
        match = _WKT_POINT.match(value)
        if match:
            coords = _wkt_lon_lat(*match.groups())
    if coords is None:
        raise _bad_value(
            value,
            "point",
            where,
            'use {"type": "Point", "coordinates": [lon, lat]} or "POINT (lon lat)" '
            "with -180 <= lon <= 180 and -90 <= lat <= 90",
        )
    return {"type": "Point", "coordinates": coords}


def _to_multipoint(value: Any, where: str) -> Any:
    parsed: list[list[float] | None] = []
    if isinstance(value, dict):
        raw = value.get("coordinates")
        if value.get("type") == "MultiPoint" and isinstance(raw, list):
            parsed = [_lon_lat(pair) for pair in raw]
    elif isinstance(value, str):
        match = _WKT_MULTIPOINT.match(value)
        if match:
            for part in match.group(1).split(","):
                pair = _WKT_PAIR.match(part)
                parsed.append(_wkt_lon_lat(*pair.groups()) if pair else None)
    points = [p for p in parsed if p is not None]
    if not points or len(points) != len(parsed):
        raise _bad_value(
            value,
            "multipoint",
            where,
            'use {"type": "MultiPoint", "coordinates": [[lon, lat], ...]} '
            'or "MULTIPOINT ((lon lat), ...)"',
        )
    return {"type": "MultiPoint", "coordinates": points}


def _to_location(value: Any, where: str) -> Any:
    why = 'use {"latitude": ..., "longitude": ..., "human_address": "..."}'
    if not isinstance(value, dict):
        raise _bad_value(value, "location", where, why)
    unknown = set(value) - {"latitude", "longitude", "human_address", "needs_recoding"}
    if unknown:
        raise _bad_value(value, "location", where, f"unknown keys {sorted(unknown)}")
    out: dict[str, Any] = {}
    lat, lon = value.get("latitude"), value.get("longitude")
    if (lat is None) != (lon is None):
        raise _bad_value(value, "location", where, "needs both latitude and longitude")
    if lat is not None:
        lat_number, lon_number = _parse_decimal(lat), _parse_decimal(lon)
        if lat_number is None or not -90 <= lat_number <= 90:
            raise _bad_value(value, "location", where, "latitude must be -90..90")
        if lon_number is None or not -180 <= lon_number <= 180:
            raise _bad_value(value, "location", where, "longitude must be -180..180")
        out["latitude"] = _number_text(lat_number)
        out["longitude"] = _number_text(lon_number)
    address = value.get("human_address")
    if address is not None:
        if not isinstance(address, str):
            raise _bad_value(value, "location", where, "human_address must be a string")
        out["human_address"] = address
    recoding = value.get("needs_recoding")
    if recoding is not None:
        if not isinstance(recoding, bool):
            raise _bad_value(value, "location", where, "needs_recoding must be a boolean")
        out["needs_recoding"] = recoding
    if "latitude" not in out and "human_address" not in out:
        raise _bad_value(value, "location", where, why)
    return out


def _to_url(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return {"url": value}
    if isinstance(value, dict) and isinstance(value.get("url"), str):
        unknown = set(value) - {"url", "description"}
        description = value.get("description")
        if not unknown and (description is None or isinstance(description, str)):
            return {k: v for k, v in value.items() if v is not None}
    raise _bad_value(value, "url", where, 'use a string or {"url": ..., "description": ...}')


_CONVERTERS: dict[str, Callable[[Any, str], Any]] = {
    "text": _to_text,
    "checkbox": _to_checkbox,
    "calendar_date": _to_floating,
    "point": _to_point,
    "multipoint": _to_multipoint,
    "location": _to_location,
    "url": _to_url,
    **{name: _to_number for name in NUMBER_TYPES},
}


def _sort_value(data_type: str, value: Any) -> Any:
    """A comparable value of one stored field (never None: see _sort_key)."""
    if data_type in NUMBER_TYPES:
        return Decimal(value)
    if isinstance(value, str | bool):
        return value
    return json.dumps(value, sort_keys=True)


def _wkt_pair(pair: list[float]) -> str:
    return f"{float(pair[0])!r} {float(pair[1])!r}"


def _csv_cell(data_type: str, value: Any) -> str:
    """One stored value as a ``.csv`` read shows it (see the module docstring)."""
    if value is None:
        return ""
    if data_type == "checkbox":
        return "true" if value else "false"
    if data_type == "point":
        return f"POINT ({_wkt_pair(value['coordinates'])})"
    if data_type == "multipoint":
        return "MULTIPOINT (" + ", ".join(f"({_wkt_pair(p)})" for p in value["coordinates"]) + ")"
    if isinstance(value, str):  # text, numbers, floating timestamps
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)  # location, url


def _csv_body(rows: list[dict], fields: list[str], types: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_cell(t, row.get(f)) for f, t in zip(fields, types, strict=True)])
    return out.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- datasets


class _Dataset:
    """One dataset's metadata and rows (guarded by the emulator's lock)."""

    def __init__(
        self,
        resource_id: str,
        columns: list[dict],
        *,
        name: str,
        row_identifier: str,
        first_column_id: int,
    ) -> None:
        if not _RESOURCE_ID.match(resource_id):
            raise ValueError(f"resource id {resource_id!r} is not a Socrata 4x4 like 'abcd-1234'")
        self.id = resource_id
        self.name = name or resource_id
        self.columns: list[dict] = []
        self.types: dict[str, str] = {}
        for position, column in enumerate(columns, start=1):
            field_name = column.get("fieldName")
            if not isinstance(field_name, str) or not _FIELD_NAME.match(field_name):
                raise ValueError(
                    f"column {position} of {resource_id}: fieldName {field_name!r} must be "
                    "lowercase letters, digits and underscores"
                )
            if field_name in self.types:
                raise ValueError(f"column {field_name!r} appears twice in {resource_id}")
            data_type = str(column.get("dataTypeName") or "text")
            if data_type not in KNOWN_TYPES:
                logger.debug("%s.%s: type %r served as text", resource_id, field_name, data_type)
                data_type = "text"
            self.types[field_name] = data_type
            self.columns.append(
                {
                    "id": first_column_id + position - 1,
                    "name": str(column.get("name") or field_name),
                    "fieldName": field_name,
                    "dataTypeName": data_type,
                    "renderTypeName": data_type,
                    "position": position,
                }
            )
        if row_identifier not in self.types:
            raise ValueError(f"row identifier {row_identifier!r} is not a column of {resource_id}")
        if self.types[row_identifier] not in _IDENTIFIER_TYPES:
            raise ValueError(f"row identifier {row_identifier!r} must be a text or number column")
        self.row_identifier = row_identifier
        self.rows: dict[str, dict] = {}
        self.created_at = int(time.time())
        self.rows_updated_at = self.created_at

    def metadata(self) -> dict:
        identifier_id = next(c["id"] for c in self.columns if c["fieldName"] == self.row_identifier)
        return {
            "id": self.id,
            "name": self.name,
            "assetType": "dataset",
            "viewType": "tabular",
            "createdAt": self.created_at,
            "rowsUpdatedAt": self.rows_updated_at,
            "columns": copy.deepcopy(self.columns),
            "rowIdentifierColumnId": identifier_id,
            "metadata": {"rowIdentifier": identifier_id},
        }

    def sort_key(self, field_name: str, descending: bool = False) -> Callable[[dict], Any]:
        """Nulls sort last ascending and first descending (as in SoQL/PostgreSQL)."""
        data_type = self.types[field_name]

        def key(row: dict) -> Any:
            value = row.get(field_name)
            if value is None:
                return (1, 0)  # reversed for DESC: nulls first
            return (0, _sort_value(data_type, value))

        return key

    def ordered(self) -> list[dict]:
        return sorted(self.rows.values(), key=self.sort_key(self.row_identifier))

    # ----------------------------------------------------------------- validation

    def validate(self, payload: Any, *, allow_deletes: bool) -> list[tuple[str, str, dict]]:
        """``[(op, row_id, values)]`` with op "upsert" or "delete", or _ApiError(400).

        ``values`` maps field names to stored representations; None clears a field.
        """
        if not isinstance(payload, list):
            raise _ApiError(400, "invalid_request", "The payload must be a JSON array of rows")
        ops: list[tuple[str, str, dict]] = []
        for index, row in enumerate(payload, start=1):
            if not isinstance(row, dict):
                raise _ApiError(
                    400, "invalid_request", f"Row {index} of the payload is not a JSON object"
                )
            for name in row:
                if name == ":deleted":
                    continue
                if name not in self.types:
                    raise _ApiError(
                        400,
                        "illegal_argument",
                        f"Illegal field name '{name}' in filter or upsert payload",
                    )
            deleted = row.get(":deleted", False)
            if not isinstance(deleted, bool):
                raise _ApiError(
                    400, "invalid_request", f"':deleted' must be true or false (row {index})"
                )
            if deleted and not allow_deletes:
                raise _ApiError(
                    400, "invalid_request", f"A replace cannot delete rows (row {index})"
                )
            if row.get(self.row_identifier) is None:
                raise _ApiError(
                    400,
                    "invalid_request",
                    f"Row {index} has no value for the row identifier '{self.row_identifier}'",
                )
            values: dict[str, Any] = {}
            for name, value in row.items():
                if name == ":deleted" or value is None:
                    if name != ":deleted":
                        values[name] = None
                    continue
                where = f"field '{name}', row {index}"
                values[name] = _CONVERTERS[self.types[name]](value, where)
            row_id = values[self.row_identifier]
            ops.append(("delete" if deleted else "upsert", row_id, values))
        return ops


# --------------------------------------------------------------------------- HTTP server


# --------------------------------------------------------------------------- emulator


class SocrataEmulator(HTTPEmulator):
    """A Socrata SODA 2.x stand-in serving datasets over HTTP on a daemon thread.

    Use as a context manager (``with SocrataEmulator() as socrata: ...``) or call
    :meth:`start` / :meth:`stop`. ``url`` is the ``SOCRATA_URL``; sodapy's ``domain`` is
    :attr:`domain` (see the module docstring).
    """

    def __init__(
        self,
        *,
        app_token: str = DEFAULT_APP_TOKEN,
        key_id: str = DEFAULT_KEY_ID,
        key_secret: str = DEFAULT_KEY_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        max_limit: int = DEFAULT_MAX_LIMIT,
    ) -> None:
        if isinstance(max_limit, bool) or not isinstance(max_limit, int) or max_limit < 1:
            raise ValueError(f"max_limit must be a positive integer, not {max_limit!r}")
        self.app_token = app_token
        self.key_id = key_id
        self.key_secret = key_secret
        self.host = host
        self.port = port
        self.faults = SocrataFaults()
        self.requests: list[SocrataRequest] = []
        # the most rows one GET returns, whatever its $limit asks
        self.max_limit = max_limit
        # called (outside the lock) with each answered, logged request; errors are logged
        self.after_request: Callable[[SocrataRequest], None] | None = None
        self._datasets: dict[str, _Dataset] = {}
        self._next_column_id = 100_000_001
        self._lock = threading.RLock()
        self._http = ServerThread(
            "Socrata emulator",
            self._dispatch,
            lambda: _error(500, "internal_error", "Internal emulator error"),
            host=host,
            port=port,
        )

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The ``SOCRATA_URL``: ``http://127.0.0.1:PORT``."""
        return self._http.url

    @property
    def domain(self) -> str:
        """sodapy's ``domain`` argument: ``127.0.0.1:PORT`` (use an ``http://`` adapter)."""
        return self.url.removeprefix("http://")

    # ----------------------------------------------------------------- data

    def add_dataset(
        self,
        resource_id: str,
        columns: list[dict],
        rows: list[dict] | None = None,
        *,
        name: str = "",
        row_identifier: str = "id",
    ) -> None:
        """(Re)create a dataset; ``rows`` are validated like an upsert (ValueError if bad)."""
        with self._lock:
            dataset = _Dataset(
                resource_id,
                columns,
                name=name,
                row_identifier=row_identifier,
                first_column_id=self._next_column_id,
            )
            self._next_column_id += len(columns)
            try:
                ops = dataset.validate(copy.deepcopy(rows or []), allow_deletes=False)
            except _ApiError as exc:
                raise ValueError(exc.message) from None
            for _, row_id, values in ops:
                self._upsert(dataset, row_id, values)
            self._datasets[resource_id] = dataset

    @property
    def dataset_ids(self) -> list[str]:
        with self._lock:
            return list(self._datasets)

    def _dataset(self, resource_id: str) -> _Dataset:
        try:
            return self._datasets[resource_id]
        except KeyError:
            raise KeyError(f"no dataset {resource_id!r} is served") from None

    def rows(self, resource_id: str) -> list[dict]:
        """Stored rows (deep copies) in row-identifier order, as ``GET /resource`` shows them."""
        with self._lock:
            return copy.deepcopy(self._dataset(resource_id).ordered())

    def metadata(self, resource_id: str) -> dict:
        with self._lock:
            return self._dataset(resource_id).metadata()

    def upsert_rows(self, resource_id: str, rows: list[dict]) -> dict[str, int]:
        """Upsert ``rows`` as ``POST /resource/{id}.json`` would (``":deleted": true``
        deletes), without HTTP: no faults, nothing logged. Answers the same counts; bad rows
        raise ValueError and change nothing."""
        with self._lock:
            dataset = self._dataset(resource_id)
            try:
                return self._write(dataset, copy.deepcopy(rows), replace=False, error_ids=())
            except _ApiError as exc:
                raise ValueError(exc.message) from None

    def delete_rows(self, resource_id: str, ids: list[str]) -> int:
        """Delete the rows with these row identifiers (as :meth:`upsert_rows` does); answers
        how many there were."""
        with self._lock:
            identifier = self._dataset(resource_id).row_identifier
            payload = [{identifier: row_id, ":deleted": True} for row_id in ids]
            return self.upsert_rows(resource_id, payload)["Rows Deleted"]

    # ----------------------------------------------------------------- HTTP

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Response:
        arrived = time.time()
        parts = urlsplit(raw_path)
        path = unquote(parts.path).rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return self._control(method, path, body)
        if not (path.startswith("/resource/") or path.startswith("/api/")):
            return _error(404, "not_found", f"Not found: {path}")

        match = _RESOURCE_PATH.match(path) or _VIEW_PATH.match(path)
        resource_id = match.group(1) if match else None
        is_write = bool(_RESOURCE_PATH.match(path)) and method in ("POST", "PUT")
        n_rows: int | None = None
        if is_write:
            with contextlib.suppress(ValueError):
                parsed = json.loads(body or b"null")
                n_rows = len(parsed) if isinstance(parsed, list) else None

        response = self._answer(method, path, query, headers, body, is_write)
        entry = SocrataRequest(
            method=method,
            path=path,
            query=query,
            status=response.status,
            time=arrived,
            resource_id=resource_id,
            n_rows=n_rows,
        )
        with self._lock:
            self.requests.append(entry)
        hook = self.after_request
        if hook is not None:
            try:
                hook(entry)
            except Exception:
                logger.exception("after_request hook failed on %s %s", method, path)
        return response

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        body: bytes,
        is_write: bool,
    ) -> _Response:
        faults = self.faults
        if faults.delay > 0:
            time.sleep(faults.delay)
        with self._lock:
            faults = self.faults
            if faults.take(is_write):
                return self._fault_response(faults.status)
        try:
            return self._route(method, path, query, headers, body)
        except _ApiError as exc:
            return _error(exc.status, exc.code, exc.message)

    @staticmethod
    def _fault_response(status: int) -> _Response:
        messages = {
            429: "Too many requests",
            500: "Internal error",
            502: "Bad gateway",
            503: "Service unavailable",
            504: "Gateway timeout",
        }
        message = messages.get(status, "Internal error" if status >= 500 else "Request failed")
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        return _json_response(
            status,
            {"code": "emulated_fault", "error": True, "message": f"{message} (emulated fault)"},
            headers,
        )

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> _Response:
        view_match = _VIEW_PATH.match(path)
        if view_match:
            if method != "GET":
                raise _ApiError(405, "method_not_allowed", f"The emulator only reads {path}")
            with self._lock:
                dataset = self._datasets.get(view_match.group(1))
                if dataset is None:
                    raise _ApiError(
                        404, "not_found", f"Cannot find view with id {view_match.group(1)}"
                    )
                return _json_response(200, dataset.metadata())

        resource_match = _RESOURCE_PATH.match(path)
        if not resource_match:
            raise _ApiError(404, "not_found", f"Not found: {path}")
        resource_id, suffix = resource_match.groups()
        if method in ("POST", "PUT"):
            self._authorize(headers, query)
            with self._lock:
                dataset = self._lookup(resource_id)
                if suffix == "csv":
                    raise _ApiError(400, "invalid_request", "The emulator takes JSON payloads only")
                payload = self._payload(headers, body)
                counts = self._write(dataset, payload, replace=method == "PUT")
            return _json_response(200, counts)
        if method != "GET":
            raise _ApiError(405, "method_not_allowed", f"The emulator does not answer {method}")
        with self._lock:
            dataset = self._lookup(resource_id)
            rows, selected, types = self._query(dataset, query)
        headers_out = {"X-SODA2-Fields": json.dumps(selected), "X-SODA2-Types": json.dumps(types)}
        if suffix == "csv":
            body_out = _csv_body(rows, selected, types)
            return _Response(200, body_out, "text/csv; charset=utf-8", headers_out)
        return _json_response(200, rows, headers_out)

    def _lookup(self, resource_id: str) -> _Dataset:
        dataset = self._datasets.get(resource_id)
        if dataset is None:
            raise _ApiError(404, "not_found", f"Cannot find view with id {resource_id}")
        return dataset

    def _authorize(self, headers: Any, query: dict[str, str]) -> None:
        auth = headers.get("Authorization") or ""
        user = password = None
        if auth[:6].lower() == "basic ":
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        if not (
            user is not None
            and password is not None
            and hmac.compare_digest(user.encode(), self.key_id.encode())
            and hmac.compare_digest(password.encode(), self.key_secret.encode())
        ):
            raise _ApiError(
                401,
                "authentication_required",
                "Writing requires HTTP Basic authentication with a valid API key id and secret",
            )
        token = headers.get("X-App-Token") or query.get("$$app_token") or ""
        if not hmac.compare_digest(token.encode(), self.app_token.encode()):
            raise _ApiError(403, "permission_denied", "Invalid or missing app token (X-App-Token)")

    @staticmethod
    def _payload(headers: Any, body: bytes) -> Any:
        content_type = (headers.get("Content-Type") or "").lower()
        if content_type.startswith("text/csv"):
            raise _ApiError(400, "invalid_request", "The emulator takes JSON payloads only")
        try:
            return json.loads(body or b"")
        except (ValueError, UnicodeDecodeError):
            raise _ApiError(400, "invalid_request", "The payload is not valid JSON") from None

    def _write(
        self,
        dataset: _Dataset,
        payload: Any,
        *,
        replace: bool,
        error_ids: Collection[str] | None = None,
    ) -> dict[str, int]:
        """Validate everything, then apply; call with the lock held. ``error_ids``: the
        rows that fail (default: the faults')."""
        ops = dataset.validate(payload, allow_deletes=not replace)
        error_ids = set(self.faults.error_ids if error_ids is None else error_ids)
        created = updated = deleted = errors = 0
        if replace:
            previous = len(dataset.rows)
            dataset.rows = {}
            for _, row_id, values in ops:
                if row_id in error_ids:
                    errors += 1
                else:
                    self._upsert(dataset, row_id, values)
            created, deleted = len(dataset.rows), previous
        else:
            for op, row_id, values in ops:
                if row_id in error_ids:
                    errors += 1
                elif op == "delete":
                    if dataset.rows.pop(row_id, None) is not None:
                        deleted += 1
                elif self._upsert(dataset, row_id, values):
                    created += 1
                else:
                    updated += 1
        dataset.rows_updated_at = int(time.time())
        return {
            "By RowIdentifier": 0 if replace else updated + deleted,
            "Rows Created": created,
            "Rows Updated": updated,
            "Rows Deleted": deleted,
            "By SID": 0,
            "Errors": errors,
        }

    @staticmethod
    def _upsert(dataset: _Dataset, row_id: str, values: dict) -> bool:
        """Merge ``values`` into the row (None clears a field); True when it was created."""
        row = dataset.rows.get(row_id)
        created = row is None
        row = {} if row is None else row
        for name, value in values.items():
            if value is None:
                row.pop(name, None)
            else:
                row[name] = copy.deepcopy(value)
        dataset.rows[row_id] = {f: row[f] for f in dataset.types if f in row}  # column order
        return created

    def _query(
        self, dataset: _Dataset, query: dict[str, str]
    ) -> tuple[list[dict], list[str], list[str]]:
        """Rows for a GET, the fields selected and their types; call with the lock held."""
        for name in _UNSUPPORTED_SOQL:
            if name in query:
                raise _ApiError(
                    400, "query.emulator.unsupported", f"The emulator does not support {name}"
                )
        select = query.get("$select", "").strip()
        rows = list(dataset.rows.values())
        for name, wanted in query.items():
            if name.startswith("$"):
                continue
            _check_column(dataset, name)
            rows = [row for row in rows if _equals(dataset.types[name], row.get(name), wanted)]

        count = _COUNT_ALL.match(select)
        if count:  # one row; $limit, $offset and $order do not apply
            alias = count.group(1) or "count"
            return [{alias: str(len(rows))}], [alias], ["number"]

        limit = min(_non_negative(query, "$limit", DEFAULT_LIMIT), self.max_limit)
        offset = _non_negative(query, "$offset", 0)
        selected = [c["fieldName"] for c in dataset.columns]
        if select and select != "*":
            selected = [part.strip() for part in select.split(",")]
            for name in selected:
                _check_column(dataset, name)

        rows.sort(key=dataset.sort_key(dataset.row_identifier))
        order = query.get("$order", "").strip()
        if order:
            keys: list[tuple[str, bool]] = []
            for part in order.split(","):
                words = part.split()
                if (
                    not words
                    or len(words) > 2
                    or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC"))
                ):
                    raise _ApiError(400, "query.soql.invalid-order", f"Invalid $order: {order!r}")
                name = dataset.row_identifier if words[0] == ":id" else words[0]
                _check_column(dataset, name)
                keys.append((name, len(words) == 2 and words[1].upper() == "DESC"))
            for name, descending in reversed(keys):  # stable sorts, last key first
                rows.sort(key=dataset.sort_key(name), reverse=descending)

        page = rows[offset : offset + limit]
        if select and select != "*":
            page = [{k: row[k] for k in selected if k in row} for row in page]
        return copy.deepcopy(page), selected, [dataset.types[f] for f in selected]

    _CONTROL_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}

    def _control_error(self, status: int, message: str) -> _Response:
        return _error(status, self._CONTROL_CODES.get(status, "error"), message)

    def _control_extra(self, method: str, path: str) -> _Response | None:
        if path == "/_emulator/datasets" and method == "GET":
            return _json_response(200, self.dataset_ids)
        return None


def _non_negative(query: dict[str, str], name: str, default: int) -> int:
    text = query.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise _ApiError(
            400, "query.soql.type-mismatch", f"Invalid {name}: {text!r} is not a whole number"
        )
    return int(text)


def _check_column(dataset: _Dataset, name: str) -> None:
    if name not in dataset.types:
        raise _ApiError(400, "query.soql.no-such-column", f"No such column: {name}")


def _equals(data_type: str, stored: Any, wanted: str) -> bool:
    if stored is None:
        return False
    if data_type in NUMBER_TYPES:
        number = _parse_decimal(wanted)
        return number is not None and Decimal(stored) == number
    if data_type == "checkbox":
        return str(stored).lower() == wanted.strip().lower()
    if data_type == "calendar_date":
        with contextlib.suppress(_ApiError):
            return stored == _to_floating(wanted.strip(), "filter")
        return False
    if isinstance(stored, str):
        return stored == wanted
    raise _ApiError(
        400, "query.emulator.unsupported", f"The emulator cannot filter {data_type} columns"
    )


# --------------------------------------------------------------------------- example data

EXAMPLE_RESOURCE_ID = "p53x-x73x"
EXAMPLE_COLUMNS: list[dict] = [
    {"fieldName": "id", "dataTypeName": "text", "name": "ID"},
    {"fieldName": "signal_id", "dataTypeName": "number", "name": "Signal ID"},
    {"fieldName": "location_name", "dataTypeName": "text", "name": "Location Name"},
    {"fieldName": "location", "dataTypeName": "point", "name": "Location"},
    {"fieldName": "signal_status", "dataTypeName": "text", "name": "Signal Status"},
    {"fieldName": "modified_date", "dataTypeName": "calendar_date", "name": "Modified Date"},
    {"fieldName": "is_flashing", "dataTypeName": "checkbox", "name": "Is Flashing"},
    {"fieldName": "cabinet_count", "dataTypeName": "number", "name": "Cabinet Count"},
    {"fieldName": "notes", "dataTypeName": "text", "name": "Notes"},
]
EXAMPLE_ROWS: list[dict] = [
    {
        "id": "5d7964fbb5a7d9001645a3f1",
        "signal_id": 1,
        "location_name": "CONGRESS AVE / 6TH ST",
        "location": {"type": "Point", "coordinates": [-97.7424, 30.2686]},
        "signal_status": "TURNED_ON",
        "modified_date": "2026-03-02T09:15:00",
        "is_flashing": False,
        "cabinet_count": 1,
        "notes": "Cabinet inspected.",
    },
    {
        "id": "5d7964fbb5a7d9001645a3f2",
        "signal_id": 2,
        "location_name": "LAMAR BLVD / 38TH ST",
        "location": {"type": "Point", "coordinates": [-97.7502, 30.3071]},
        "signal_status": "DESIGN",
        "modified_date": "2026-03-05T16:40:00",
        "is_flashing": True,
        "cabinet_count": 2,
    },
]


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.socrata",
        description="Serve a local Socrata (SODA 2.x) stand-in with an example dataset.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--app-token", default=DEFAULT_APP_TOKEN)
    parser.add_argument("--key-id", default=DEFAULT_KEY_ID)
    parser.add_argument("--key-secret", default=DEFAULT_KEY_SECRET)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    emulator = SocrataEmulator(
        app_token=args.app_token,
        key_id=args.key_id,
        key_secret=args.key_secret,
        host=args.host,
        port=args.port,
    )
    emulator.add_dataset(
        EXAMPLE_RESOURCE_ID, EXAMPLE_COLUMNS, EXAMPLE_ROWS, name="Traffic Signals (example)"
    )
    emulator.start()
    print(f"SOCRATA_URL={emulator.url}", flush=True)
    print(f"SOCRATA_APP_TOKEN={emulator.app_token}", flush=True)
    print(f"SOCRATA_API_KEY_ID={emulator.key_id}", flush=True)
    print(f"SOCRATA_API_KEY_SECRET={emulator.key_secret}", flush=True)
    print(f"dataset {EXAMPLE_RESOURCE_ID} ({len(EXAMPLE_ROWS)} rows)", flush=True)
    emulator.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
