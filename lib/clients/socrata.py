"""Socrata client: sodapy set up from the environment, each call under the retry policy.

429 and 5xx answers, timeouts and lost connections are retried (``Retry-After`` honoured);
any other error answer fails at once with Socrata's message. Publishing to a dataset and
backing one up both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from sodapy import Socrata

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
from lib.errors import SocrataError

TIMEOUT = 120  # seconds; sodapy's default of 10 is too short for 1,000-row upserts
ATTEMPTS = 5  # per call (an upsert is idempotent)
ROW_ID = "id"  # the dataset's column that holds the Knack record id
READ_PAGE = 50_000  # rows per page when reading the dataset's ids


class Client(Counted):
    """sodapy (``soda``) with the retry policy and counts (``requests``, ``retries``)."""

    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        creds = config.require_env(
            "SOCRATA_APP_TOKEN",
            "SOCRATA_API_KEY_ID",
            "SOCRATA_API_KEY_SECRET",
            purpose="publishing to Socrata needs an app token and an API key",
        )
        url = urlsplit(config.socrata_url())
        adapter = None
        if url.scheme == "http":  # a local stand-in; the real portal is HTTPS
            adapter = {"prefix": "http://", "adapter": requests.adapters.HTTPAdapter()}
        self.soda = Socrata(
            url.netloc,
            creds["SOCRATA_APP_TOKEN"],
            username=creds["SOCRATA_API_KEY_ID"],
            password=creds["SOCRATA_API_KEY_SECRET"],
            timeout=TIMEOUT,
            session_adapter=adapter,
        )
        self.retry = retry or RetryPolicy(attempts=ATTEMPTS)
        self.stats = RequestStats()

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` (a ``soda`` method) under the retry policy; ``what``
        names it in messages. Raises SocrataError when Socrata refuses or keeps failing."""

        def attempt() -> Any:
            try:
                return fn(*args, **kwargs)
            except requests.HTTPError as e:
                status = e.response.status_code if e.response is not None else 0
                if retryable_status(status):
                    raise Transient(
                        one_line(e), status=status, headers=e.response.headers
                    ) from None
                raise SocrataError(f"Socrata refused {what}: {one_line(e)}") from None
            except (requests.Timeout, requests.ConnectionError) as e:
                raise Transient(str(e)) from None

        try:
            return self.retry.call(attempt, what=what, stats=self.stats)
        except GaveUp as e:
            if e.last.status is None:
                raise SocrataError(
                    f"Socrata did not answer {what} after {e.attempts} attempts "
                    f"({e.last.reason}); check SOCRATA_URL or retry later"
                ) from None
            raise SocrataError(f"Socrata refused {what}: {e.last.reason}") from None

    def close(self) -> None:
        self.soda.close()


def dataset_columns(client: Client, resource_id: str) -> dict[str, str]:
    """The dataset's columns: field name → type (``dataTypeName``), in the dataset's order;
    Socrata's own (``:@computed_region_...``, hidden) left out: nothing publishes to them."""
    metadata = client.call("reading the dataset's columns", client.soda.get_metadata, resource_id)
    return {
        c["fieldName"]: c.get("dataTypeName", "text")
        for c in metadata["columns"]
        if not str(c.get("fieldName", ":")).startswith(":")
    }


def dataset_ids(client: Client, resource_id: str) -> set[str]:
    """Every row id (``ROW_ID``) of the dataset, read in pages of ``READ_PAGE``."""
    ids: set[str] = set()
    offset = 0
    while True:
        page = client.call(
            "reading the dataset's ids",
            client.soda.get,
            resource_id,
            select=ROW_ID,
            order=ROW_ID,
            limit=READ_PAGE,
            offset=offset,
        )
        if not page:  # the end: a server may cap $limit, so a short page is not the end
            return ids
        ids.update(r[ROW_ID] for r in page if ROW_ID in r)
        offset += len(page)
