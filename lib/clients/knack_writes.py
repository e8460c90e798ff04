"""Writes to a Knack app's object records (``POST``, ``PUT``, ``DELETE`` on
``/objects/{object}/records``), on the Knack client's session, rate limit and retry policy.

Retries never apply a write twice. An update (``PUT`` of the same values) and a delete
(a 404: it is gone, as asked) are safe to repeat. A create is not: after a
failure that Knack may have applied (a 5xx or a lost answer, not a 429), the record is
looked for by its match field before the next attempt, and one found is the created
record. A value Knack cannot take (400) is :class:`WriteRefused` with Knack's message; any other
4xx is a :class:`~lib.errors.KnackAPIError`. Every attempt counts against ``budget``
(the run's ``max_requests_per_run``): a write that would pass it raises
:class:`BudgetSpent` instead of being sent.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from lib.clients.knack import KnackClient
from lib.clients.knack_http import knack_message
from lib.clients.retry import GaveUp, Transient
from lib.errors import KnackAPIError


class WriteRefused(Exception):
    """Knack refused a value (HTTP 400): its message, naming the field."""


class BudgetSpent(KnackAPIError):
    """The run's request budget (``max_requests_per_run``) is spent."""


class KnackWriter(KnackClient):
    """A Knack client that also writes records of objects (the app's REST API key)."""

    budget: int | None = None  # at most this many requests by this client

    def create(
        self, object_key: str, values: dict[str, Any], *, match_field: str, match_value: str
    ) -> dict[str, Any]:
        """Create a record; the record Knack answers (or the one a lost answer created)."""
        route = f"/objects/{object_key}/records"
        body = {**values, match_field: match_value}
        maybe_applied = False

        def attempt() -> requests.Response | dict[str, Any]:
            nonlocal maybe_applied
            if maybe_applied:
                found = self.find(object_key, match_field, match_value)
                if found:
                    return found[0]
            maybe_applied = True
            try:
                return self._send("POST", route, body)
            except Transient as e:
                maybe_applied = e.status != 429  # a 429 is answered before anything is done
                raise

        return self._written("POST", route, attempt)

    def update(self, object_key: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Update a record's ``values``; the record Knack answers."""
        route = f"/objects/{object_key}/records/{record_id}"
        return self._written("PUT", route, lambda: self._send("PUT", route, values))

    def delete(self, object_key: str, record_id: str) -> None:
        """Delete a record; one already gone (a retry after Knack applied it, or deleted by
        someone else) counts as deleted: what was asked for is so."""
        route = f"/objects/{object_key}/records/{record_id}"

        def attempt() -> requests.Response | dict[str, Any]:
            res = self._send("DELETE", route, None)
            return {"delete": True} if res.status_code == 404 else res

        self._written("DELETE", route, attempt)

    def find(self, object_key: str, field: str, value: str) -> list[dict[str, Any]]:
        """The records whose ``field`` is ``value`` (one listing request)."""
        filters = {"match": "and", "rules": [{"field": field, "operator": "is", "value": value}]}
        self._spend()
        route = f"/objects/{object_key}/records"
        params = {"filters": json.dumps(filters, separators=(",", ":")), "rows_per_page": 1000}
        body = self._get(route, params, public=False)
        rows = body.get("records") if isinstance(body, dict) else None
        return [r for r in rows or [] if isinstance(r, dict) and r.get(field + "_raw") == value]

    # --- HTTP ------------------------------------------------------------------------

    def _spend(self) -> None:
        if self.budget is not None and self.stats.requests >= self.budget:
            raise BudgetSpent(
                f"max_requests_per_run ({self.budget}) reached: the writes left are done by "
                "the next run (raise max_requests_per_run in params to do more in one run)"
            )

    def _send(self, method: str, route: str, body: dict[str, Any] | None) -> requests.Response:
        """One attempt of a write: Transient for a 429, a 5xx, a timeout or a lost answer."""
        self._spend()
        headers = {**self._headers(public=False), "Content-Type": "application/json"}
        return self._answered(
            lambda: self._session.request(
                method,
                self.api_url + route,
                data=None if body is None else json.dumps(body),
                headers=headers,
                timeout=self.timeout,
            )
        )

    def _written(self, method: str, route: str, attempt: Any) -> dict[str, Any]:
        """``attempt`` under the retry policy; the record (or body) Knack answered."""
        try:
            res = self.retry.call(attempt, what=f"{method} {route}", stats=self.stats)
        except GaveUp as e:
            raise KnackAPIError(
                f"Knack kept failing {method} {route}: {e.last} after {e.attempts} attempts; "
                "rerun later: a rerun writes only what is still missing or different"
            ) from None
        if isinstance(res, dict):
            return res
        if res.status_code == 400:
            raise WriteRefused(knack_message_by_field(res))
        if not res.ok:
            raise KnackAPIError(
                f"Knack refused {method} {route}: HTTP {res.status_code}: {knack_message(res)}"
            )
        body = res.json()
        return body if isinstance(body, dict) else {}


def knack_message_by_field(res: requests.Response) -> str:
    """Knack's 400 body as one line: ``field_N: message; ...``."""
    try:
        errors = res.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    if not isinstance(errors, list) or not errors:
        return knack_message(res)
    return "; ".join(
        (f"{e['field']}: " if isinstance(e, dict) and e.get("field") else "")
        + str(e.get("message", e) if isinstance(e, dict) else e)
        for e in errors
    )
