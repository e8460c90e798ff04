"""Knack API client: the HTTP done well (timeouts, the retry policy, a rate limit, paging
that says when a listing cannot be trusted), and Knack's filter syntax.

knackpy serves for the metadata model and record formatting; its own HTTP retries 4xx,
ignores 429 and drops its timeout when paging, so requests are made here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from lib import config
from lib.clients.knack_http import (
    RateLimiter,
    json_body,
    knack_message,
    whole_number,
)
from lib.clients.knack_pages import (
    HOLE_RETRIES,
    PAGE_LOOKAHEAD,
    PAGE_WORKERS,
    Listing,
    holes_in,
    in_order,
)
from lib.clients.retry import (
    Counted,
    GaveUp,
    RequestStats,
    RetryPolicy,
    Transient,
    retryable_status,
)
from lib.errors import ConfigError, KnackAPIError, MissingCredentialError
from lib.ids import IdSet
from lib.redact import redact

logger = logging.getLogger(__name__)

MAX_ROWS_PER_PAGE = 1000  # the most the Knack API returns in one page
PUBLIC_API_KEY = "knack"  # what knackpy sends for public views when there is no key
DEFAULT_REQUESTS_PER_SECOND = 8.0  # stay under Knack's 10 with room for other clients


class KnackClient(Counted):
    """A small client for one Knack app.

    ``api_url`` and ``api_key`` default to ``KNACK_API_URL`` and ``KNACK_API_KEY``.
    """

    def __init__(
        self,
        *,
        app_id: str,
        api_url: str | None = None,
        api_key: str | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),  # (connect, read) seconds
        retry: RetryPolicy | None = None,
        requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND,
    ) -> None:
        self.app_id = app_id
        self.api_url = (api_url or config.knack_api_url()).rstrip("/")
        self._api_key = api_key if api_key is not None else config.knack_api_key()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self.limiter = RateLimiter(requests_per_second)
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=PAGE_WORKERS * 2)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:  # never show the key, nor a password in the URL
        return f"KnackClient(app_id={self.app_id!r}, api_url={redact(self.api_url)!r})"

    def close(self) -> None:
        self._session.close()

    # --- endpoints -------------------------------------------------------------------

    def get_metadata(self) -> dict[str, Any]:
        """The app's metadata: the ``application`` member of ``GET /applications/{id}``."""
        body = self._get(f"/applications/{self.app_id}")
        app = body.get("application") if isinstance(body, dict) else None
        if not isinstance(app, dict):
            raise KnackAPIError(
                f"Knack's metadata answer for app {self.app_id} has no `application` object "
                f"(keys: {sorted(body) if isinstance(body, dict) else type(body).__name__}); "
                f"check KNACK_API_URL ({self.api_url}) and the app id in params"
            )
        if app.get("id") not in (None, self.app_id):
            raise KnackAPIError(
                f"Knack answered with the metadata of app {app.get('id')}, not {self.app_id}"
            )
        return app

    def list_records(
        self,
        container: str,
        *,
        scene: str | None = None,
        filters: dict[str, Any] | None = None,
        on_page: Callable[[int], None] | None = None,
        on_records: Callable[[list[dict[str, Any]]], None] | None = None,
        on_estimate: Callable[[int], None] | None = None,
    ) -> Listing:
        """Every record of an object (``object_N``) or a view (``view_N`` in ``scene``).

        Page 1 gives Knack's estimate of the page count; the other pages are fetched
        concurrently under the rate limit (at most ``PAGE_LOOKAHEAD`` ahead of the one being
        handled), then further pages one by one until an empty page (``total_records`` is
        only an estimate). An empty page with records after it is a hole (Knack has
        answered so): it is asked again, and a hole that stays is reported in
        :attr:`Listing.holes`, so that nobody takes "not in this listing" for "deleted".
        A page that brings no new id (Knack has answered the same page for every page
        number) is asked again too; if it stays so, the listing stops there, reported in
        :attr:`Listing.repeated`: it ends, never loops. Records are de-duplicated by id,
        keeping the first occurrence; ``on_page`` is called with each page's row count
        (from the fetching threads).

        With ``on_records``, each page's new records are given to it as the page arrives,
        in page order, in the calling thread, and not kept: :attr:`Listing.records` is then
        empty and memory holds only the ids seen and a few pages.

        ``on_estimate`` is called once, in the calling thread, with Knack's estimate of the
        record count (page 1's ``total_records``) before any record is handled: e.g. a
        progress bar's total (``bar.set_total``).
        """
        route, public = self._records_route(container, scene)
        params: dict[str, Any] = {"rows_per_page": MAX_ROWS_PER_PAGE}
        if filters:
            params["filters"] = json.dumps(filters, separators=(",", ":"))

        def fetch(n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            body = self._get(route, {**params, "page": n}, public=public)
            rows = body.get("records") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise KnackAPIError(f"Knack's answer to GET {route} page {n} has no records list")
            if on_page is not None:
                on_page(len(rows))
            return body, rows

        def page(n: int) -> list[dict[str, Any]]:
            return fetch(n)[1]

        seen = IdSet()  # ~12 bytes an id: the listing of a large container keeps them all
        kept: list[dict[str, Any]] = []
        missing_id: list[dict[str, Any]] = []
        sizes: dict[int, int] = {}  # page number -> rows (0 for a repeated page: none new)
        repeated = 0

        def brings_new(rows: list[dict[str, Any]]) -> bool:
            return any(
                isinstance(r, dict)
                and isinstance(r.get("id"), str)
                and r["id"]
                and r["id"] not in seen
                for r in rows
            )

        def step(n: int, rows: list[dict[str, Any]]) -> bool:
            """Take page ``n``; False when it brought no new id, also when asked again:
            the listing stops there (a page Knack repeats for every number never ends)."""
            nonlocal repeated
            if rows and not brings_new(rows):
                rows = self._ask_again(
                    page, n, route, brings_new, "brought only records of earlier pages"
                )
                if rows and not brings_new(rows):
                    sizes[n], repeated = 0, n
                    return False
            take(n, rows)
            return True

        def take(n: int, rows: list[dict[str, Any]]) -> None:
            sizes[n] = len(rows)
            fresh = []
            for record in rows:
                rid = record.get("id") if isinstance(record, dict) else None
                if not isinstance(rid, str) or not rid:
                    (fresh if on_records is not None else missing_id).append(record)
                elif rid not in seen:
                    seen.add(rid)
                    fresh.append(record)
            if on_records is not None:
                on_records(fresh)
            else:
                kept.extend(fresh)

        first, rows = fetch(1)
        estimate = max(whole_number(first.get("total_pages"), default=1), 1)
        total_records = first.get("total_records")
        estimated_records = whole_number(total_records, default=0)
        if on_estimate is not None and total_records is not None:
            on_estimate(estimated_records)
        del first  # it holds page 1's records: not for the whole listing
        if not rows and estimated_records > 0:  # "N records" but none on page 1
            rows = self._ask_again(page, 1, route, brings_new, "was empty before the last page")
        if rows and estimate > 1:
            # the next pages (and the one after Knack's estimate, normally empty) are asked
            # for before page 1 is handled: a full run's first page waits for S3's listing
            with ThreadPoolExecutor(PAGE_WORKERS, thread_name_prefix="knack-page") as pool:
                ahead = in_order(pool, page, range(2, estimate + 2), PAGE_LOOKAHEAD)
                try:
                    take(1, rows)
                    del rows
                    for n, got in ahead:
                        if not step(n, got):
                            break
                        del got  # not alive while the next page is handled
                finally:
                    ahead.close()  # a failure or a stop: the pages asked for ahead are cancelled
        else:
            take(1, rows)
            del rows
        n = max(sizes)
        while sizes[n]:  # the pages after the last one Knack estimated, until an empty one
            n += 1
            step(n, page(n))
        for n in holes_in(sizes):
            rows = self._ask_again(page, n, route, brings_new, "was empty before the last page")
            if brings_new(rows):  # else it stays a hole (a page of records listed before)
                take(n, rows)
        holes = holes_in(sizes)
        if not sizes[1] and estimated_records > 0:
            holes.insert(0, 1)
        listing = Listing(
            records=kept + missing_id,
            pages=len(sizes),
            estimated_pages=estimate,
            estimated_records=estimated_records,
            holes=holes,
            count=len(seen) + len(missing_id),
            ids=seen,
            repeated=repeated,
            page_size=max(sizes.values(), default=0),
        )
        logger.info(
            "fetched %d records of %s in %d pages (Knack estimated %s)%s",
            listing.count,
            container,
            len(sizes),
            total_records,
            "" if listing.complete else f"; {listing.problem}",
        )
        return listing

    def count_records(
        self,
        container: str,
        *,
        scene: str | None = None,
        filters: dict[str, Any] | None = None,
    ) -> int:
        """Knack's count of a container's records (of those ``filters`` match): one request,
        ``rows_per_page=1``, its ``total_records`` (Knack's estimate, as the paging's)."""
        route, public = self._records_route(container, scene)
        params: dict[str, Any] = {"rows_per_page": 1, "page": 1}
        if filters:
            params["filters"] = json.dumps(filters, separators=(",", ":"))
        body = self._get(route, params, public=public)
        total = body.get("total_records") if isinstance(body, dict) else None
        if isinstance(total, bool) or not isinstance(total, int | str):
            raise KnackAPIError(f"Knack's answer to GET {route} has no total_records")
        return whole_number(total, default=0)

    def _ask_again(
        self,
        page: Callable[[int], list[dict[str, Any]]],
        n: int,
        route: str,
        wanted: Callable[[list[dict[str, Any]]], bool],
        why: str,
    ) -> list[dict[str, Any]]:
        """Page ``n`` asked again, up to ``HOLE_RETRIES`` times until it is ``wanted``."""
        rows: list[dict[str, Any]] = []
        for attempt in range(1, HOLE_RETRIES + 1):
            self.retry.sleep(self.retry.backoff(attempt))
            logger.warning("GET %s page %d %s; asking again (%d)", route, n, why, attempt)
            rows = page(n)
            if wanted(rows):
                break
        return rows

    def get_record(
        self, container: str, record_id: str, *, scene: str | None = None
    ) -> dict[str, Any] | None:
        """One record by id (``GET .../records/{id}``); None when Knack answers 404 (gone).

        Anything else but the record itself raises: only a 404 confirms a deletion.
        """
        route, public = self._records_route(container, scene)
        route = f"{route}/{record_id}"
        body = self._get(route, public=public, missing_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict) or body.get("id") != record_id:
            raise KnackAPIError(f"Knack's answer to GET {route} is not record {record_id}")
        return body

    def _records_route(self, container: str, scene: str | None) -> tuple[str, bool]:
        if container.startswith("object_"):
            if not self._api_key:
                raise MissingCredentialError(
                    "KNACK_API_KEY",
                    purpose=f"the records of object {container} need the app's REST API key",
                )
            return f"/objects/{container}/records", False
        if container.startswith("view_"):
            if not scene:
                raise ConfigError(f"view {container} needs its scene to fetch records")
            return f"/pages/{scene}/views/{container}/records", True
        raise ConfigError(f"{container!r} is neither an object nor a view key")

    # --- HTTP ------------------------------------------------------------------------

    def _headers(self, *, public: bool) -> dict[str, str]:
        key = self._api_key or (PUBLIC_API_KEY if public else None)
        headers = {"X-Knack-Application-Id": self.app_id}
        if key:
            headers["X-Knack-REST-API-KEY"] = key
        return headers

    def _answered(self, send: Callable[[], requests.Response]) -> requests.Response:
        """One attempt: ``send()`` under the rate limit, counted; Transient for a timeout, a
        lost connection, a 429 or a 5xx (what the retry policy retries)."""
        self.limiter.acquire()
        try:
            res = send()
        except (requests.Timeout, requests.ConnectionError) as e:
            raise Transient(str(e)) from None
        self.stats.answered(res.status_code)
        if retryable_status(res.status_code):
            raise Transient(knack_message(res), status=res.status_code, headers=res.headers)
        return res

    def _get(
        self,
        route: str,
        params: dict[str, Any] | None = None,
        *,
        public: bool = True,
        missing_ok: bool = False,
    ) -> Any:
        """GET under the retry policy; ``missing_ok``: None for a 404 instead of an error."""
        url = self.api_url + route
        headers = self._headers(public=public)

        def attempt() -> requests.Response:
            return self._answered(
                lambda: self._session.get(url, params=params, headers=headers, timeout=self.timeout)
            )

        try:
            res = self.retry.call(attempt, what=f"GET {route}", stats=self.stats)
        except GaveUp as e:
            if e.last.status is None:
                raise KnackAPIError(
                    f"Knack did not answer GET {route} after {e.attempts} attempts "
                    f"({e.last.reason}); check KNACK_API_URL ({self.api_url}) or retry later"
                ) from None
            raise KnackAPIError(
                f"Knack kept failing GET {route}: HTTP {e.last.status} after {e.attempts} "
                f"attempts ({e.last.reason}); retry later: reruns are safe"
            ) from None
        if res.ok:
            return json_body(res, route)
        if missing_ok and res.status_code == 404:
            return None
        raise KnackAPIError(
            f"Knack refused GET {route}: HTTP {res.status_code}: {knack_message(res)}"
        )


# --- Knack's filter syntax -------------------------------------------------------------


def knack_date(when: dt.datetime, tz: dt.tzinfo) -> str:
    """``when``'s calendar date in the app's timezone, as Knack filters want it."""
    return when.astimezone(tz).strftime("%m/%d/%Y")


def modified_since_filter(field: str, when: dt.datetime, tz: dt.tzinfo) -> dict[str, Any]:
    """Knack's filter for records modified on or after ``when``'s local calendar date.

    Knack compares calendar dates only (in the app's timezone): ``is DATE`` OR
    ``is after DATE``. Records from earlier on that local day come along; writing them
    again is harmless (unchanged ones are skipped).
    """
    day = knack_date(when, tz)
    return {
        "match": "or",
        "rules": [
            {"field": field, "operator": "is", "value": day},
            {"field": field, "operator": "is after", "value": day},
        ],
    }
