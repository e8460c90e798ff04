"""ArcGIS client: the login and one feature layer (or table), through the ArcGIS API for
Python, each call under the retry policy.

The library raises bare Exceptions; a call is retried when its failure is transient: a
timeout, a lost connection, a 429 or 5xx answer (the library's "Error Code: 5xx" or
"Error Code: 429", a gateway's HTML, its own retries exhausted: "too many 429 error
responses"). Anything else fails at once with the library's message. The library retries
500/502/503/504 and 429 a few times itself before this policy sees a failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests

from lib import config
from lib.clients.retry import (
    Counted,
    GaveUp,
    RequestStats,
    RetryPolicy,
    Transient,
    one_line,
    retryable_status,
)
from lib.errors import ArcGISError, ConfigError, KnackNbError

TIMEOUT = 120  # seconds per request
ATTEMPTS = 5  # per call
WHERE_CHUNK = 200  # matching values per `IN (...)` query
SYSTEM = {"esriFieldTypeOID", "esriFieldTypeGlobalID", "esriFieldTypeGeometry"}
# how the library words a transient failure: a 5xx or 429 error code, a gateway's HTML,
# its own retries exhausted, a timeout
_TRANSIENT = re.compile(
    r"Error Code: (?:5\d\d|429)|\b50[0-4]\b|Too Many Requests|Bad Gateway"
    r"|Service Unavailable|Max retries exceeded|timed? ?out",
    re.I,
)
_STATUS = re.compile(r"Error Code: (\d{3})|too many (\d{3}) error responses", re.I)


class Layer(Counted):
    """One feature layer or table of an item: logged in with ``AGOL_USERNAME`` and
    ``AGOL_PASSWORD`` at ``AGOL_URL``; its name, geometry type and fields; counts of the
    requests made (``requests``, ``retries``)."""

    def __init__(self, *, service_id: str, layer_id: int, retry: RetryPolicy | None = None) -> None:
        from arcgis.gis import GIS  # a heavy import: only when publishing to ArcGIS

        creds = config.require_env(
            "AGOL_USERNAME",
            "AGOL_PASSWORD",
            purpose="publishing to ArcGIS Online needs a user and its password",
        )
        self.retry = retry or RetryPolicy(attempts=ATTEMPTS)
        self.stats = RequestStats()
        url = config.agol_url()
        options: dict[str, Any] = {"timeout": TIMEOUT}
        ca_bundle = config.agol_ca_bundle()
        if ca_bundle:
            options["ca_bundles"] = ca_bundle
        self.gis = self.call(
            f"logging in to {url}",
            GIS,
            url,
            creds["AGOL_USERNAME"],
            creds["AGOL_PASSWORD"],
            **options,
        )
        item = self.call(f"finding item {service_id}", self.gis.content.get, service_id)
        if item is None:
            raise ConfigError(
                f"no item {service_id} on {url} that AGOL_USERNAME can see: "
                "check agol.service_id in the params file and the item's sharing"
            )
        self.layer = _pick(item, service_id, layer_id)
        props = self.layer.properties
        self.name = str(props.get("name", ""))
        self.geometry_type: str | None = props.get("geometryType") or None
        self.oid_field = str(props.get("objectIdField") or "OBJECTID")
        self.fields: dict[str, str] = {
            f["name"]: f["type"]
            for f in props.get("fields", [])
            if f["type"] not in SYSTEM and f["name"] != self.oid_field
        }
        # field names are case-insensitive in ArcGIS: "Signal_ID" takes signal_id
        self.names = {name.lower(): name for name in self.fields}

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        before_retry: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``fn(*args, **kwargs)`` under the retry policy; ``before_retry`` runs before each
        retry (e.g. to find out what a failed request did after all). Raises ArcGISError
        when ArcGIS refuses or keeps failing."""

        def attempt() -> Any:
            try:
                return fn(*args, **kwargs)
            except KnackNbError:
                raise
            except Exception as e:  # noqa: BLE001 - the library raises bare Exceptions
                failure = transient(e)
                if failure is None:
                    raise ArcGISError(f"ArcGIS failed {what}: {one_line(e)}") from None
                raise failure from None

        try:
            return self.retry.call(attempt, what=what, stats=self.stats, before_retry=before_retry)
        except GaveUp as e:
            raise ArcGISError(
                f"ArcGIS failed {what} after {e.attempts} attempts: {e.last.reason}"
            ) from None

    def existing(self, match: str, values: list[Any] | None) -> dict[Any, list[int]]:
        """Matching value → object ids of the layer's features: all of them (``values``
        None) or those with one of ``values``."""
        wheres = (
            ["1=1"]
            if values is None
            else [
                f"{match} IN ({', '.join(_sql(v) for v in values[i : i + WHERE_CHUNK])})"
                for i in range(0, len(values), WHERE_CHUNK)
            ]
        )
        found: dict[Any, list[int]] = {}
        for where in wheres:
            answer = self.call(
                f"querying the layer's {match} values",
                self.layer.query,
                where=where,
                out_fields=f"{self.oid_field},{match}",
                return_geometry=False,
                # arcgis pages by object ids in pages of 200 unless
                # ordered; ordered, it pages by resultOffset
                order_by_fields=f"{self.oid_field} ASC",
            )
            for feature in answer.features:
                attrs = feature.attributes
                found.setdefault(attrs.get(match), []).append(attrs[self.oid_field])
        for oids in found.values():
            oids.sort()
        return found

    def count(self) -> int:
        """How many features (rows of a table) the layer holds: a count-only query."""
        answer = self.call(
            "counting the layer's features",
            self.layer.query,
            where="1=1",
            return_count_only=True,
        )
        return int(answer)

    def present(self, oids: list[int]) -> set[int]:
        """Which of these object ids the layer holds."""
        where = f"{self.oid_field} IN ({', '.join(str(o) for o in oids)})"
        answer = self.call(
            "querying object ids",
            self.layer.query,
            where=where,
            out_fields=self.oid_field,
            return_geometry=False,
            order_by_fields=f"{self.oid_field} ASC",
        )
        return {feature.attributes[self.oid_field] for feature in answer.features}

    def delete(self, oids: list[int]) -> dict[str, Any]:
        """Delete features by object id, through a where clause: a retry is harmless."""
        where = f"{self.oid_field} IN ({', '.join(str(o) for o in oids)})"
        return self.call("deleting features", self.layer.delete_features, where=where)


def transient(e: Exception) -> Transient | None:
    """``e`` as a failure worth another attempt, or None when it is not one."""
    if isinstance(e, requests.Timeout | requests.ConnectionError):
        return Transient(one_line(e))
    if isinstance(e, requests.HTTPError):
        response = e.response
        if response is not None and retryable_status(response.status_code):
            return Transient(one_line(e), status=response.status_code, headers=response.headers)
        return None
    text = str(e)
    if not _TRANSIENT.search(text):
        return None
    found = _STATUS.search(text)
    status = int(found.group(1) or found.group(2)) if found else None
    return Transient(one_line(e), status=status)


def _pick(item: Any, service_id: str, layer_id: int) -> Any:
    """The layer or table of ``item`` whose id is ``layer_id``."""
    candidates = list(item.layers or []) + list(item.tables or [])
    for layer in candidates:
        if layer.properties.get("id") == layer_id:
            return layer
    ids = ", ".join(str(c.properties.get("id")) for c in candidates) or "none"
    raise ConfigError(
        f"item {service_id} has no layer or table {layer_id} (it has: {ids}); "
        "fix agol.layer_id in the params file"
    )


def _sql(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
