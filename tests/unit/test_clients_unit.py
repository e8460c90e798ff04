"""The retry policy (lib/clients/retry.py) and how each client hands it its failures: 429
with ``Retry-After`` (seconds or an HTTP date) and Knack's ``X-RateLimit-Reset`` honoured,
5xx retried then given up, other 4xx never retried, every attempt and retry counted. The
policy's sleep and clock are fakes: nothing here waits."""

from __future__ import annotations

import datetime as dt
import email.utils
import json

import pytest
import requests

from lib.clients import agol
from lib.clients.agol import Layer
from lib.clients.knack import KnackClient
from lib.clients.retry import GaveUp, RequestStats, RetryPolicy, Transient, server_delay
from lib.clients.socrata import Client
from lib.errors import ArcGISError, KnackAPIError, SocrataError

NOW = 1_800_000_000.0  # the fake clock's POSIX seconds


class Sleeps(list):
    """A policy's sleep that waits for nothing and remembers each wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(attempts: int = 6, base: float = 0.0, cap: float = 30.0) -> RetryPolicy:
    """A policy that never waits; ``base`` 0: no jitter, so a server's delay is exact."""
    return RetryPolicy(attempts=attempts, base=base, cap=cap, sleep=Sleeps(), clock=lambda: NOW)


def failing(*failures: BaseException, then: object = "done"):
    """An attempt that raises ``failures`` one per call, then returns ``then``."""
    left = list(failures)

    def attempt():
        if left:
            raise left.pop(0)
        return then

    return attempt


def http_date(seconds_from_now: float) -> str:
    when = dt.datetime.fromtimestamp(NOW + seconds_from_now, tz=dt.UTC)
    return email.utils.format_datetime(when, usegmt=True)


# --- the policy ------------------------------------------------------------------------


def test_a_429_with_retry_after_in_seconds_is_honoured_and_counted():
    p, stats = policy(), RequestStats()
    slow_down = Transient("Too Many Requests", status=429, headers={"Retry-After": "7"})
    assert p.call(failing(slow_down), what="GET /x", stats=stats) == "done"
    assert p.sleep == [7.0]
    assert (stats.requests, stats.retries) == (2, 1)


def test_a_retry_after_as_an_http_date_is_honoured():
    p = policy()
    slow_down = Transient("Too Many Requests", status=429, headers={"Retry-After": http_date(12)})
    assert p.call(failing(slow_down), what="GET /x") == "done"
    assert p.sleep == [pytest.approx(12.0)]


@pytest.mark.parametrize("reset, wait", [(str(int(NOW) + 3), 3.0), ("2", 2.0)])
def test_knacks_x_ratelimit_reset_is_honoured_as_a_time_or_seconds(reset, wait):
    p = policy()
    limited = Transient("Rate limit exceeded", status=429, headers={"X-RateLimit-Reset": reset})
    assert p.call(failing(limited), what="GET /x") == "done"
    assert p.sleep == [pytest.approx(wait)]


def test_a_server_delay_is_capped_and_jittered_by_at_most_base():
    p = policy(base=0.5, cap=30.0)
    slow_down = Transient("Too Many Requests", status=429, headers={"Retry-After": "120"})
    p.call(failing(slow_down, slow_down), what="GET /x")
    assert all(30.0 <= s <= 30.5 for s in p.sleep), p.sleep


def test_5xx_are_retried_with_backoff_then_the_policy_gives_up():
    p, stats = policy(attempts=4, base=0.5), RequestStats()
    down = Transient("Service Unavailable", status=503)
    with pytest.raises(GaveUp) as info:
        p.call(failing(*[down] * 10), what="GET /x", stats=stats)
    assert info.value.attempts == 4 and info.value.last.status == 503
    assert (stats.requests, stats.retries) == (4, 3)
    assert len(p.sleep) == 3  # none after the last attempt
    assert all(0 <= s <= 0.5 * 2**n for n, s in enumerate(p.sleep)), p.sleep


def test_other_failures_are_not_retried():
    p, stats = policy(), RequestStats()
    with pytest.raises(KnackAPIError, match="HTTP 400"):
        p.call(
            failing(KnackAPIError("Knack refused GET /x: HTTP 400: bad")),
            what="GET /x",
            stats=stats,
        )
    assert (stats.requests, stats.retries, p.sleep) == (1, 0, [])


def test_before_retry_runs_before_each_retry_only():
    p, ran = policy(), []
    down = Transient("Bad Gateway", status=502)
    p.call(failing(down, down), what="edits", before_retry=lambda: ran.append(len(p.sleep)))
    assert ran == [1, 2]  # after each wait, before the next attempt; never before the first


def test_server_delay_reads_what_it_can():
    assert server_delay({"Retry-After": "1.5"}, NOW) == 1.5
    assert server_delay({"Retry-After": http_date(-5)}, NOW) == pytest.approx(-5)  # past: 0
    assert server_delay({"Retry-After": "soon"}, NOW) is None
    assert server_delay({"Retry-After": "soon", "X-RateLimit-Reset": "4"}, NOW) == 4
    assert server_delay({}, NOW) is None


# --- the Knack client ------------------------------------------------------------------


def response(status: int, body: object, headers: dict[str, str] | None = None):
    res = requests.Response()
    res.status_code = status
    res._content = json.dumps(body).encode()
    res.headers.update({"Content-Type": "application/json", **(headers or {})})
    res.reason = "reason"
    return res


def knack(answers, p=None) -> KnackClient:
    client = KnackClient(
        app_id="a" * 24, api_url="http://knack.invalid/v1", api_key="k", retry=p or policy()
    )
    queue = list(answers)

    def get(url, **kwargs):
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    client._session.get = get
    return client


def test_knack_honours_retry_after_and_x_ratelimit_reset_and_counts_by_status():
    app = {"application": {"id": "a" * 24, "name": "x"}}
    client = knack(
        [
            response(429, {"errors": [{"message": "Rate limit exceeded"}]}, {"Retry-After": "3"}),
            response(503, {"message": "down"}, {"X-RateLimit-Reset": str(int(NOW) + 2)}),
            requests.ConnectionError("connection reset"),
            response(200, app),
        ]
    )
    assert client.get_metadata() == app["application"]
    assert client.retry.sleep[:2] == [3.0, 2.0] and len(client.retry.sleep) == 3
    assert (client.stats.requests, client.stats.retries) == (4, 3)
    assert client.stats.by_status == {429: 1, 503: 1, 200: 1}


def test_knack_400_fails_at_once_with_its_message():
    client = knack([response(400, {"errors": [{"message": "bad filter"}]})])
    with pytest.raises(KnackAPIError, match="HTTP 400: bad filter"):
        client.get_metadata()
    assert (client.stats.requests, client.stats.retries, client.retry.sleep) == (1, 0, [])


def test_knack_gives_up_after_the_policys_attempts():
    client = knack([response(500, {"message": "oops"})] * 3, policy(attempts=3))
    with pytest.raises(KnackAPIError, match="HTTP 500 after 3 attempts"):
        client.get_metadata()


# --- the Socrata client ----------------------------------------------------------------


@pytest.fixture
def socrata(monkeypatch):
    for name in ("SOCRATA_APP_TOKEN", "SOCRATA_API_KEY_ID", "SOCRATA_API_KEY_SECRET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("SOCRATA_URL", "http://socrata.invalid")
    client = Client(retry=policy(attempts=5))
    yield client
    client.close()


def http_error(status: int, headers: dict[str, str] | None = None) -> requests.HTTPError:
    return requests.HTTPError(f"{status} Error: emulated", response=response(status, {}, headers))


def test_socrata_retries_a_429_honouring_retry_after(socrata):
    answer = socrata.call(
        "the upsert", failing(http_error(429, {"Retry-After": "2"}), then={"Rows Created": 1})
    )
    assert answer == {"Rows Created": 1}
    assert socrata.retry.sleep == [2.0]
    assert (socrata.requests, socrata.retries) == (2, 1)


def test_socrata_4xx_fails_at_once_and_5xx_give_up(socrata):
    with pytest.raises(SocrataError, match="Socrata refused the upsert: 400 Error"):
        socrata.call("the upsert", failing(http_error(400)))
    assert (socrata.requests, socrata.retries) == (1, 0)
    with pytest.raises(SocrataError, match="Socrata refused reading: 502 Error"):
        socrata.call("reading", failing(*[http_error(502)] * 5))
    with pytest.raises(SocrataError, match="did not answer reading after 5 attempts"):
        socrata.call("reading", failing(*[requests.Timeout("read timed out")] * 5))
    assert (socrata.requests, socrata.retries) == (11, 8)


# --- the ArcGIS client -----------------------------------------------------------------


def layer(p: RetryPolicy) -> Layer:
    """A Layer's retrying calls without a login (``call`` needs only the policy)."""
    offline = object.__new__(Layer)
    offline.retry, offline.stats = p, RequestStats()
    return offline


@pytest.mark.parametrize(
    "failure, status",
    [
        (Exception("Too Many Requests (emulated fault)\n(Error Code: 429)"), 429),
        (
            requests.exceptions.RetryError(
                "HTTPSConnectionPool(host='x', port=443): Max retries "
                "exceeded with url: /query (Caused by ResponseError('too "
                "many 429 error responses'))"
            ),
            429,
        ),
        (Exception("Service Unavailable (emulated fault)\n(Error Code: 503)"), 503),
        (requests.Timeout("read timed out"), None),
        (http_error(429, {"Retry-After": "4"}), 429),
    ],
)
def test_arcgis_transient_failures_429_included(failure, status):
    found = agol.transient(failure)
    assert found is not None and found.status == status


@pytest.mark.parametrize(
    "failure",
    [
        Exception("Invalid token.\n(Error Code: 498)"),
        Exception("Unable to complete operation.\n(Error Code: 400)"),
        http_error(403),
    ],
)
def test_arcgis_other_failures_are_not_transient(failure):
    assert agol.transient(failure) is None


def test_arcgis_retries_a_429_honouring_retry_after_and_counts():
    calls = layer(policy())
    slow_down = http_error(429, {"Retry-After": "4"})
    assert calls.call("querying", failing(slow_down, Exception("x (Error Code: 429)"))) == "done"
    assert calls.retry.sleep[0] == 4.0 and len(calls.retry.sleep) == 2
    assert (calls.requests, calls.retries) == (3, 2)
    with pytest.raises(ArcGISError, match="ArcGIS failed editing: Invalid token"):
        calls.call("editing", failing(Exception("Invalid token.\n(Error Code: 498)")))
    assert (calls.requests, calls.retries) == (4, 2)


def test_sql_literals_are_quoted():
    assert agol._sql("O'Hare") == "'O''Hare'"
    assert agol._sql(12) == "12"
