"""A local stand-in for the Knack REST API (``https://api.knack.com/v1``).

It serves, on 127.0.0.1, the read routes the product uses:

- ``GET /v1/applications/{app_id}``: the app's metadata (no auth);
- ``GET /v1/objects/{object_key}/records``: needs ``X-Knack-Application-Id`` and the
  app's ``X-Knack-REST-API-KEY``;
- ``GET /v1/pages/{scene_key}/views/{view_key}/records``: public, any key is accepted;
- ``GET .../records/{record_id}`` on both: one record, 404 for an id it does not hold;

with Knack's paging (``page``, ``rows_per_page`` capped at 1000), ``filters`` (date rules
compare the calendar date in the app's timezone), the 10-requests-per-second rate limit
(HTTP 429 with ``Retry-After``) and injectable faults (503s, delays, an overstated
``total_records``, a broken metadata body, a record deleted while a listing is paged, an
empty page before the last one, the same page for every page number after one).

Writes (``emulators.knack_writes``): ``POST /v1/objects/{object}/records`` creates a record,
``PUT .../records/{id}`` updates one, ``DELETE .../records/{id}`` deletes one, each with the
app's REST API key, values checked by field type (400 with Knack's error body), under the
same rate limit and faults (``apply_then_fail``: a write applied whose answer is lost). An
app may have its own key (``add_app(..., api_key=...)``).

Control routes for another process: ``GET``/``POST /_emulator/faults`` (JSON merged into
:class:`Faults`) and ``GET``/``DELETE /_emulator/requests`` (the request log).

Run it by hand with ``python -m emulators.knack --help``.
"""

from __future__ import annotations

import argparse
import calendar
import copy
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from knackpy.models import TIMEZONES

from emulators import knack_writes
from emulators._http import HTTPEmulator, Response, ServerThread

logger = logging.getLogger(__name__)

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "knackpy"
DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_ROWS_PER_PAGE = 25
MAX_ROWS_PER_PAGE = 1000
RATE_WINDOW_SECONDS = 1.0

# knackpy's table has two misspelled IANA names.
_IANA_FIXES = {"America/Sao_Paul": "America/Sao_Paulo", "Europe/Istanbu": "Europe/Istanbul"}
_DATE_OPERATORS = {"is", "is not", "is before", "is after", "is blank", "is not blank"}
_TEXT_OPERATORS = {
    "is",
    "is not",
    "contains",
    "does not contain",
    "starts with",
    "ends with",
    "is blank",
    "is not blank",
    "higher than",
    "lower than",
}
_OBJECT_RECORDS = re.compile(r"^/v1/objects/([^/]+)/records(?:/([^/]+))?$")
_VIEW_RECORDS = re.compile(r"^/v1/pages/([^/]+)/views/([^/]+)/records(?:/([^/]+))?$")
_APPLICATION = re.compile(r"^/v1/applications/([^/]+)$")


# --------------------------------------------------------------------------- faults, log


@dataclass
class Faults:
    """Faults the server applies to ``/v1`` requests; mutable while the server runs."""

    fail_every: int = 0  # answer every Nth /v1 request (1-based, counted since set) with `status`
    fail_next: int = 0  # answer the next N /v1 requests with `status` (decrements)
    status: int = 503
    message: str | None = None  # the error message of those answers (default: the status's)
    retry_after: float = 1.0  # their Retry-After in seconds (429, 503); tests may ask for less
    # only the /v1 requests whose path holds this fail (and are counted by fail_every and
    # fail_next), e.g. "/views/view_6/" for one container; None: every /v1 request
    fail_path: str | None = None
    delay: float = 0.0  # seconds to sleep before answering each /v1 request
    overstate_total_records: int = 0  # added to total_records (total_pages follows)
    metadata_body: str | None = None  # raw 200 body (text/html) for GET /v1/applications/{id}
    # Knack's offset paging has no snapshot: a record deleted while pages are fetched shifts
    # the later pages. After page `delete_after_page` of a listing is served (once), the
    # record `delete_record` (default: the first record of that page) is deleted.
    delete_after_page: int = 0
    delete_record: str | None = None
    # Knack has answered 200 with `records: []` before the last page: page `empty_page` of a
    # listing is answered so `empty_page_times` times (decrements), total_pages unchanged.
    empty_page: int = 0
    empty_page_times: int = 1
    # Knack has answered the same records for every page number: page `repeat_page` and
    # every page after it are answered with page `repeat_page`'s records (0: off).
    repeat_page: int = 0
    # A write Knack applied whose answer was lost: the next N writes (POST, PUT, DELETE)
    # are applied, then answered with `status` (decrements).
    apply_then_fail: int = 0

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "fail_every":  # the count restarts whenever fail_every is (re)set
            object.__setattr__(self, "_fail_every_seen", 0)

    def update(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` (field name -> value) after checking names and types."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {sorted(known)}")
            if name in ("metadata_body", "delete_record", "message", "fail_path"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string or null")
            elif name in ("delay", "retry_after"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a non-negative number")
                value = float(value)
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        for name, value in changes.items():
            setattr(self, name, float(value) if name in ("delay", "retry_after") else value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _take_failure(self, path: str = "") -> bool:
        """Count one /v1 request; True when it must be answered with ``status``."""
        if self.fail_path is not None and self.fail_path not in path:
            return False
        fail = False
        if self.fail_next > 0:
            self.fail_next -= 1
            fail = True
        if self.fail_every > 0:
            seen = getattr(self, "_fail_every_seen", 0) + 1
            object.__setattr__(self, "_fail_every_seen", seen)
            if seen % self.fail_every == 0:
                fail = True
        return fail


@dataclass
class RequestRecord:
    """One request the emulator answered (control routes are not logged)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    app_id: str | None
    time: float  # POSIX seconds when the request arrived
    api_key: str | None = None  # the X-Knack-REST-API-KEY header, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_Response = Response


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=headers)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Response:
    return _json_response(status, {"errors": [{"message": message}]}, headers)


# --------------------------------------------------------------------------- time helpers


def app_timezone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a Knack timezone display name (or an IANA name)."""
    for entry in TIMEZONES:
        if entry["common_name"] == name:
            iana = _IANA_FIXES.get(entry["iana_name"], entry["iana_name"])
            return ZoneInfo(iana)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown Knack timezone %r; using UTC", name)
        return ZoneInfo("UTC")


def knack_date_time(local: dt.datetime, field_format: dict | None = None) -> tuple[str, dict]:
    """Knack's ``(field_N, field_N_raw)`` for a local wall time (minute precision).

    ``unix_timestamp`` and ``iso_timestamp`` are the local wall time written as if it
    were UTC, as Knack does.
    """
    wall = local.replace(tzinfo=None, second=0, microsecond=0)
    fmt = field_format or {}
    hour12 = wall.hour % 12 or 12
    am_pm = "AM" if wall.hour < 12 else "PM"
    date = wall.strftime("%m/%d/%Y")
    date_formatted = wall.strftime("%d/%m/%Y") if fmt.get("date_format") == "dd/mm/yyyy" else date
    raw = {
        "date": date,
        "date_formatted": date_formatted,
        "hours": f"{hour12:02d}",
        "minutes": f"{wall.minute:02d}",
        "am_pm": am_pm,
        "unix_timestamp": calendar.timegm(wall.timetuple()) * 1000,
        "iso_timestamp": wall.strftime("%Y-%m-%dT%H:%M:00.000Z"),
        "timestamp": f"{date} {hour12:02d}:{wall.minute:02d} {am_pm.lower()}",
        # Knack's own arithmetic: 12:xx AM counts as 720 + xx, like the fixture's midnight.
        "time": hour12 * 60 + wall.minute + (720 if am_pm == "PM" and hour12 != 12 else 0),
    }
    time_format = fmt.get("time_format", "HH:MM am")
    if time_format == "Ignore Time":
        time_text = ""
    elif "military" in str(time_format):
        time_text = f"{wall.hour:02d}:{wall.minute:02d}"
    else:
        time_text = f"{hour12}:{wall.minute:02d}{am_pm.lower()}"
    if fmt.get("date_format") == "Ignore Date":
        formatted = time_text
    else:
        formatted = f"{date_formatted} {time_text}".strip()
    return formatted, raw


def _parse_filter_date(value: Any) -> dt.date:
    if isinstance(value, dict):
        value = value.get("date")
    if isinstance(value, str):
        text = value.strip()
        for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
            try:
                return dt.datetime.strptime(text, pattern).date()
            except ValueError:
                pass
    raise _ApiError(400, f"Invalid date filter value {value!r}: use MM/DD/YYYY or YYYY-MM-DD")


def _record_date(raw: Any) -> dt.date | None:
    """The calendar date (already in the app's timezone) of a date_time raw value."""
    if not isinstance(raw, dict) or not raw.get("date"):
        return None
    try:
        return dt.datetime.strptime(str(raw["date"]), "%m/%d/%Y").date()
    except ValueError:
        return None


# --------------------------------------------------------------------------- filters

_Predicate = Callable[[dict], bool]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _date_rule(key: str, operator: str, value: Any) -> _Predicate:
    raw_key = f"{key}_raw"
    if operator in ("is blank", "is not blank"):
        blank = operator == "is blank"
        return lambda rec: (_record_date(rec.get(raw_key)) is None) == blank
    target = _parse_filter_date(value)
    compare: Callable[[dt.date], bool] = {
        "is": lambda d: d == target,
        "is not": lambda d: d != target,
        "is before": lambda d: d < target,
        "is after": lambda d: d > target,
    }[operator]

    def predicate(rec: dict) -> bool:
        day = _record_date(rec.get(raw_key))
        return day is not None and compare(day)  # empty values never match

    return predicate


def _text_rule(key: str, field_type: str, operator: str, value: Any) -> _Predicate:
    if field_type == "boolean" and (
        isinstance(value, bool) or str(value).strip().lower() in ("true", "false")
    ):
        value = "Yes" if value is True or str(value).strip().lower() == "true" else "No"
    wanted = _as_text(value).strip().lower()

    def text(rec: dict) -> str:
        return _as_text(rec.get(key)).strip().lower()

    if operator in ("higher than", "lower than"):
        limit = _as_number(value)
        if limit is None:
            raise _ApiError(400, f"Invalid number {value!r} for operator {operator!r}")
        sign = 1 if operator == "higher than" else -1

        def numeric(rec: dict) -> bool:
            number = _as_number(rec.get(f"{key}_raw", rec.get(key)))
            return number is not None and sign * (number - limit) > 0

        return numeric
    checks: dict[str, _Predicate] = {
        "is": lambda rec: text(rec) == wanted,
        "is not": lambda rec: text(rec) != wanted,
        "contains": lambda rec: wanted in text(rec),
        "does not contain": lambda rec: wanted not in text(rec),
        "starts with": lambda rec: text(rec).startswith(wanted),
        "ends with": lambda rec: text(rec).endswith(wanted),
        "is blank": lambda rec: text(rec) == "",
        "is not blank": lambda rec: text(rec) != "",
    }
    return checks[operator]


def _build_filter(text: str, field_types: dict[str, str]) -> _Predicate:
    """A predicate for Knack's ``filters`` query parameter (JSON), or _ApiError(400)."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _ApiError(400, f"Invalid filters: not JSON ({exc})") from exc
    if isinstance(spec, list):
        match, rules = "and", spec
    elif isinstance(spec, dict):
        match, rules = spec.get("match", "and"), spec.get("rules", [])
    else:
        raise _ApiError(400, "Invalid filters: expected an object with match and rules")
    if not isinstance(match, str) or match.lower() not in ("and", "or"):
        raise _ApiError(400, f"Invalid filters: match must be 'and' or 'or', not {match!r}")
    if not isinstance(rules, list):
        raise _ApiError(400, "Invalid filters: rules must be a list")
    predicates: list[_Predicate] = []
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("field"), str):
            raise _ApiError(400, f"Invalid filter rule {rule!r}: needs field and operator")
        key = rule["field"]
        operator = str(rule.get("operator", "")).strip().lower()
        if key not in field_types:
            raise _ApiError(400, f"Invalid filter rule: unknown field {key!r}")
        if field_types[key] == "date_time":
            if operator not in _DATE_OPERATORS:
                raise _ApiError(400, f"Invalid filter operator {operator!r} for a date field")
            predicates.append(_date_rule(key, operator, rule.get("value")))
        else:
            if operator not in _TEXT_OPERATORS:
                raise _ApiError(400, f"Invalid filter operator {operator!r}")
            predicates.append(_text_rule(key, field_types[key], operator, rule.get("value")))
    if not predicates:
        return lambda rec: True
    if match.lower() == "or":
        return lambda rec: any(p(rec) for p in predicates)
    return lambda rec: all(p(rec) for p in predicates)


# --------------------------------------------------------------------------- served apps


class _ServedApp:
    """One application's metadata and records (guarded by the emulator's lock)."""

    def __init__(self, metadata: dict, records: dict[str, list[dict]]) -> None:
        self.id: str = metadata["id"]
        self.set_metadata(metadata)
        self.records: dict[str, dict[str, dict]] = {key: {} for key in self.fields}
        self.next_number: dict[str, int] = {}  # object key -> its last auto increment
        for object_key, rows in records.items():
            if object_key not in self.fields:
                raise ValueError(f"app {self.id} has no object {object_key!r}")
            for row in rows:
                self.records[object_key][row["id"]] = copy.deepcopy(row)
        self.hits: deque[float] = deque()

    def set_metadata(self, metadata: dict) -> None:
        """Serve ``metadata`` (the app's schema as changed in Knack's builder)."""
        self.metadata = metadata
        self.metadata_body = json.dumps({"application": metadata}).encode()
        self.tz = app_timezone(metadata.get("settings", {}).get("timezone", "UTC"))
        self.fields: dict[str, dict[str, dict]] = {}
        self.identifiers: dict[str, str | None] = {}
        for obj in metadata.get("objects", []):
            self.fields[obj["key"]] = {f["key"]: f for f in obj.get("fields", [])}
            self.identifiers[obj["key"]] = obj.get("identifier")
        self.views: dict[str, tuple[str, str | None]] = {}
        for scene in metadata.get("scenes", []):
            for view in scene.get("views", []):
                source = view.get("source") or {}
                self.views[view["key"]] = (scene["key"], source.get("object"))

    def object_records(self, object_key: str) -> dict[str, dict]:
        try:
            return self.records[object_key]
        except KeyError:
            raise KeyError(f"app {self.id} has no object {object_key!r}") from None


# --------------------------------------------------------------------------- emulator


class KnackEmulator(HTTPEmulator):
    """A Knack REST API stand-in serving one or more apps over HTTP on a daemon thread.

    Use as a context manager (``with KnackEmulator() as knack: ...``) or call
    :meth:`start` / :meth:`stop`. ``url`` is the ``KNACK_API_URL`` (ends in ``/v1``).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        rate_limit: int | None = 10,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.api_keys: dict[str, str] = {}  # app id -> its own REST API key (else api_key)
        self.rate_limit = rate_limit
        # Knack's own cap on rows_per_page; a test may lower it to page a small app in
        # several pages (what a 1000-row page shows, a 100-row page shows with 10x fewer)
        self.max_rows_per_page = MAX_ROWS_PER_PAGE
        self.host = host
        self.port = port
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self._apps: dict[str, _ServedApp] = {}
        self._lock = threading.RLock()
        self._http = ServerThread(
            "Knack emulator",
            self._dispatch,
            lambda: _error(500, "Internal emulator error"),
            host=host,
            port=port,
        )
        self._id_counter = random.SystemRandom().randrange(1 << 24)
        self._id_random = os.urandom(5).hex()

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return self._http.url + "/v1"

    # ----------------------------------------------------------------- data

    def add_app(
        self,
        metadata: dict,
        records: dict[str, list[dict]] | None = None,
        *,
        api_key: str | None = None,
    ) -> str:
        """Serve an app; ``metadata`` is ``{"application": {...}}`` or the inner dict;
        ``api_key``: the app's own REST API key (default: the emulator's ``api_key``)."""
        inner = metadata.get("application", metadata)
        app = _ServedApp(copy.deepcopy(inner), records or {})
        with self._lock:
            self._apps[app.id] = app
            if api_key is not None:
                self.api_keys[app.id] = api_key
            else:
                self.api_keys.pop(app.id, None)
        return app.id

    @property
    def app_ids(self) -> list[str]:
        with self._lock:
            return list(self._apps)

    def _app(self, app_id: str) -> _ServedApp:
        try:
            return self._apps[app_id]
        except KeyError:
            raise KeyError(f"no app {app_id!r} is served") from None

    def records(self, app_id: str, object_key: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._app(app_id).object_records(object_key).values()))

    def put_record(
        self, app_id: str, object_key: str, record: dict, *, slot: str | None = None
    ) -> None:
        """Add or replace a record by its id. ``slot`` stores a malformed record (one with no
        usable id, which real Knack should never send) under that name, to test clients."""
        rid = slot if slot is not None else record.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError("a record needs a string 'id' (or a slot for a malformed one)")
        with self._lock:
            self._app(app_id).object_records(object_key)[rid] = copy.deepcopy(record)

    def delete_record(self, app_id: str, object_key: str, record_id: str) -> None:
        with self._lock:
            rows = self._app(app_id).object_records(object_key)
            if record_id not in rows:
                raise KeyError(f"no record {record_id!r} in {object_key}")
            del rows[record_id]

    def touch(
        self, app_id: str, object_key: str, record_id: str, *, field: str, when: dt.datetime
    ) -> None:
        """Set date_time ``field`` of a record to ``when`` (aware), as Knack would show it."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("touch() needs an aware datetime")
        with self._lock:
            app = self._app(app_id)
            rows = app.object_records(object_key)
            if record_id not in rows:
                raise KeyError(f"no record {record_id!r} in {object_key}")
            field_def = app.fields[object_key].get(field)
            if field_def is None or field_def.get("type") != "date_time":
                raise ValueError(f"{field!r} is not a date_time field of {object_key}")
            formatted, raw = knack_date_time(when.astimezone(app.tz), field_def.get("format"))
            rows[record_id][field] = formatted
            rows[record_id][f"{field}_raw"] = raw

    def rename_field(self, app_id: str, object_key: str, field_key: str, label: str) -> None:
        """Give a field a new label, as Knack's builder does (records keep their values)."""
        with self._lock:
            app = self._app(app_id)
            metadata = copy.deepcopy(app.metadata)
            self._field_def(metadata, object_key, field_key)["name"] = label
            app.set_metadata(metadata)

    def remove_field(self, app_id: str, object_key: str, field_key: str) -> None:
        """Delete a field, as Knack's builder does: from the object, from the views that
        show it, and its values from every record."""
        with self._lock:
            app = self._app(app_id)
            metadata = copy.deepcopy(app.metadata)
            obj = next(o for o in metadata["objects"] if o["key"] == object_key)
            obj["fields"].remove(self._field_def(metadata, object_key, field_key))
            for scene in metadata.get("scenes", []):
                for view in scene.get("views", []):
                    view["columns"] = [
                        c
                        for c in view.get("columns") or []
                        if (c.get("field") or {}).get("key") != field_key
                    ]
            app.set_metadata(metadata)
            for record in app.object_records(object_key).values():
                record.pop(field_key, None)
                record.pop(f"{field_key}_raw", None)

    @staticmethod
    def _field_def(metadata: dict, object_key: str, field_key: str) -> dict:
        for obj in metadata.get("objects", []):
            if obj["key"] == object_key:
                for f in obj.get("fields", []):
                    if f["key"] == field_key:
                        return f
        raise KeyError(f"no field {field_key!r} in {object_key}")

    def new_record_id(self) -> str:
        """A fresh 24-hex id shaped like Knack's (MongoDB ObjectId)."""
        with self._lock:
            self._id_counter = (self._id_counter + 1) % (1 << 24)
            counter = self._id_counter
        return f"{int(time.time()) & 0xFFFFFFFF:08x}{self._id_random}{counter:06x}"

    # ----------------------------------------------------------------- HTTP

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Response:
        arrived = time.time()
        parts = urlsplit(raw_path)
        path = unquote(parts.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path.startswith("/_emulator/") or path == "/_emulator":
            return self._control(method, path, body)

        app_match = _APPLICATION.match(path)
        app_id = app_match.group(1) if app_match else headers.get("X-Knack-Application-Id")
        response = self._answer_v1(method, path, query, headers, app_id, body)
        with self._lock:
            self.requests.append(
                RequestRecord(
                    method=method,
                    path=path,
                    query=query,
                    status=response.status,
                    app_id=app_id,
                    time=arrived,
                    api_key=headers.get("X-Knack-REST-API-KEY"),
                )
            )
        return response

    def _answer_v1(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        app_id: str | None,
        body: bytes = b"",
    ) -> _Response:
        if not (path == "/v1" or path.startswith("/v1/")):
            return _error(404, f"Not found: {path}")
        faults = self.faults
        if faults.delay > 0:
            time.sleep(faults.delay)
        rate_headers: dict[str, str] = {}
        with self._lock:
            if faults._take_failure(path):
                return self._fault_response(faults.status, faults.message, faults.retry_after)
            app = self._apps.get(app_id) if app_id else None
            if app is not None and self.rate_limit is not None:
                limited, rate_headers = self._rate_check(app)
                if limited:
                    return _error(429, "Rate limit exceeded", rate_headers)
        try:
            if method in knack_writes.WRITE_METHODS:
                response = self._write(method, path, headers, app, body)
            else:
                response = self._route(method, path, query, headers, app_id, app)
        except _ApiError as exc:
            response = _error(exc.status, exc.message)
        if rate_headers:
            response.headers = {**rate_headers, **(response.headers or {})}
        return response

    @staticmethod
    def _fault_response(
        status: int, text: str | None = None, retry_after: float = 1.0
    ) -> _Response:
        messages = {
            429: "Rate limit exceeded",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        message = text or f"{messages.get(status, 'Emulated fault')} (emulated fault)"
        headers = {"Retry-After": f"{retry_after:g}"} if status in (429, 503) else None
        return _error(status, message, headers)

    def _rate_check(self, app: _ServedApp) -> tuple[bool, dict[str, str]]:
        """Sliding one-second window per app; call with the lock held."""
        assert self.rate_limit is not None
        now = time.monotonic()
        wall = time.time()
        hits = app.hits
        while hits and hits[0] <= now - RATE_WINDOW_SECONDS:
            hits.popleft()
        limited = len(hits) >= self.rate_limit
        if not limited:
            hits.append(now)
        free_in = (hits[0] + RATE_WINDOW_SECONDS - now) if hits else RATE_WINDOW_SECONDS
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - len(hits))),
            "X-RateLimit-Reset": str(math.ceil(wall + max(free_in, 0.0))),
        }
        if limited:
            headers["Retry-After"] = str(max(1, math.ceil(free_in)))
        return limited, headers

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        app_id: str | None,
        app: _ServedApp | None,
    ) -> _Response:
        if method not in ("GET", "HEAD"):
            return _error(405, f"The emulator only answers GET, not {method}")

        app_match = _APPLICATION.match(path)
        if app_match:
            if self.faults.metadata_body is not None:
                return _Response(200, self.faults.metadata_body.encode(), "text/html")
            if app is None:
                return _error(404, f"Application {app_id} not found")
            return _Response(200, app.metadata_body)

        object_match = _OBJECT_RECORDS.match(path)
        view_match = _VIEW_RECORDS.match(path)
        if not (object_match or view_match):
            return _error(404, f"Not found: {path}")
        if not app_id:
            return _error(400, "Missing X-Knack-Application-Id header")
        if app is None:
            return _error(404, f"Application {app_id} not found")

        if object_match:
            if headers.get("X-Knack-REST-API-KEY") != self.api_keys.get(app_id, self.api_key):
                return _error(401, "Invalid API key")
            object_key, record_id = object_match.group(1), object_match.group(2)
        else:
            assert view_match is not None
            scene_key, view_key, record_id = view_match.groups()
            scene_of_view, source = app.views.get(view_key, (None, None))
            if scene_of_view is None:
                return _error(404, f"View {view_key} not found")
            if scene_of_view != scene_key:
                return _error(404, f"View {view_key} is not in scene {scene_key}")
            if not source:
                return _error(404, f"View {view_key} has no source object")
            object_key = source
        if object_key not in app.records:
            return _error(404, f"Object {object_key} not found")

        if record_id:
            with self._lock:
                row = app.records[object_key].get(record_id)
                payload = json.dumps(row).encode() if row is not None else None
            if payload is None:
                return _error(404, f"Record {record_id} not found")
            return _Response(200, payload)
        return self._page(app, object_key, query)

    def _page(self, app: _ServedApp, object_key: str, query: dict[str, str]) -> _Response:
        page = _positive_int(query, "page", 1)
        rows_per_page = min(
            _positive_int(query, "rows_per_page", DEFAULT_ROWS_PER_PAGE), self.max_rows_per_page
        )
        predicate: _Predicate | None = None
        if query.get("filters", "").strip():
            field_types = {k: str(f.get("type")) for k, f in app.fields[object_key].items()}
            predicate = _build_filter(query["filters"], field_types)
        with self._lock:
            rows = list(app.records[object_key].values())
            if predicate is not None:
                rows = [row for row in rows if predicate(row)]
            faults = self.faults
            shown = min(page, faults.repeat_page) if faults.repeat_page else page
            start = (shown - 1) * rows_per_page
            total = len(rows) + faults.overstate_total_records
            served = rows[start : start + rows_per_page]
            if faults.empty_page == page and faults.empty_page_times > 0:
                faults.empty_page_times -= 1
                served = []
            body = json.dumps(
                {
                    "total_pages": math.ceil(total / rows_per_page),
                    "current_page": page,
                    "total_records": total,
                    "records": served,
                }
            ).encode()
            if faults.delete_after_page == page:
                faults.delete_after_page = 0  # once
                doomed = faults.delete_record or (served[0]["id"] if served else None)
                app.records[object_key].pop(doomed, None)
        return _Response(200, body)

    def _write(
        self, method: str, path: str, headers: Any, app: _ServedApp | None, body: bytes
    ) -> _Response:
        """POST, PUT or DELETE on an object's records (``emulators.knack_writes``)."""
        match = _OBJECT_RECORDS.match(path)
        if match is None:
            return _error(405, f"{method} is only answered on /v1/objects/<object>/records")
        if app is None:
            return _error(404, "Application not found: send X-Knack-Application-Id")
        if headers.get("X-Knack-REST-API-KEY") != self.api_keys.get(app.id, self.api_key):
            return _error(401, "Invalid API key")
        object_key, record_id = match.groups()
        if object_key not in app.records:
            return _error(404, f"Object {object_key} not found")
        with self._lock:
            status, payload = knack_writes.write(
                method, app, object_key, record_id, body, self.new_record_id
            )
            faults = self.faults
            if status < 400 and faults.apply_then_fail > 0:
                faults.apply_then_fail -= 1
                return self._fault_response(faults.status, faults.message, faults.retry_after)
        return _json_response(status, payload)

    def _control_extra(self, method: str, path: str) -> _Response | None:
        if path == "/_emulator/apps" and method == "GET":
            return _json_response(200, self.app_ids)
        return None


def _positive_int(query: dict[str, str], name: str, default: int) -> int:
    text = query.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _ApiError(400, f"Invalid {name}: {text!r} is not an integer") from None
    if value < 1:
        raise _ApiError(400, f"Invalid {name}: must be 1 or more")
    return value


# --------------------------------------------------------------------------- fixture apps


def load_fixture_app() -> tuple[dict, dict[str, list[dict]]]:
    """knackpy's development app: (metadata body, {"object_3": its 25 records})."""
    metadata = json.loads((FIXTURE_DIR / "metadata.json").read_text(encoding="utf-8"))
    records = json.loads((FIXTURE_DIR / "all_fields_records.json").read_text(encoding="utf-8"))
    return metadata, {"object_3": records["records"]}


# fmt: off
_STREETS = [
    "CONGRESS AVE", "LAMAR BLVD", "GUADALUPE ST", "BURNET RD", "MANOR RD", "RIVERSIDE DR",
    "OLTORF ST", "SOUTH 1ST ST", "CESAR CHAVEZ ST", "MLK JR BLVD", "AIRPORT BLVD",
    "SLAUGHTER LN", "WILLIAM CANNON DR", "PARMER LN", "ANDERSON LN", "KOENIG LN", "RUNDBERG LN",
    "BRAKER LN", "STASSNEY LN", "BEN WHITE BLVD", "PLEASANT VALLEY RD", "DUVAL ST",
    "RED RIVER ST", "TRINITY ST", "SAN JACINTO BLVD", "BRAZOS ST", "COLORADO ST", "LAVACA ST",
    "NUECES ST", "RIO GRANDE ST", "38TH ST", "45TH ST", "51ST ST", "5TH ST", "6TH ST", "7TH ST",
    "11TH ST", "12TH ST", "15TH ST", "ENFIELD RD",
]
_ZIPS = [
    "78701", "78702", "78703", "78704", "78705", "78721", "78722", "78723", "78741", "78744",
    "78745", "78748", "78751", "78752", "78753", "78756", "78757", "78758",
]
_STATUSES = ["TURNED_ON", "DESIGN", "CONSTRUCTION"]
_NOTES = [
    "Cabinet inspected.", "Detector loop replaced.", "Retimed for school zone.",
    "Pedestrian button repaired.", "Flash mode after power outage.", "New controller installed.",
]
# fmt: on
_SIGNALS_FIELDS: list[tuple[str, str, str, dict]] = [
    ("field_1", "auto_increment", "Signal ID", {}),
    ("field_2", "short_text", "Location Name", {"default": ""}),
    (
        "field_3",
        "address",
        "Location",
        {
            "format": {
                "input": "lat_long",
                "format": "US",
                "enable_geocoding": True,
                "enable_address_autocomplete": False,
            }
        },
    ),
    (
        "field_4",
        "multiple_choice",
        "Signal Status",
        {
            "format": {
                "options": _STATUSES,
                "type": "single",
                "sorting": "custom",
                "blank": "Select...",
                "default": "kn-blank",
            }
        },
    ),
    (
        "field_5",
        "date_time",
        "Modified Date",
        {
            "format": {
                "calendar": False,
                "default_time": "",
                "time_type": "current",
                "time_format": "HH:MM am",
                "default_date": "",
                "default_type": "current",
                "date_format": "mm/dd/yyyy",
            }
        },
    ),
    (
        "field_6",
        "boolean",
        "Is Flashing",
        {
            "default": False,
            "format": {
                "input": "dropdown",
                "required": False,
                "default": False,
                "format": "yes_no",
            },
        },
    ),
    (
        "field_7",
        "number",
        "Cabinet Count",
        {
            "default": "0",
            "format": {
                "mark_decimal": "none",
                "precision": "0",
                "rounding": "none",
                "mark_thousands": "none",
                "format": "",
                "pre": "",
                "post": "",
            },
        },
    ),
    ("field_8", "rich_text", "Notes", {"default": ""}),
]


def _hex_id(*parts: object) -> str:
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _signals_metadata(app_id: str, n_records: int, seed: int) -> dict:
    object_fields = []
    for key, field_type, name, extra in _SIGNALS_FIELDS:
        object_fields.append(
            {
                "type": field_type,
                "required": False,
                "unique": key == "field_1",
                "user": False,
                "conditional": False,
                "rules": None,
                "validation": None,
                "key": key,
                "object_key": "object_1",
                "name": name,
                **copy.deepcopy(extra),
                "_id": _hex_id(app_id, key),
            }
        )
    columns = [
        {
            "width": {"type": "default"},
            "header": name,
            "type": "field",
            "sortable": True,
            "field": {"key": key},
            "object": {"key": "object_1"},
        }
        for key, _, name, _ in _SIGNALS_FIELDS
    ]
    view = {
        "columns": columns,
        "links": [],
        "inputs": [],
        "_id": _hex_id(app_id, "view_1"),
        "key": "view_1",
        "name": "All Signals",
        "type": "table",
        "source": {
            "page": 1,
            "object": "object_1",
            "type": "database",
            "sort": [{"field": "field_1", "order": "asc"}],
            "criteria": {"match": "any", "rules": [], "groups": []},
            "limit": "",
        },
        "title": "All Signals",
        "description": "",
        "rows_per_page": "25",
        "keyword_search": True,
        "allow_exporting": False,
        "allow_preset_filters": False,
        "filter_type": "fields",
        "display_pagination_below": True,
        "label": "Table",
        "allow_limit": False,
        "filter_fields": "view",
        "hide_empty": False,
        "menu_filters": [],
        "no_data_text": "No Data",
        "options": {"cell_editor": False},
        "preset_filters": [],
        "totals": [],
        "child_scenes": [],
        "child_views": [],
        "child_child_views": [],
    }
    scene = {
        "groups": [],
        "page_menu_display": False,
        "print": False,
        "modal": False,
        "ignore_entry_scene_menu": True,
        "icon": {"icon": None, "align": "left"},
        "name": "Signals",
        "slug": "signals",
        "_id": _hex_id(app_id, "scene_1"),
        "authenticated": False,
        "key": "scene_1",
        "parent": None,
        "views": [view],
    }
    obj = {
        "inflections": {"plural": "signals", "singular": "signal"},
        "connections": {"inbound": [], "outbound": []},
        "sort": {"field": "field_1", "order": "asc"},
        "user": False,
        "status": "current",
        "tasks": [],
        "type": "StandardObject",
        "key": "object_1",
        "name": "signals",
        "conns": [],
        "_id": _hex_id(app_id, "object_1"),
        "identifier": "field_2",
        "fields": object_fields,
    }
    return {
        "application": {
            "name": "Signals Generated",
            "description": f"Generated by the Knack emulator (seed {seed}).",
            "home_scene": {"key": "scene_1", "slug": "signals"},
            "id": app_id,
            "slug": "signals-generated",
            "distributions": [],
            "counts": {"object_1": n_records, "total_entries": n_records, "asset_size": 0},
            "objects": [obj],
            "scenes": [scene],
            "account": {"id": _hex_id(app_id, "account"), "slug": "emulator", "name": "emulator"},
            "users": {
                "enabled": False,
                "registration": "closed",
                "scope": "scene",
                "templates": {},
            },
            "session": {},
            "layout": {"theme": "kn-beta", "app_menu_auth": True, "entry_scene_menu": True},
            "status": "active",
            "settings": {
                "timezone": "Central Time (US & Canada)",
                "timezone_dst": "3600",
                "timezone_offset": "-21600",
                "cluster": "us-east",
                "new_count": True,
                "language": "",
            },
            "design": {},
            "payment_processors": [],
            "ecommerce": {"enabled": False},
            "feature_flags": [],
            "subdomain": "us-api",
        }
    }


def generate_app(n_records: int, *, seed: int = 0) -> tuple[dict, dict[str, list[dict]]]:
    """A "signals" app with ``n_records`` records of object_1, fully determined by ``seed``."""
    if not 0 <= n_records < 1 << 24:
        raise ValueError("n_records must be between 0 and 16,777,215")
    rng = random.Random(seed)
    app_id = _hex_id("knack-emulator-signals", seed)
    metadata = _signals_metadata(app_id, n_records, seed)
    tz = app_timezone(metadata["application"]["settings"]["timezone"])
    date_format = _SIGNALS_FIELDS[4][3]["format"]
    first = int(dt.datetime(2026, 1, 1, tzinfo=tz).timestamp()) // 60
    last = int(dt.datetime(2026, 7, 1, tzinfo=tz).timestamp()) // 60 - 1
    id_base = 0x69500000 + (seed % 0x10000) * 0x100  # ~2026, so ids look like real ObjectIds
    records = []
    for i in range(n_records):
        record_id = f"{(id_base + i) & 0xFFFFFFFF:08x}{rng.getrandbits(40):010x}{i:06x}"
        street_a, street_b = rng.sample(_STREETS, 2)
        name = f"{street_a} / {street_b}"
        if rng.random() < 0.02:
            location, location_raw = "", ""
        else:
            street = f"{rng.randint(100, 9999)} {street_a.title()}"
            zip_code = rng.choice(_ZIPS)
            location_raw = {
                "latitude": round(30.2672 + rng.uniform(-0.15, 0.15), 6),
                "longitude": round(-97.7431 + rng.uniform(-0.15, 0.15), 6),
                "street": street,
                "city": "Austin",
                "state": "TX",
                "zip": zip_code,
            }
            location = f"{street}<br />Austin, TX {zip_code}"
        status = rng.choices(_STATUSES, weights=[80, 10, 10])[0]
        when = dt.datetime.fromtimestamp(rng.randint(first, last) * 60, tz=tz)
        modified, modified_raw = knack_date_time(when, date_format)
        flashing = rng.random() < 0.05
        cabinets = rng.randint(0, 3)
        notes = f"<p>{rng.choice(_NOTES)}</p>" if rng.random() < 0.6 else ""
        records.append(
            {
                "id": record_id,
                "field_1": i + 1,
                "field_1_raw": i + 1,
                "field_2": name,
                "field_2_raw": name,
                "field_3": location,
                "field_3_raw": location_raw,
                "field_4": status,
                "field_4_raw": status,
                "field_5": modified,
                "field_5_raw": modified_raw,
                "field_6": "Yes" if flashing else "No",
                "field_6_raw": flashing,
                "field_7": cabinets,
                "field_7_raw": cabinets,
                "field_8": notes,
                "field_8_raw": notes,
            }
        )
    return metadata, {"object_1": records}


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.knack", description="Serve a local Knack API stand-in."
    )
    parser.add_argument("--fixture", action="store_true", help="serve knackpy's fixture app")
    parser.add_argument(
        "--generate", type=int, metavar="N", help="serve a generated app of N records"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --generate (default 0)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--no-rate-limit", action="store_true", help="no 10 requests/s limit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    emulator = KnackEmulator(
        api_key=args.api_key,
        rate_limit=None if args.no_rate_limit else 10,
        host=args.host,
        port=args.port,
    )
    if args.fixture or args.generate is None:
        emulator.add_app(*load_fixture_app())
    if args.generate is not None:
        emulator.add_app(*generate_app(args.generate, seed=args.seed))
    emulator.start()
    print(f"KNACK_API_URL={emulator.url}", flush=True)
    print(f"KNACK_API_KEY={emulator.api_key}", flush=True)
    for app_id in emulator.app_ids:
        app = emulator._apps[app_id]
        print(f"app {app_id} {app.metadata.get('name', '')!r}", flush=True)
    emulator.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
