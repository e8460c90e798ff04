"""A local stand-in for ArcGIS Online (a portal plus its hosted feature services).

It serves HTTPS on 127.0.0.1 with a self-signed certificate made at :meth:`start`
(:attr:`ArcGISEmulator.ca_bundle` is the PEM a client must trust), so that the real
``arcgis`` package (ArcGIS API for Python 2.4) talks to it exactly as to production::

    GIS(emulator.url, username, password, ca_bundles=emulator.ca_bundle)

Both login paths of ``GIS()`` work: the default one (OAuth 2.0 ``pythonapi`` client:
``/sharing/rest/oauth2/authorize`` then ``/sharing/oauth2/signin``, implicit grant, falling
back to the authorization-code grant and ``/sharing/rest/oauth2/token``) and
``use_gen_token=True`` (``/sharing/rest/generateToken``).

Portal routes (``/sharing/rest/...``): ``info``, the root (``currentVersion``),
``portals/self``, ``community/self``, ``community/users/<username>``, ``generateToken``,
``oauth2/authorize``, ``oauth2/token``, ``/sharing/oauth2/signin``,
``content/items/<id>`` and ``content/items/<id>/data``.

Hosted feature services, one per :meth:`ArcGISEmulator.add_service`, live at
``<url>/<org_id>/arcgis/rest/services/<name>/FeatureServer`` (service properties) with
``/<n>`` (layer or table properties) and the layer operations ``query``, ``applyEdits``,
``addFeatures``, ``updateFeatures`` and ``deleteFeatures``. The admin side,
``<url>/<org_id>/arcgis/rest/admin/services/<name>/FeatureServer[/<n>]``, answers its
properties, ``refresh`` and (per layer) ``truncate``, which is what
``FeatureLayer.manager.truncate()`` calls.

Behaviour, after the ArcGIS REST API documentation:

- Every request except the login routes, ``info`` and ``portals/self`` needs a token: the
  ``X-Esri-Authorization: Bearer <token>`` header (what ``arcgis`` sends), ``Authorization:
  Bearer`` or a ``token`` parameter. Without one the answer is ``{"error": {"code": 499,
  "message": "Token Required"}}``; an unknown or expired token gets code 498 ``Invalid
  token.`` (``Invalid Token`` from feature services, as ArcGIS Server words it). As on
  ArcGIS Online, REST errors come with HTTP 200 and an ``error`` object; only faults use
  HTTP 5xx.
- Parameters come from the query string, a urlencoded form or a multipart form (what
  ``FeatureLayer.edit_features`` posts). Every answer is JSON, whatever ``f`` says.
- ``query``: ``where`` is a small SQL-92 subset: comparisons (``= <> != < <= > >=``),
  ``[NOT] IN (...)``, ``IS [NOT] NULL``, ``[NOT] LIKE``, ``[NOT] BETWEEN``, ``AND``/``OR``/
  ``NOT`` and parentheses, over field names (case-insensitive), quoted strings, numbers and
  ``DATE 'yyyy-mm-dd'`` / ``TIMESTAMP 'yyyy-mm-dd hh:mm:ss'`` literals. String comparisons
  ignore case (hosted layers sit on SQL Server with a case-insensitive collation).
  ``objectIds``, ``outFields``, ``returnGeometry``, ``returnCountOnly``, ``returnIdsOnly``,
  ``orderByFields``, ``resultOffset`` and ``resultRecordCount`` work; a page holds at most
  the layer's ``maxRecordCount`` features (``returnIdsOnly`` is not capped) and says
  ``"exceededTransferLimit": true`` when more match. Geometry filters, statistics, distinct
  values and other output spatial references answer an error rather than a wrong result.
- Edits answer per-feature results ``{"objectId", "uniqueId", "globalId", "success"}``,
  with ``"error": {"code", "description"}`` when ``success`` is false; the request itself
  succeeds. Adds, then updates (by ``OBJECTID``), then deletes (by object id) are applied.
  With ``rollbackOnFailure`` (the default, as in ``arcgis``) one failed edit fails the
  whole call: nothing is applied and every other result becomes code 1003 ``Operation
  rolled back.``. Codes used: 1000 (an attribute that is not a field of the layer, ``Invalid
  column name '<name>'.``: the emulator is deliberately strict about schema drift; the
  emulated faults), 1001 (a null for a field that is not nullable), 1011 (``Object is
  missing.``), 1015 (``Geometry could not be set.``), 1016 (``Setting of value for <field>
  failed.``: a value of the wrong type or too long) and 1022 (``Unique constraint
  violation error on inserting the value.``: a layer's ``unique_field``, ``id`` by default,
  is a unique index, case-insensitive, nulls exempt).
- Values: strings for string and GUID fields (length limit enforced), JSON integers for
  integer fields, numbers for double fields, epoch milliseconds (integers) for date fields.
  Geometry (WKID 4326 only): ``{"x", "y"}`` for point layers, ``{"points": [[x, y], ...]}``
  for multipoint layers, with -180 <= x <= 180 and -90 <= y <= 90 (this catches swapped
  coordinates); tables ignore geometry.
- ``deleteFeatures`` takes ``where`` and/or ``objectIds``; ``truncate`` deletes everything
  (synchronous only).

Faults (:class:`ArcGISFaults`, applied to every request but the control routes):
``fail_next`` N requests answer HTTP ``status``; ``fail_after_edits`` lets that many more
``applyEdits`` calls through, then answers ``status`` to every ``applyEdits`` until set back
to ``None``; ``http_status`` 200 answers those faults as ArcGIS REST words most errors (HTTP
200, ``status`` as the error object's code); ``delay`` sleeps before answering (the request
is still applied afterwards);
``error_ids`` makes the edits (adds, updates, deletes, also through ``deleteFeatures``) of
features whose ``unique_field`` value is in the set fail with code 1000. Note that
``arcgis`` retries 500/502/503/504 answers up to five times by itself, so ``fail_next`` below
6 is invisible to it (but shows in the request log).

The request log (:attr:`ArcGISEmulator.requests`) records each request's method, path,
parameters (``password``, ``token`` and other secrets removed), ``Host`` header, HTTP
status, the REST error code of an HTTP 200 error answer, and the token's user.

Quirks of ``arcgis`` 2.4.4 this emulator makes visible: ``FeatureLayer.query`` fetches
the first page, a count, all object ids, then pages of 200 object ids (5 threads) and
ignores ``exceededTransferLimit`` on those, so a layer whose ``maxRecordCount`` is below 200
loses features unless the query has ``order_by_fields`` (then it pages by ``resultOffset``);
``edit_features`` raises nothing for failed features; naive ``datetime`` attributes are
sent as local time; a token answered with 498 is dropped for that URL and the request
resent without it.

Control routes for another process: ``GET``/``POST /_emulator/faults`` (JSON merged into
:class:`ArcGISFaults`; ``error_ids`` as a list) and ``GET``/``DELETE /_emulator/requests``.

Run it by hand with ``python -m emulators.arcgis --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import email.parser
import email.policy
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulators._http import HTTPEmulator, Response, ServerThread, ServiceFaults, json_response

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "emulator_user"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_ORG_ID = "EmuOrg0123456789"  # ArcGIS Online org ids are 16 letters and digits
DEFAULT_MAX_RECORD_COUNT = 2000  # ArcGIS Online's default for hosted layers
DEFAULT_STRING_LENGTH = 256  # ArcGIS Online's default for new string fields
DEFAULT_UNIQUE_FIELD = "id"
OAUTH_CLIENT_IDS = frozenset({"pythonapi", "arcgisonline"})  # clients arcgis may use
TOKEN_MINUTES_DEFAULT = 60
TOKEN_MINUTES_MAX = 20160  # two weeks, ArcGIS Online's longest
CURRENT_VERSION = "2025.1"  # the portal's REST version
SERVICE_VERSION = 11.3  # the feature services' currentVersion
WKID = 4326
_SPATIAL_REFERENCE = {"wkid": WKID, "latestWkid": WKID}
_GEOMETRY_TYPES = ("esriGeometryPoint", "esriGeometryMultipoint")
_OOB = "urn:ietf:wg:oauth:2.0:oob"

_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_PATH = re.compile(
    r"^/(?P<org>[^/]+)/arcgis/rest/(?P<admin>admin/)?services/(?P<name>[^/]+)/FeatureServer"
    r"(?:/(?P<layer>\d+))?(?:/(?P<op>[A-Za-z]+))?$",
    re.IGNORECASE,
)
_USER_PATH = re.compile(r"^/sharing/rest/community/users/([^/]+)$")
_ITEM_PATH = re.compile(r"^/sharing/rest/content/items/([^/]+)(/data)?$")

# the short field type names add_service accepts -> esriFieldType names (also accepted)
_FIELD_TYPES: dict[str, str] = {
    "oid": "esriFieldTypeOID",
    "string": "esriFieldTypeString",
    "text": "esriFieldTypeString",
    "integer": "esriFieldTypeInteger",
    "small_integer": "esriFieldTypeSmallInteger",
    "big_integer": "esriFieldTypeBigInteger",
    "double": "esriFieldTypeDouble",
    "single": "esriFieldTypeSingle",
    "date": "esriFieldTypeDate",
    "guid": "esriFieldTypeGUID",
}
_INTEGER_RANGES = {
    "esriFieldTypeSmallInteger": (-(2**15), 2**15 - 1),
    "esriFieldTypeInteger": (-(2**31), 2**31 - 1),
    "esriFieldTypeBigInteger": (-(2**53), 2**53),  # JSON-safe, as ArcGIS documents
    "esriFieldTypeOID": (1, 2**31 - 1),
}
_NUMBER_TYPES = frozenset({"esriFieldTypeDouble", "esriFieldTypeSingle", *_INTEGER_RANGES})
_TEXT_TYPES = frozenset({"esriFieldTypeString", "esriFieldTypeGUID"})
_LAYER_KEYS = frozenset(
    {"id", "name", "fields", "geometry_type", "max_record_count", "unique_field", "features"}
)
_FIELD_KEYS = frozenset({"name", "type", "alias", "length", "nullable"})
_SECRET_PARAMS = frozenset({"password", "token", "code", "refresh_token", "oauth_state"})
_FAULT_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# --------------------------------------------------------------------------- faults, log


@dataclass
class ArcGISFaults(ServiceFaults):
    """Faults applied to every request but the control routes; mutable while serving.

    ``error_ids``: edits of features whose unique_field value is in there fail with code
    1000.
    """

    budget: ClassVar[str | None] = "fail_after_edits"
    # let this many more applyEdits calls succeed, then answer `status` to every later one
    # until set back to None; counts down as applyEdits calls pass
    fail_after_edits: int | None = None
    # the HTTP status a fault is answered with; None: `status` itself; 200: as ArcGIS REST
    # answers most errors, `status` only as the error object's code
    http_status: int | None = None


@dataclass
class ArcGISRequest:
    """One request the emulator answered (control routes are not logged)."""

    method: str
    path: str
    params: dict[str, str]  # query string and form fields, without secrets
    host: str  # the Host header, e.g. "127.0.0.1:PORT"
    status: int  # HTTP status
    time: float  # POSIX seconds when the request arrived
    error_code: int | None = None  # the REST error code of an HTTP 200 error answer
    user: str | None = None  # the owner of a valid token, if one came with the request

    @property
    def operation(self) -> str:
        """The last path segment (``query``, ``applyEdits``, ``generateToken``, ...)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"operation": self.operation}


class _ApiError(Exception):
    """A REST error: HTTP 200 with ``{"error": {"code", "message", "details"}}``."""

    def __init__(self, code: int, message: str, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details)

    def response(self) -> Response:
        payload = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return json_response(200, payload)


def _bad_request(*details: str) -> _ApiError:
    return _ApiError(400, "Unable to complete operation.", details)


class _EditError(Exception):
    """One failed edit: a per-feature ``{"code", "description"}``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _html(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, text.encode(), "text/html; charset=utf-8", headers)


# --------------------------------------------------------------------------- certificate


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (no CA) for 127.0.0.1 and localhost: ``(cert, key)`` PEMs."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "arcgis-emulator.pem", directory / "arcgis-emulator.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# --------------------------------------------------------------------------- values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_value(spec: dict, value: Any) -> Any:
    """The stored form of ``value`` for field ``spec``, or _EditError(1016)."""
    name, kind = spec["name"], spec["type"]
    failed = _EditError(1016, f"Setting of value for {name} failed.")
    if value is None:
        if not spec["nullable"]:
            raise _EditError(1001, f"Field: {name} is not nullable. Cannot set null value.")
        return None
    if kind in _TEXT_TYPES:
        if not isinstance(value, str) or len(value) > spec.get("length", math.inf):
            raise failed
        return value
    if kind in _INTEGER_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        low, high = _INTEGER_RANGES[kind]
        if not _is_int(value) or not low <= value <= high:
            raise failed
        return value
    if kind in _NUMBER_TYPES:
        if not _is_number(value):
            raise failed
        return value
    if kind == "esriFieldTypeDate":  # epoch milliseconds
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value):
            raise failed
        return value
    raise failed


def _check_geometry(geometry_type: str, geometry: Any) -> dict | None:
    """The stored geometry (x/y or points, WKID 4326), or _EditError(1015)."""
    if geometry is None:
        return None
    failed = _EditError(1015, "Geometry could not be set.")
    if not isinstance(geometry, dict):
        raise failed
    reference = geometry.get("spatialReference")
    if reference is not None and (
        not isinstance(reference, dict)
        or WKID not in (reference.get("wkid"), reference.get("latestWkid"))
    ):
        raise failed

    def pair(x: Any, y: Any) -> list[float]:
        if not (_is_number(x) and _is_number(y) and -180 <= x <= 180 and -90 <= y <= 90):
            raise failed
        return [x, y]

    if geometry_type == "esriGeometryPoint":
        if "x" not in geometry or "y" not in geometry:
            raise failed
        x, y = pair(geometry["x"], geometry["y"])
        return {"x": x, "y": y}
    points = geometry.get("points")
    if not isinstance(points, list) or not points:
        raise failed
    return {
        "points": [
            pair(p[0], p[1]) if isinstance(p, list) and len(p) >= 2 else pair(None, None)
            for p in points
        ]
    }


def _fold(value: Any) -> Any:
    """A value as SQL Server's case-insensitive collation compares it."""
    return value.casefold() if isinstance(value, str) else value


def _epoch_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _parse_date_text(text: str) -> int | None:
    for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            return _epoch_ms(dt.datetime.strptime(text.strip(), pattern))
    return None


# --------------------------------------------------------------------------- where clauses


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<op><>|!=|<=|>=|=|<|>)"
    r"|(?P<punct>[(),+-])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN", "DATE", "TIMESTAMP"}
)
_Operand = Callable[[dict], Any]
_Predicate = Callable[[dict], bool | None]  # None: SQL's "unknown"


@dataclass
class _Term:
    """A where-clause operand: a field reference or a literal."""

    get: _Operand
    field_type: str | None = None  # the field's type, for field references
    literal: Any = None
    is_literal: bool = False


class _WhereParser:
    """A recursive-descent parser for the where-clause subset in the module docstring."""

    def __init__(self, text: str, fields_by_key: dict[str, dict]) -> None:
        self.text = text
        self.fields = fields_by_key
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise self._error(f"unexpected text at {text[position : position + 20]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def _error(self, why: str) -> _ApiError:
        return _bad_request(
            "Unable to perform query operation.", f"Invalid where clause {self.text!r}: {why}"
        )

    def _peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def _keyword(self, *words: str) -> bool:
        kind, value = self._peek()
        if kind == "word" and value.upper() in words:
            self.index += 1
            return True
        return False

    def _expect_punct(self, value: str) -> None:
        if self._peek() != ("punct", value):
            raise self._error(f"expected {value!r}")
        self.index += 1

    def parse(self) -> _Predicate:
        predicate = self._or()
        if self._peek()[0] != "end":
            raise self._error(f"unexpected {self._peek()[1]!r}")
        return predicate

    def _or(self) -> _Predicate:
        parts = [self._and()]
        while self._keyword("OR"):
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]

        def either(row: dict) -> bool | None:
            results = [p(row) for p in parts]
            if any(r is True for r in results):
                return True
            return None if any(r is None for r in results) else False

        return either

    def _and(self) -> _Predicate:
        parts = [self._not()]
        while self._keyword("AND"):
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0]

        def both(row: dict) -> bool | None:
            results = [p(row) for p in parts]
            if any(r is False for r in results):
                return False
            return None if any(r is None for r in results) else True

        return both

    def _not(self) -> _Predicate:
        if self._keyword("NOT"):
            inner = self._not()
            return lambda row: None if (r := inner(row)) is None else not r
        if self._peek() == ("punct", "("):  # no arithmetic: "(" always opens a condition
            self.index += 1
            inner = self._or()
            self._expect_punct(")")
            return inner
        return self._comparison()

    def _comparison(self) -> _Predicate:
        left = self._operand()
        negate = self._keyword("NOT")
        if self._keyword("IN"):
            self._expect_punct("(")
            values = [self._coerce(left, self._operand())]
            while self._peek() == ("punct", ","):
                self.index += 1
                values.append(self._coerce(left, self._operand()))
            self._expect_punct(")")
            wanted = {_fold(v) for v in values}
            return self._maybe_not(
                negate, lambda row: None if (v := left.get(row)) is None else _fold(v) in wanted
            )
        if self._keyword("LIKE"):
            pattern = self._operand()
            if not pattern.is_literal or not isinstance(pattern.literal, str):
                raise self._error("LIKE needs a quoted pattern")
            regex = re.compile(
                "".join(
                    ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.literal
                ),
                re.IGNORECASE | re.DOTALL,
            )
            return self._maybe_not(
                negate,
                lambda row: (
                    None if (v := left.get(row)) is None else regex.fullmatch(str(v)) is not None
                ),
            )
        if self._keyword("BETWEEN"):
            low = self._coerce(left, self._operand())
            if not self._keyword("AND"):
                raise self._error("BETWEEN needs AND")
            high = self._coerce(left, self._operand())

            def between(row: dict) -> bool | None:
                value = left.get(row)
                if value is None:
                    return None
                return self._compare(value, "<=", high) and self._compare(value, ">=", low)

            return self._maybe_not(negate, between)
        if negate:
            raise self._error("NOT must be followed by IN, LIKE or BETWEEN here")
        if self._keyword("IS"):
            is_not = self._keyword("NOT")
            if not self._keyword("NULL"):
                raise self._error("IS needs NULL")
            return lambda row: (left.get(row) is None) != is_not
        kind, op = self._peek()
        if kind != "op":
            raise self._error(f"expected a comparison after {self.text!r}")
        self.index += 1
        right = self._operand()
        if left.is_literal and not right.is_literal:
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if not right.is_literal:
            raise self._error("comparing two fields is not supported by the emulator")
        literal = self._coerce(left, right)

        def compare(row: dict) -> bool | None:
            value = left.get(row)
            return None if value is None or literal is None else self._compare(value, op, literal)

        return compare

    @staticmethod
    def _maybe_not(negate: bool, predicate: _Predicate) -> _Predicate:
        if not negate:
            return predicate
        return lambda row: None if (r := predicate(row)) is None else not r

    def _compare(self, value: Any, op: str, literal: Any) -> bool:
        a, b = _fold(value), _fold(literal)
        try:
            if op == "=":
                return bool(a == b)
            if op in ("<>", "!="):
                return bool(a != b)
            if op == "<":
                return bool(a < b)
            if op == "<=":
                return bool(a <= b)
            if op == ">":
                return bool(a > b)
            return bool(a >= b)
        except TypeError:
            raise self._error(f"cannot compare {value!r} with {literal!r}") from None

    def _coerce(self, left: _Term, right: _Term) -> Any:
        """The literal ``right`` in the domain of ``left`` (a field, or another literal)."""
        if not right.is_literal:
            raise self._error("expected a literal value")
        value, kind = right.literal, left.field_type
        if value is None or kind is None:
            return value
        if kind in _NUMBER_TYPES:
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    raise self._error(f"{value!r} is not a number") from None
            if isinstance(value, dt.datetime):
                raise self._error("a date cannot be compared with a number field")
            return value
        if kind == "esriFieldTypeDate":
            if isinstance(value, dt.datetime):
                return _epoch_ms(value)
            if isinstance(value, str):
                millis = _parse_date_text(value)
                if millis is None:
                    raise self._error(f"{value!r} is not a date")
                return millis
            return value
        if isinstance(value, dt.datetime):
            raise self._error("a date cannot be compared with a text field")
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def _operand(self) -> _Term:
        kind, value = self._peek()
        if kind == "end":
            raise self._error("the clause ends too early")
        self.index += 1
        sign = 1
        if kind == "punct" and value in "+-":
            sign = -1 if value == "-" else 1
            kind, value = self._peek()
            self.index += 1
            if kind != "number":
                raise self._error("a sign must be followed by a number")
        if kind == "string":
            text = value[1:-1].replace("''", "'")
            return _Term(lambda row, t=text: t, literal=text, is_literal=True)
        if kind == "number":
            number: float | int = float(value) if any(c in value for c in ".eE") else int(value)
            number = sign * number
            return _Term(lambda row, n=number: n, literal=number, is_literal=True)
        if kind == "word":
            upper = value.upper()
            if upper == "NULL":
                return _Term(lambda row: None, literal=None, is_literal=True)
            if upper in ("DATE", "TIMESTAMP") and self._peek()[0] == "string":  # a literal
                text = self._peek()[1][1:-1]
                self.index += 1
                millis = _parse_date_text(text)
                if millis is None:
                    raise self._error(f"{text!r} is not a {upper.lower()}")
                when = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
                return _Term(lambda row, m=millis: m, literal=when, is_literal=True)
            if upper in _KEYWORDS - {"DATE", "TIMESTAMP"}:  # a field may be named "date"
                raise self._error(f"unexpected {value!r}")
            spec = self.fields.get(value.casefold())
            if spec is None:
                raise self._error(f"no field named {value!r}")
            name = spec["name"]
            return _Term(lambda row, n=name: row.get(n), field_type=spec["type"])
        raise self._error(f"unexpected {value!r}")


# --------------------------------------------------------------------------- layers


def _normalise_field(spec: Any, where: str) -> dict:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: a field is a dict with 'name' and 'type'")
    unknown = set(spec) - _FIELD_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown field keys {sorted(unknown)}")
    name = spec.get("name")
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise ValueError(f"{where}: field name {name!r} must be letters, digits and '_'")
    raw_type = str(spec.get("type", "string"))
    kind = _FIELD_TYPES.get(raw_type.lower(), raw_type)
    if kind not in _FIELD_TYPES.values():
        raise ValueError(
            f"{where}: field {name!r} has type {raw_type!r}; use one of "
            f"{sorted(_FIELD_TYPES)} or their esriFieldType names"
        )
    is_oid = kind == "esriFieldTypeOID"
    out: dict[str, Any] = {
        "name": name,
        "type": kind,
        "alias": str(spec.get("alias") or name),
        "sqlType": "sqlTypeOther",
        "nullable": bool(spec.get("nullable", not is_oid)),
        "editable": not is_oid,
        "domain": None,
        "defaultValue": None,
    }
    if kind in _TEXT_TYPES:
        length = spec.get("length", DEFAULT_STRING_LENGTH if kind == "esriFieldTypeString" else 38)
        if not _is_int(length) or length < 1:
            raise ValueError(f"{where}: field {name!r} length must be a positive integer")
        out["length"] = length
    return out


class _Layer:
    """One layer or table of a feature service (guarded by the emulator's lock)."""

    def __init__(self, spec: Any, position: int, service: _Service) -> None:
        where = f"service {service.name!r}, layer {position}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: a layer is a dict")
        unknown = set(spec) - _LAYER_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown layer keys {sorted(unknown)}")
        self.service = service
        self.id = spec.get("id", position)
        if not _is_int(self.id) or self.id < 0:
            raise ValueError(f"{where}: layer id must be a non-negative integer")
        self.name = spec.get("name")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{where}: a layer needs a 'name'")
        self.geometry_type: str | None = spec.get("geometry_type")
        if self.geometry_type is not None and self.geometry_type not in _GEOMETRY_TYPES:
            raise ValueError(f"{where}: geometry_type must be one of {_GEOMETRY_TYPES} or None")
        self.max_record_count = spec.get("max_record_count", DEFAULT_MAX_RECORD_COUNT)
        if not _is_int(self.max_record_count) or self.max_record_count < 1:
            raise ValueError(f"{where}: max_record_count must be a positive integer")
        raw_fields = spec.get("fields")
        if not isinstance(raw_fields, list):
            raise ValueError(f"{where}: 'fields' must be a list")
        self.fields = [_normalise_field(f, where) for f in raw_fields]
        oids = [f for f in self.fields if f["type"] == "esriFieldTypeOID"]
        if len(oids) > 1:
            raise ValueError(f"{where}: a layer has one OID field")
        if not oids:
            self.fields.insert(0, _normalise_field({"name": "OBJECTID", "type": "oid"}, where))
        self.oid_field = next(f["name"] for f in self.fields if f["type"] == "esriFieldTypeOID")
        self.by_key: dict[str, dict] = {}
        for spec_field in self.fields:
            key = spec_field["name"].casefold()
            if key in self.by_key:
                raise ValueError(f"{where}: field {spec_field['name']!r} appears twice")
            self.by_key[key] = spec_field
        default_unique = DEFAULT_UNIQUE_FIELD if DEFAULT_UNIQUE_FIELD in self.by_key else None
        unique = spec.get("unique_field", default_unique)
        if unique is not None:
            unique_spec = self.by_key.get(str(unique).casefold())
            if unique_spec is None:
                raise ValueError(f"{where}: unique_field {unique!r} is not a field")
            unique = unique_spec["name"]
        self.unique_field: str | None = unique
        self.features: dict[int, dict] = {}  # oid -> {"attributes": {...}, "geometry": ...}
        self.next_oid = 1
        self.last_edit = int(time.time() * 1000)
        initial = spec.get("features") or []
        if initial:
            result = self.apply_edits(
                copy.deepcopy(initial), [], [], rollback=True, error_values=set()
            )
            failures = [
                r["error"]["description"]
                for r in result["addResults"]
                if not r["success"] and r["error"]["code"] != 1003
            ]
            if failures:
                raise ValueError(f"{where}: initial features rejected: {failures[0]}")

    @property
    def is_table(self) -> bool:
        return self.geometry_type is None

    # ----------------------------------------------------------------- JSON

    def url(self, base: str, *, admin: bool = False) -> str:
        return f"{self.service.url(base, admin=admin)}/{self.id}"

    def summary(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.is_table:
            return out
        return out | {
            "parentLayerId": -1,
            "defaultVisibility": True,
            "subLayerIds": None,
            "minScale": 0,
            "maxScale": 0,
            "geometryType": self.geometry_type,
        }

    def properties(self) -> dict:
        indexes = [
            {
                "name": "PK__" + self.oid_field,
                "fields": self.oid_field,
                "isAscending": True,
                "isUnique": True,
                "description": "clustered, unique, primary key",
            },
        ]
        if self.unique_field:
            indexes.append(
                {
                    "name": f"{self.unique_field}_Index",
                    "fields": self.unique_field,
                    "isAscending": True,
                    "isUnique": True,
                    "description": "",
                }
            )
        props: dict[str, Any] = {
            "currentVersion": SERVICE_VERSION,
            "id": self.id,
            "name": self.name,
            "type": "Table" if self.is_table else "Feature Layer",
            "serviceItemId": self.service.id,
            "isView": False,
            "displayField": self.unique_field or self.oid_field,
            "description": "",
            "copyrightText": "",
            "defaultVisibility": True,
            "editingInfo": {"lastEditDate": self.last_edit},
            "relationships": [],
            "isDataVersioned": False,
            "hasAttachments": False,
            "htmlPopupType": "esriServerHTMLPopupTypeNone",
            "hasM": False,
            "hasZ": False,
            "objectIdField": self.oid_field,
            "uniqueIdField": {"name": self.oid_field, "isSystemMaintained": True},
            "globalIdField": "",
            "typeIdField": "",
            "fields": copy.deepcopy(self.fields),
            "indexes": indexes,
            "types": [],
            "templates": [],
            "supportedQueryFormats": "JSON",
            "hasStaticData": False,
            "maxRecordCount": self.max_record_count,
            "standardMaxRecordCount": self.max_record_count,
            "maxRecordCountFactor": 1,
            "capabilities": "Create,Delete,Query,Update,Editing",
            "supportsRollbackOnFailureParameter": True,
            "supportsAdvancedQueries": True,
            "supportsStatistics": False,
            "supportsValidateSql": False,
            "supportsCoordinatesQuantization": False,
            "supportsApplyEditsWithGlobalIds": False,
            "supportsTruncate": True,
            "useStandardizedQueries": True,
            "advancedQueryCapabilities": {
                "supportsPagination": True,
                "supportsPaginationOnAggregatedQueries": False,
                "supportsQueryRelatedPagination": False,
                "supportsQueryWithDistance": False,
                "supportsReturningQueryExtent": False,
                "supportsStatistics": False,
                "supportsOrderBy": True,
                "supportsDistinct": False,
                "supportsQueryWithResultType": False,
                "supportsReturningGeometryCentroid": False,
            },
            "allowGeometryUpdates": True,
        }
        if not self.is_table:
            props |= {
                "geometryType": self.geometry_type,
                "minScale": 0,
                "maxScale": 0,
                "extent": self.extent(),
                "spatialReference": dict(_SPATIAL_REFERENCE),
            }
        return props

    def extent(self) -> dict:
        xs: list[float] = []
        ys: list[float] = []
        for feature in self.features.values():
            geometry = feature["geometry"] or {}
            for x, y in geometry.get("points") or (
                [[geometry["x"], geometry["y"]]] if "x" in geometry else []
            ):
                xs.append(x)
                ys.append(y)
        if not xs:
            return {
                "xmin": -180,
                "ymin": -90,
                "xmax": 180,
                "ymax": 90,
                "spatialReference": dict(_SPATIAL_REFERENCE),
            }
        return {
            "xmin": min(xs),
            "ymin": min(ys),
            "xmax": max(xs),
            "ymax": max(ys),
            "spatialReference": dict(_SPATIAL_REFERENCE),
        }

    # ----------------------------------------------------------------- reads

    def select(self, where: str | None, object_ids: str | None) -> list[dict]:
        """Features matching ``where`` and ``objectIds``, in object id order."""
        rows = [self.features[oid] for oid in sorted(self.features)]
        if object_ids is not None and object_ids.strip():
            try:
                wanted = {int(part) for part in object_ids.split(",") if part.strip()}
            except ValueError:
                raise _bad_request(f"Invalid objectIds: {object_ids!r}") from None
            rows = [r for r in rows if r["attributes"][self.oid_field] in wanted]
        if where is not None and where.strip():
            predicate = _WhereParser(where, self.by_key).parse()
            rows = [r for r in rows if predicate(r["attributes"]) is True]
        return rows

    def query(self, params: dict[str, str]) -> dict:
        for name in (
            "geometry",
            "outStatistics",
            "groupByFieldsForStatistics",
            "having",
            "quantizationParameters",
            "returnDistinctValues",
            "returnExtentOnly",
            "returnCentroid",
            "time",
        ):
            value = params.get(name, "").strip()
            if value and value.lower() not in ("false", "null", "none", "{}", "[]"):
                raise _bad_request(f"The emulator does not support '{name}' in queries.")
        out_sr = params.get("outSR", "").strip()
        if out_sr and out_sr not in (str(WKID), "null") and str(WKID) not in out_sr:
            raise _bad_request(f"The emulator serves WKID {WKID} only (outSR={out_sr}).")
        where = params.get("where")
        object_ids = params.get("objectIds")
        if not (where or "").strip() and not (object_ids or "").strip():
            raise _bad_request("'where' parameter is invalid")
        rows = self.select(where, object_ids)
        rows = self._ordered(rows, params.get("orderByFields", ""))
        if _flag(params, "returnCountOnly"):
            return {"count": len(rows)}
        offset = _whole(params, "resultOffset", 0)
        requested = _whole(params, "resultRecordCount", None)
        if _flag(params, "returnIdsOnly"):
            page = rows[offset:] if requested is None else rows[offset : offset + requested]
            return {
                "objectIdFieldName": self.oid_field,
                "objectIds": [r["attributes"][self.oid_field] for r in page],
            }
        limit = (
            self.max_record_count if requested is None else min(requested, self.max_record_count)
        )
        page = rows[offset : offset + limit]
        selected = self._out_fields(params.get("outFields", ""))
        with_geometry = not self.is_table and _flag(params, "returnGeometry", default=True)
        features = []
        for row in page:
            feature: dict[str, Any] = {
                "attributes": {name: row["attributes"].get(name) for name in selected}
            }
            if with_geometry and row["geometry"] is not None:
                feature["geometry"] = copy.deepcopy(row["geometry"])
            features.append(feature)
        result: dict[str, Any] = {
            "objectIdFieldName": self.oid_field,
            "uniqueIdField": {"name": self.oid_field, "isSystemMaintained": True},
            "globalIdFieldName": "",
        }
        if not self.is_table:
            result |= {
                "geometryType": self.geometry_type,
                "spatialReference": dict(_SPATIAL_REFERENCE),
            }
        result["fields"] = [
            {
                k: v
                for k, v in self.by_key[name.casefold()].items()
                if k in ("name", "type", "alias", "sqlType", "length", "domain", "defaultValue")
            }
            for name in selected
        ]
        result["features"] = features
        if offset + len(page) < len(rows):
            result["exceededTransferLimit"] = True
        return result

    def _out_fields(self, text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names:
            return [self.oid_field]
        if "*" in names:
            return [f["name"] for f in self.fields]
        selected = []
        for name in names:
            spec = self.by_key.get(name.casefold())
            if spec is None:
                raise _bad_request(f"Invalid field: {name} parameter is invalid")
            if spec["name"] not in selected:
                selected.append(spec["name"])
        return [f["name"] for f in self.fields if f["name"] in selected]  # layer order

    def _ordered(self, rows: list[dict], text: str) -> list[dict]:
        for part in reversed([p.strip() for p in text.split(",") if p.strip()]):
            words = part.split()
            if len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
                raise _bad_request(f"Invalid orderByFields: {text!r}")
            spec = self.by_key.get(words[0].casefold())
            if spec is None:
                raise _bad_request(f"Invalid field in orderByFields: {words[0]!r}")
            descending = len(words) == 2 and words[1].upper() == "DESC"
            name = spec["name"]

            def key(row: dict, name: str = name) -> tuple:
                value = _fold(row["attributes"].get(name))
                return (0, 0) if value is None else (1, value)

            # nulls are the lowest values, as in SQL Server; sorts are stable
            rows = sorted(rows, key=key, reverse=descending)
        return rows

    # ----------------------------------------------------------------- edits

    def _match_value(self, attributes: dict) -> str | None:
        if self.unique_field is None:
            return None
        value = attributes.get(self.unique_field)
        return None if value is None else str(value)

    def _checked_attributes(self, attributes: Any, *, update: bool) -> dict:
        if not isinstance(attributes, dict):
            raise _EditError(1000, "Non-specific edit content error.")
        out: dict[str, Any] = {}
        for key, value in attributes.items():
            spec = self.by_key.get(str(key).casefold())
            if spec is None:
                raise _EditError(1000, f"Invalid column name '{key}'.")
            if spec["type"] == "esriFieldTypeOID":
                continue  # adds ignore it; updates read it before calling this
            out[spec["name"]] = _check_value(spec, value)
        if not update:
            for spec in self.fields:
                if spec["name"] not in out and spec["type"] != "esriFieldTypeOID":
                    out[spec["name"]] = None
                    if not spec["nullable"]:
                        raise _EditError(
                            1001, f"Field: {spec['name']} is not nullable. Cannot set null value."
                        )
        return out

    def apply_edits(
        self,
        adds: list,
        updates: list,
        deletes: list[int],
        *,
        rollback: bool,
        error_values: set[str],
    ) -> dict:
        """Per-feature results; applied only if all succeed or ``rollback`` is false."""
        work = dict(self.features)  # features are replaced, never mutated in place
        unique: dict[Any, int] = {}
        if self.unique_field:
            for oid, feature in work.items():
                value = feature["attributes"].get(self.unique_field)
                if value is not None:
                    unique[_fold(value)] = oid
        next_oid = self.next_oid
        results: dict[str, list[dict]] = {
            "addResults": [],
            "updateResults": [],
            "deleteResults": [],
        }
        failed = False

        def ok(oid: int) -> dict:
            return {"objectId": oid, "uniqueId": oid, "globalId": None, "success": True}

        def fail(oid: int | None, error: _EditError) -> dict:
            nonlocal failed
            failed = True
            return {
                "objectId": oid,
                "uniqueId": oid,
                "globalId": None,
                "success": False,
                "error": {"code": error.code, "description": error.description},
            }

        def claim(value: Any, oid: int) -> None:
            if value is None:
                return
            holder = unique.get(_fold(value))
            if holder is not None and holder != oid:
                raise _EditError(1022, "Unique constraint violation error on inserting the value.")

        def injected(attributes: dict) -> None:
            if self._match_value(attributes) in error_values:
                raise _EditError(1000, "Non-specific edit content error. (emulated fault)")

        for feature in adds:
            try:
                if not isinstance(feature, dict):
                    raise _EditError(1000, "Non-specific edit content error.")
                attributes = self._checked_attributes(feature.get("attributes") or {}, update=False)
                geometry = (
                    None
                    if self.is_table
                    else _check_geometry(self.geometry_type or "", feature.get("geometry"))
                )
                injected(attributes)
                oid = next_oid
                if self.unique_field:
                    claim(attributes[self.unique_field], oid)
                attributes = {self.oid_field: oid} | attributes
                work[oid] = {"attributes": attributes, "geometry": geometry}
                if self.unique_field and attributes[self.unique_field] is not None:
                    unique[_fold(attributes[self.unique_field])] = oid
                next_oid += 1
                results["addResults"].append(ok(oid))
            except _EditError as exc:
                results["addResults"].append(fail(None, exc))

        for feature in updates:
            oid = None
            try:
                raw = feature.get("attributes") if isinstance(feature, dict) else None
                if not isinstance(raw, dict):
                    raise _EditError(1000, "Non-specific edit content error.")
                oid = next(
                    (v for k, v in raw.items() if str(k).casefold() == self.oid_field.casefold()),
                    None,
                )
                if not _is_int(oid) or oid not in work:
                    raise _EditError(1011, "Object is missing.")
                changes = self._checked_attributes(raw, update=True)
                current = work[oid]
                attributes = current["attributes"] | changes
                geometry = current["geometry"]
                if "geometry" in feature and not self.is_table:
                    geometry = _check_geometry(self.geometry_type or "", feature["geometry"])
                injected(attributes)
                if self.unique_field:
                    claim(attributes[self.unique_field], oid)
                    old = current["attributes"].get(self.unique_field)
                    if old is not None:
                        unique.pop(_fold(old), None)
                    if attributes[self.unique_field] is not None:
                        unique[_fold(attributes[self.unique_field])] = oid
                work[oid] = {"attributes": attributes, "geometry": geometry}
                results["updateResults"].append(ok(oid))
            except _EditError as exc:
                results["updateResults"].append(fail(oid if _is_int(oid) else None, exc))

        for oid in deletes:
            try:
                if oid not in work:
                    raise _EditError(1011, "Object is missing.")
                injected(work[oid]["attributes"])
                removed = work.pop(oid)
                if self.unique_field:
                    value = removed["attributes"].get(self.unique_field)
                    if value is not None and unique.get(_fold(value)) == oid:
                        del unique[_fold(value)]
                results["deleteResults"].append(ok(oid))
            except _EditError as exc:
                results["deleteResults"].append(fail(oid, exc))

        if failed and rollback:
            rolled_back = {"code": 1003, "description": "Operation rolled back."}
            for kind, entries in results.items():
                for entry in entries:
                    if entry["success"]:
                        entry["success"] = False
                        entry["error"] = dict(rolled_back)
                        if kind == "addResults":
                            entry["objectId"] = entry["uniqueId"] = None
            return results
        if any(entry["success"] for entries in results.values() for entry in entries):
            self.features = work
            self.next_oid = next_oid
            self.last_edit = int(time.time() * 1000)
        return results


class _Service:
    """One hosted feature service and its portal item."""

    def __init__(self, service_id: str, name: str, org_id: str, owner: str, title: str) -> None:
        if not _ITEM_ID.match(service_id):
            raise ValueError(f"service id {service_id!r} must be 32 lowercase hex digits")
        if not _NAME.match(name):
            raise ValueError(f"service name {name!r} must be letters, digits and '_'")
        self.id = service_id
        self.name = name
        self.org_id = org_id
        self.owner = owner
        self.title = title or name
        self.created = int(time.time() * 1000)
        self.layers: dict[int, _Layer] = {}

    def url(self, base: str, *, admin: bool = False) -> str:
        kind = "admin/services" if admin else "services"
        return f"{base}/{self.org_id}/arcgis/rest/{kind}/{self.name}/FeatureServer"

    def item(self, base: str) -> dict:
        return {
            "id": self.id,
            "owner": self.owner,
            "orgId": self.org_id,
            "created": self.created,
            "modified": max([self.created] + [lyr.last_edit for lyr in self.layers.values()]),
            "guid": None,
            "name": self.name,
            "title": self.title,
            "type": "Feature Service",
            "typeKeywords": [
                "ArcGIS Server",
                "Data",
                "Feature Access",
                "Feature Service",
                "Service",
                "Hosted Service",
            ],
            "description": None,
            "tags": [],
            "snippet": None,
            "thumbnail": None,
            "documentation": None,
            "extent": [],
            "categories": [],
            "spatialReference": None,
            "accessInformation": None,
            "licenseInfo": None,
            "culture": "en-us",
            "properties": None,
            "url": self.url(base),
            "proxyFilter": None,
            "access": "private",
            "size": -1,
            "appCategories": [],
            "industries": [],
            "languages": [],
            "largeThumbnail": None,
            "banner": None,
            "screenshots": [],
            "listed": False,
            "ownerFolder": None,
            "protected": False,
            "numComments": 0,
            "numRatings": 0,
            "avgRating": 0,
            "numViews": 0,
            "itemControl": "admin",
        }

    def properties(self) -> dict:
        layers = [lyr for lyr in self.layers.values() if not lyr.is_table]
        tables = [lyr for lyr in self.layers.values() if lyr.is_table]
        extent = {
            "xmin": -180,
            "ymin": -90,
            "xmax": 180,
            "ymax": 90,
            "spatialReference": dict(_SPATIAL_REFERENCE),
        }
        return {
            "currentVersion": SERVICE_VERSION,
            "serviceItemId": self.id,
            "serviceDescription": "",
            "hasVersionedData": False,
            "supportsDisconnectedEditing": False,
            "hasStaticData": False,
            "maxRecordCount": max(
                [lyr.max_record_count for lyr in self.layers.values()] or [DEFAULT_MAX_RECORD_COUNT]
            ),
            "supportedQueryFormats": "JSON",
            "capabilities": "Create,Delete,Query,Update,Editing",
            "description": "",
            "copyrightText": "",
            "spatialReference": dict(_SPATIAL_REFERENCE),
            "initialExtent": extent,
            "fullExtent": extent,
            "allowGeometryUpdates": True,
            "units": "esriDecimalDegrees",
            "syncEnabled": False,
            "supportsApplyEditsWithGlobalIds": False,
            "supportsTruncate": True,
            "layers": [lyr.summary() for lyr in layers],
            "tables": [lyr.summary() for lyr in tables],
            "enableZDefaults": False,
        }


# --------------------------------------------------------------------------- parameters


def _flag(params: dict[str, str], name: str, *, default: bool = False) -> bool:
    value = params.get(name, "").strip().lower()
    if not value:
        return default
    return value in ("true", "1", "yes")


def _whole(params: dict[str, str], name: str, default: int | None) -> Any:
    text = params.get(name, "").strip()
    if not text or text.lower() == "null":
        return default
    if not text.isdigit():
        raise _bad_request(f"'{name}' parameter is invalid")
    return int(text)


def _json_param(params: dict[str, str], name: str) -> Any:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise _bad_request(f"'{name}' parameter is invalid: not JSON") from None


def _object_ids(value: Any, name: str) -> list[int]:
    """``deletes``/``objectIds``: ``"1,2"`` or ``[1, 2]``."""
    if value is None or value == "":
        return []
    parts = value if isinstance(value, list) else str(value).split(",")
    try:
        return [int(str(p).strip()) for p in parts if str(p).strip()]
    except ValueError:
        raise _bad_request(f"'{name}' parameter is invalid") from None


def _form(headers: Any, body: bytes) -> dict[str, str]:
    """Fields of a urlencoded or multipart/form-data body."""
    if not body:
        return {}
    content_type = headers.get("Content-Type") or ""
    if content_type.lower().startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        out: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                out[name] = payload.decode("utf-8", errors="replace")
        return out
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _request_token(headers: Any, params: dict[str, str]) -> str | None:
    for header in ("X-Esri-Authorization", "Authorization"):
        value = headers.get(header) or ""
        if value[:7].lower() == "bearer ":
            return value[7:].strip() or None
    return params.get("token") or None


# --------------------------------------------------------------------------- emulator


@dataclass
class _Token:
    username: str
    expires: float  # POSIX seconds


@dataclass
class _OAuthState:
    client_id: str
    response_type: str
    redirect_uri: str
    state: str | None
    expiration: int  # minutes


class ArcGISEmulator(HTTPEmulator):
    """An ArcGIS Online stand-in serving HTTPS on a daemon thread.

    Use as a context manager (``with ArcGISEmulator() as agol: ...``) or call :meth:`start` /
    :meth:`stop`. Once started, ``url`` is the ``AGOL_URL`` and ``ca_bundle`` the
    ``AGOL_CA_BUNDLE``.
    """

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        org_id: str = DEFAULT_ORG_ID,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not _NAME.match(org_id):
            raise ValueError(f"org id {org_id!r} must be letters and digits")
        self.username = username
        self.password = password
        self.org_id = org_id
        self.host = host
        self.port = port
        self.faults = ArcGISFaults()
        self.requests: list[ArcGISRequest] = []
        self._services: dict[str, _Service] = {}
        self._tokens: dict[str, _Token] = {}
        self._oauth_states: dict[str, _OAuthState] = {}
        self._oauth_codes: dict[str, tuple[str, float]] = {}  # code -> (username, expires)
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> username
        self._lock = threading.RLock()
        self._tls_dir: Path | None = None
        self._cert_path: Path | None = None
        self._http = ServerThread(
            "ArcGIS emulator",
            self._dispatch,
            lambda: json_response(
                500, {"error": {"code": 500, "message": "Internal error", "details": []}}
            ),
            host=host,
            port=port,
        )

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Make a certificate (in a temp dir removed by :meth:`stop`) and serve HTTPS."""
        if not self._http.running:
            self._tls_dir = Path(tempfile.mkdtemp(prefix="arcgis-emulator-"))
            self._cert_path, key_path = make_certificate(self._tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._cert_path, key_path)
            self._http.ssl_context = context
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = self._cert_path = None

    @property
    def url(self) -> str:
        """The ``AGOL_URL``: ``https://127.0.0.1:PORT``."""
        return self._http.url

    @property
    def ca_bundle(self) -> str:
        """The PEM file a client must trust (``GIS(..., ca_bundles=ca_bundle)``)."""
        if self._cert_path is None:
            raise RuntimeError("the ArcGIS emulator is not running: call start() first")
        return str(self._cert_path)

    # ----------------------------------------------------------------- data

    def add_service(
        self,
        service_id: str,
        name: str,
        layers: list[dict],
        *,
        title: str = "",
        owner: str | None = None,
    ) -> None:
        """(Re)create a hosted feature service and its portal item.

        ``layers``: dicts with ``name``; ``fields``, a list of ``{"name", "type"}`` (type
        ``string``, ``integer``, ``small_integer``, ``big_integer``, ``double``, ``single``,
        ``date``, ``guid`` or an ``esriFieldType...`` name; optional ``alias``, ``length``
        and ``nullable``), an ``OBJECTID`` OID field is added unless one is given;
        ``geometry_type``, ``"esriGeometryPoint"``, ``"esriGeometryMultipoint"`` or None (the
        default: a table); ``max_record_count`` (default 2000); ``unique_field``, a unique
        index (default ``id`` when there is such a field; None for none); ``id``, the layer
        id (default: its position); ``features``, initial features as ``applyEdits`` adds
        takes them (ValueError if one is rejected).
        """
        with self._lock:
            service = _Service(service_id, name, self.org_id, owner or self.username, title)
            if not isinstance(layers, list) or not layers:
                raise ValueError(f"service {name!r} needs a non-empty list of layers")
            for position, spec in enumerate(layers):
                layer = _Layer(spec, position, service)
                if layer.id in service.layers:
                    raise ValueError(f"service {name!r}: layer id {layer.id} appears twice")
                service.layers[layer.id] = layer
            for other in self._services.values():
                if other.name.casefold() == name.casefold() and other.id != service_id:
                    raise ValueError(f"another service is already named {name!r}")
            self._services[service_id] = service
        logger.debug(
            "serving service %s (%s) with layers %s",
            service_id,
            name,
            [(lyr.id, lyr.name) for lyr in service.layers.values()],
        )

    def remove_service(self, service_id: str) -> None:
        with self._lock:
            if self._services.pop(service_id, None) is None:
                raise KeyError(f"no service {service_id!r} is served")

    def reset(self) -> None:
        """Remove every service, clear the faults and the request log (tokens stay valid)."""
        with self._lock:
            self._services.clear()
            self.faults = ArcGISFaults()
            self.requests.clear()

    def revoke_tokens(self) -> None:
        """Forget every token issued so far (clients then get 498 ``Invalid token.``)."""
        with self._lock:
            self._tokens.clear()
            self._refresh_tokens.clear()

    @property
    def service_ids(self) -> list[str]:
        with self._lock:
            return list(self._services)

    def _layer(self, service_id: str, layer_id: int) -> _Layer:
        service = self._services.get(service_id)
        if service is None:
            raise KeyError(f"no service {service_id!r} is served")
        layer = service.layers.get(layer_id)
        if layer is None:
            raise KeyError(f"service {service_id!r} has no layer {layer_id}")
        return layer

    def features(self, service_id: str, layer_id: int = 0) -> list[dict]:
        """Stored features (deep copies) in object id order: ``{"attributes", "geometry"}``."""
        with self._lock:
            layer = self._layer(service_id, layer_id)
            return copy.deepcopy([layer.features[oid] for oid in sorted(layer.features)])

    def service_url(self, service_id: str) -> str:
        with self._lock:
            return self._services[service_id].url(self.url)

    def layer_url(self, service_id: str, layer_id: int = 0) -> str:
        with self._lock:
            return self._layer(service_id, layer_id).url(self.url)

    def set_max_record_count(self, service_id: str, layer_id: int, count: int) -> None:
        if not _is_int(count) or count < 1:
            raise ValueError("max_record_count must be a positive integer")
        with self._lock:
            self._layer(service_id, layer_id).max_record_count = count

    def issue_token(self, *, minutes: int = TOKEN_MINUTES_DEFAULT) -> str:
        """A valid token for the emulator's user (for raw HTTP tests)."""
        return self._new_token(self.username, minutes)

    # ----------------------------------------------------------------- HTTP

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        arrived = time.time()
        parts = urlsplit(raw_path)
        path = re.sub(r"/{2,}", "/", unquote(parts.path)).rstrip("/") or "/"
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return self._control(method, path, body)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        params.update(_form(headers, body))
        token = _request_token(headers, params)
        with self._lock:
            known = self._tokens.get(token) if token else None
        user = known.username if known is not None and known.expires > arrived else None

        response = self._answer(method, path, params, headers, token, user)
        error_code = None
        if response.status == 200 and response.content_type.startswith("application/json"):
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                error = json.loads(response.body).get("error")
                error_code = error.get("code") if isinstance(error, dict) else None
        with self._lock:
            self.requests.append(
                ArcGISRequest(
                    method=method,
                    path=path,
                    params={k: v for k, v in params.items() if k not in _SECRET_PARAMS},
                    host=headers.get("Host") or "",
                    status=response.status,
                    time=arrived,
                    error_code=error_code,
                    user=user,
                )
            )
        return response

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: Any,
        token: str | None,
        user: str | None,
    ) -> Response:
        faults = self.faults
        if faults.delay > 0:
            time.sleep(faults.delay)
        is_edit = method == "POST" and path.rsplit("/", 1)[-1].lower() == "applyedits"
        with self._lock:
            faults = self.faults
            if faults.take(is_edit):
                logger.debug("emulated fault %s for %s %s", faults.status, method, path)
                return self._fault_response(faults.status, faults.http_status)
        try:
            return self._route(method, path, params, headers, token, user)
        except _ApiError as exc:
            return exc.response()

    @staticmethod
    def _fault_response(status: int, http_status: int | None = None) -> Response:
        message = _FAULT_MESSAGES.get(status, "Error" if status < 500 else "Internal Server Error")
        return json_response(
            http_status or status,
            {"error": {"code": status, "message": f"{message} (emulated fault)", "details": []}},
        )

    def _route(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: Any,
        token: str | None,
        user: str | None,
    ) -> Response:
        lower = path.lower()
        # login routes: a token, valid or not, is ignored
        if lower == "/sharing/rest/generatetoken":
            return self._generate_token(method, params)
        if lower in ("/sharing/rest/oauth2/authorize", "/sharing/oauth2/authorize"):
            return self._oauth_authorize(params)
        if lower in ("/sharing/oauth2/signin", "/sharing/rest/oauth2/signin"):
            return self._oauth_signin(method, params)
        if lower in ("/sharing/rest/oauth2/token", "/sharing/oauth2/token"):
            return self._oauth_token(params)
        if lower == "/sharing/oauth2/approval":
            return _html(200, "<html><head><title>Approved</title></head><body></body></html>")

        if token is not None and user is None:
            # the portal and ArcGIS Server word it differently (and arcgis looks for both)
            raise _ApiError(498, "Invalid Token" if _SERVICE_PATH.match(path) else "Invalid token.")
        if lower == "/sharing/rest/info":
            return json_response(200, self._info())
        if lower == "/sharing/rest":
            return json_response(200, {"currentVersion": CURRENT_VERSION})
        if lower == "/sharing/rest/portals/self":
            return json_response(200, self._portal_self(user))
        if lower == f"/{self.org_id.lower()}/arcgis/rest/info":
            return json_response(
                200,
                self._info()
                | {"currentVersion": SERVICE_VERSION, "fullVersion": str(SERVICE_VERSION)},
            )
        if not (lower.startswith("/sharing/") or _SERVICE_PATH.match(path)):
            return json_response(
                404,
                {"error": {"code": 404, "message": "Not Found", "details": [f"Not found: {path}"]}},
            )
        if user is None:
            raise _ApiError(499, "Token Required")

        if lower == "/sharing/rest/community/self":
            return json_response(200, self._user_json(user, full=True))
        user_match = _USER_PATH.match(path)
        if user_match:
            wanted = user_match.group(1)
            if wanted.casefold() != self.username.casefold():
                raise _ApiError(
                    400, "User not found", [f"User '{wanted}' does not exist or is inaccessible."]
                )
            return json_response(200, self._user_json(self.username, full=wanted == user))
        item_match = _ITEM_PATH.match(path)
        if item_match:
            with self._lock:
                service = self._services.get(item_match.group(1))
                if service is None:
                    raise _ApiError(400, "Item does not exist or is inaccessible.")
                if item_match.group(2):
                    return json_response(200, {})
                return json_response(200, service.item(self.url))
        service_match = _SERVICE_PATH.match(path)
        if service_match:
            return self._service_route(method, service_match, params)
        raise _ApiError(400, "Invalid URL", ["Invalid URL"])

    # ----------------------------------------------------------------- portal

    def _info(self) -> dict:
        return {
            "owningSystemUrl": self.url,
            "authInfo": {
                "tokenServicesUrl": f"{self.url}/sharing/rest/generateToken",
                "isTokenBasedSecurity": True,
            },
        }

    def _portal_self(self, user: str | None) -> dict:
        host = urlsplit(self.url).netloc
        out: dict[str, Any] = {
            "id": self.org_id,
            "name": "ArcGIS emulator organization",
            "portalName": "ArcGIS Online",
            "isPortal": False,
            "portalMode": "multitenant",
            "urlKey": "emulator",
            "customBaseUrl": host,
            "portalHostname": host,
            "currentVersion": CURRENT_VERSION,
            "supportsOAuth": True,
            "allSSL": True,
            "httpPort": 80,
            "httpsPort": urlsplit(self.url).port or 443,
            "culture": "en",
            "region": "US",
            "units": "english",
            "access": "private",
            "canSearchPublic": True,
            "helperServices": {},
            "subscriptionInfo": {"type": "In House", "state": "active"},
            "defaultExtent": {
                "xmin": -180,
                "ymin": -90,
                "xmax": 180,
                "ymax": 90,
                "spatialReference": dict(_SPATIAL_REFERENCE),
            },
        }
        if user is not None:
            out["user"] = self._user_json(user, full=True)
        return out

    def _user_json(self, username: str, *, full: bool) -> dict:
        out: dict[str, Any] = {
            "username": username,
            "udn": None,
            "id": hashlib.sha256(username.casefold().encode()).hexdigest()[:32],
            "fullName": "Emulator User",
            "firstName": "Emulator",
            "lastName": "User",
            "description": None,
            "tags": [],
            "culture": "en",
            "region": "US",
            "units": "english",
            "thumbnail": None,
            "access": "org",
            "created": 1_700_000_000_000,
            "modified": 1_700_000_000_000,
            "provider": "arcgis",
        }
        if full:
            out |= {
                "email": f"{username}@example.com",
                "orgId": self.org_id,
                "role": "org_admin",
                "privileges": [
                    "portal:admin:viewItems",
                    "portal:admin:updateItems",
                    "portal:admin:deleteItems",
                    "portal:user:createItem",
                    "features:user:edit",
                    "features:user:fullEdit",
                ],
                "level": "2",
                "userLicenseTypeId": "creatorUT",
                "userType": "both",
                "disabled": False,
                "groups": [],
                "storageUsage": 0,
                "storageQuota": 2_199_023_255_552,
                "mfaEnabled": False,
            }
        return out

    # ----------------------------------------------------------------- login

    def _check_credentials(self, username: str | None, password: str | None) -> bool:
        return (
            username is not None
            and password is not None
            and username.casefold() == self.username.casefold()
            and hmac.compare_digest(password.encode(), self.password.encode())
        )

    def _new_token(self, username: str, minutes: int) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(username, time.time() + minutes * 60)
        return token

    @staticmethod
    def _minutes(text: str | None) -> int:
        with contextlib.suppress(TypeError, ValueError):
            minutes = int(float(text or ""))
            if minutes > 0:
                return min(minutes, TOKEN_MINUTES_MAX)
        return TOKEN_MINUTES_DEFAULT

    def _generate_token(self, method: str, params: dict[str, str]) -> Response:
        if method != "POST":
            raise _ApiError(405, "Method not supported.", ["generateToken is POST only"])
        if not self._check_credentials(params.get("username"), params.get("password")):
            raise _ApiError(400, "Unable to generate token.", ["Invalid username or password."])
        minutes = self._minutes(params.get("expiration"))
        token = self._new_token(self.username, minutes)
        return json_response(
            200,
            {"token": token, "expires": int((time.time() + minutes * 60) * 1000), "ssl": True},
        )

    def _oauth_page(self, info: dict, title: str = "Sign In") -> Response:
        # the JSON stays on one line: arcgis finds it with re.search(r"\{.*\}", page)
        return _html(
            200,
            "<!DOCTYPE html>\n<html>\n<head>\n"
            f"<title>{title}</title>\n"
            f"<script>\nvar oAuthInfo = {json.dumps(info)};\n</script>\n"
            "</head>\n<body></body>\n</html>\n",
        )

    def _redirect_allowed(self, redirect_uri: str) -> bool:
        if redirect_uri == _OOB:
            return True
        parts = urlsplit(redirect_uri)
        return parts.scheme == "https" and parts.netloc == urlsplit(self.url).netloc

    def _oauth_authorize(self, params: dict[str, str]) -> Response:
        client_id = params.get("client_id", "")
        response_type = params.get("response_type", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in OAUTH_CLIENT_IDS:
            return _html(400, "<html><body>Error: Invalid client_id</body></html>")
        if response_type not in ("token", "code"):
            return _html(400, "<html><body>Error: Invalid response_type</body></html>")
        if not self._redirect_allowed(redirect_uri):
            return _html(400, "<html><body>Error: Invalid redirect_uri</body></html>")
        oauth_state = secrets.token_urlsafe(24)
        with self._lock:
            self._oauth_states[oauth_state] = _OAuthState(
                client_id,
                response_type,
                redirect_uri,
                params.get("state"),
                self._minutes(params.get("expiration")),
            )
        return self._oauth_page(
            {
                "oauth_state": oauth_state,
                "client_id": client_id,
                "appTitle": "ArcGIS API for Python",
                "locale": "en-us",
                "persistOption": True,
            }
        )

    def _oauth_signin(self, method: str, params: dict[str, str]) -> Response:
        if method != "POST":
            return _html(405, "<html><body>Error: POST only</body></html>")
        oauth_state = params.get("oauth_state", "")
        with self._lock:
            pending = self._oauth_states.get(oauth_state)
        if pending is None:
            return _html(400, "<html><body>Error: Invalid oauth_state</body></html>")
        if not self._check_credentials(params.get("username"), params.get("password")):
            return self._oauth_page(
                {"oauth_state": oauth_state, "messages": ["Invalid username or password."]}
            )
        with self._lock:
            self._oauth_states.pop(oauth_state, None)
        minutes = (
            self._minutes(params.get("expiration"))
            if params.get("expiration")
            else (pending.expiration)
        )
        if pending.response_type == "token":
            token = self._new_token(self.username, minutes)
            fragment = {
                "access_token": token,
                "expires_in": str(minutes * 60),
                "username": self.username,
                "ssl": "true",
            }
            if pending.state is not None:
                fragment["state"] = pending.state
            target = pending.redirect_uri
            if target == _OOB:
                target = f"{self.url}/sharing/oauth2/approval"
            location = f"{target}#{urlencode(fragment, quote_via=quote)}"
            return _html(302, "", {"Location": location})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._oauth_codes[code] = (self.username, time.time() + 600)
        if pending.redirect_uri == _OOB:
            page = self._oauth_page({"code": code}, title=f"SUCCESS code={code}")
            return page
        query = {"code": code} | ({"state": pending.state} if pending.state else {})
        return _html(302, "", {"Location": f"{pending.redirect_uri}?{urlencode(query)}"})

    def _oauth_token(self, params: dict[str, str]) -> Response:
        grant = params.get("grant_type", "")
        username: str | None = None
        if grant == "authorization_code":
            with self._lock:
                entry = self._oauth_codes.pop(params.get("code", ""), None)
            if entry is not None and entry[1] > time.time():
                username = entry[0]
        elif grant == "refresh_token":
            with self._lock:
                username = self._refresh_tokens.get(params.get("refresh_token", ""))
        if username is None:
            return json_response(
                400, {"error": "invalid_grant", "error_description": "Invalid grant"}
            )
        minutes = self._minutes(params.get("expiration"))
        token = self._new_token(username, minutes)
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[refresh] = username
        return json_response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": minutes * 60,
                "username": username,
                "refresh_token": refresh,
                "ssl": True,
            },
        )

    # ----------------------------------------------------------------- feature services

    def _service_route(self, method: str, match: re.Match, params: dict[str, str]) -> Response:
        if match.group("org").casefold() != self.org_id.casefold():
            raise _ApiError(400, "Invalid URL", ["Invalid URL"])
        admin = bool(match.group("admin"))
        op = (match.group("op") or "").lower()
        with self._lock:
            service = next(
                (
                    s
                    for s in self._services.values()
                    if s.name.casefold() == match.group("name").casefold()
                ),
                None,
            )
            if service is None:
                raise _ApiError(400, "Invalid URL", ["Service not found"])
            if match.group("layer") is None:
                if op == "" or (admin and op == "refresh"):
                    if op == "refresh":
                        return json_response(200, {"success": True})
                    return json_response(
                        200,
                        service.properties()
                        | (
                            {
                                "adminServiceInfo": {
                                    "name": service.name,
                                    "type": "FeatureServer",
                                    "status": "Started",
                                }
                            }
                            if admin
                            else {}
                        ),
                    )
                raise _ApiError(400, "Invalid URL", ["Invalid URL"])
            layer = service.layers.get(int(match.group("layer")))
            if layer is None:
                raise _ApiError(400, "Invalid URL", [f"Layer {match.group('layer')} not found"])
            if admin:
                return self._admin_layer(method, op, layer, params)
            if op == "":
                return json_response(200, layer.properties())
            if op == "query":
                return json_response(200, layer.query(params))
            if op in ("applyedits", "addfeatures", "updatefeatures", "deletefeatures"):
                if method != "POST":
                    raise _ApiError(
                        400,
                        "Unable to complete operation.",
                        ["This operation is only supported via POST."],
                    )
                return json_response(200, self._edit(op, layer, params))
        raise _ApiError(400, "Invalid URL", ["Invalid URL"])

    def _admin_layer(self, method: str, op: str, layer: _Layer, params: dict[str, str]) -> Response:
        if op == "":
            return json_response(
                200,
                layer.properties()
                | {
                    "adminLayerInfo": {
                        "tableName": f"{layer.name}_{layer.id}",
                        "geometryField": {"name": "Shape"},
                    }
                },
            )
        if op == "refresh":
            return json_response(200, {"success": True})
        if op == "truncate":
            if method != "POST":
                raise _ApiError(
                    400,
                    "Unable to complete operation.",
                    ["This operation is only supported via POST."],
                )
            if _flag(params, "async"):
                raise _bad_request("The emulator supports synchronous truncate only.")
            if not _flag(params, "attachmentOnly"):
                layer.features = {}
                layer.last_edit = int(time.time() * 1000)
            return json_response(200, {"success": True})
        raise _ApiError(400, "Invalid URL", ["Invalid URL"])

    def _edit(self, op: str, layer: _Layer, params: dict[str, str]) -> dict:
        """applyEdits and friends; call with the lock held."""
        rollback = _flag(params, "rollbackOnFailure", default=True)
        if _flag(params, "useGlobalIds"):
            raise _bad_request("The emulator's layers have no GlobalID field.")
        error_values = set(self.faults.error_ids)
        adds: list = []
        updates: list = []
        deletes: list[int] = []
        if op == "applyedits":
            adds = _json_param(params, "adds") or []
            updates = _json_param(params, "updates") or []
            raw_deletes = params.get("deletes", "").strip()
            if raw_deletes.startswith("["):
                deletes = _object_ids(_json_param(params, "deletes"), "deletes")
            else:
                deletes = _object_ids(raw_deletes, "deletes")
        elif op == "addfeatures":
            adds = _json_param(params, "features") or []
        elif op == "updatefeatures":
            updates = _json_param(params, "features") or []
        else:  # deletefeatures
            where = params.get("where")
            object_ids = params.get("objectIds")
            if not (where or "").strip() and not (object_ids or "").strip():
                raise _bad_request("'where' or 'objectIds' parameter is required")
            rows = layer.select(where, object_ids)
            deletes = [row["attributes"][layer.oid_field] for row in rows]
        if not all(isinstance(v, list) for v in (adds, updates)):
            raise _bad_request("'adds' and 'updates' must be JSON arrays of features")
        results = layer.apply_edits(
            adds, updates, deletes, rollback=rollback, error_values=error_values
        )
        if op == "addfeatures":
            return {"addResults": results["addResults"]}
        if op == "updatefeatures":
            return {"updateResults": results["updateResults"]}
        if op == "deletefeatures":
            if not _flag(params, "returnDeleteResults", default=True):
                return {"success": all(r["success"] for r in results["deleteResults"])}
            return {"deleteResults": results["deleteResults"]}
        return results

    def _control_error(self, status: int, message: str) -> Response:
        return json_response(status, {"error": {"code": status, "message": message, "details": []}})

    def _control_extra(self, method: str, path: str) -> Response | None:
        if path == "/_emulator/services" and method == "GET":
            return json_response(200, self.service_ids)
        return None


# --------------------------------------------------------------------------- example data

EXAMPLE_SERVICE_ID = "e6eb94d1e7cc45c2ac452af6ae6aa534"
EXAMPLE_SERVICE_NAME = "signals_example"
EXAMPLE_LAYERS: list[dict] = [
    {
        "name": "signals",
        "geometry_type": "esriGeometryPoint",
        "fields": [
            {"name": "id", "type": "string", "length": 24},
            {"name": "signal_id", "type": "integer"},
            {"name": "location_name", "type": "string"},
            {"name": "signal_status", "type": "string"},
            {"name": "modified_date", "type": "date"},
        ],
        "features": [
            {
                "attributes": {
                    "id": "5d7964fbb5a7d9001645a3f1",
                    "signal_id": 1,
                    "location_name": "CONGRESS AVE / 6TH ST",
                    "signal_status": "TURNED_ON",
                    "modified_date": 1_772_442_900_000,
                },
                "geometry": {"x": -97.7424, "y": 30.2686},
            }
        ],
    },
    {
        "name": "signal_notes",
        "fields": [{"name": "id", "type": "string"}, {"name": "note", "type": "string"}],
    },
]


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.arcgis",
        description="Serve a local ArcGIS Online stand-in (HTTPS) with an example service.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    emulator = ArcGISEmulator(
        username=args.username, password=args.password, host=args.host, port=args.port
    )
    emulator.add_service(
        EXAMPLE_SERVICE_ID, EXAMPLE_SERVICE_NAME, EXAMPLE_LAYERS, title="Traffic Signals (example)"
    )
    emulator.start()
    print(f"AGOL_URL={emulator.url}", flush=True)
    print(f"AGOL_USERNAME={emulator.username}", flush=True)
    print(f"AGOL_PASSWORD={emulator.password}", flush=True)
    print(f"AGOL_CA_BUNDLE={emulator.ca_bundle}", flush=True)
    print(f"service {EXAMPLE_SERVICE_ID} at {emulator.service_url(EXAMPLE_SERVICE_ID)}", flush=True)
    emulator.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
