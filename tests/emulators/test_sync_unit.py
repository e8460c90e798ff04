"""Unit tests of the sync's parts: dates, the Knack client against the emulator, the store."""

from __future__ import annotations

import datetime as dt
import json
import threading
from zoneinfo import ZoneInfo

import pytest

from emulators.knack import KnackEmulator, generate_app
from lib import dates
from lib.clients import s3_records
from lib.clients.app_store import AppStore
from lib.clients.knack import (
    PAGE_LOOKAHEAD,
    KnackClient,
    Listing,
    modified_since_filter,
)
from lib.clients.knack_http import RateLimiter
from lib.clients.retry import RetryPolicy
from lib.errors import ConfigError, KnackAPIError, MissingCredentialError

CENTRAL = ZoneInfo("America/Chicago")
FAST_RETRY = RetryPolicy(attempts=6, base=0.05, cap=2.0)


# --- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        (0, None),
        ("", None),
        ("0", None),
        (1764374400, dt.datetime(2025, 11, 29, tzinfo=dt.UTC)),
        ("1764374400", dt.datetime(2025, 11, 29, tzinfo=dt.UTC)),
        (1764374400.5, dt.datetime(2025, 11, 29, 0, 0, 0, 500000, tzinfo=dt.UTC)),
        ("2026-11-29", dt.datetime(2026, 11, 29, tzinfo=dt.UTC)),
        ("2026-11-29T03:00:00", dt.datetime(2026, 11, 29, 3, tzinfo=dt.UTC)),
        ("2026-11-29T03:00:00Z", dt.datetime(2026, 11, 29, 3, tzinfo=dt.UTC)),
        ("2026-11-28T21:00:00-06:00", dt.datetime(2026, 11, 29, 3, tzinfo=dt.UTC)),
        ("auto", "auto"),
        (" AUTO ", "auto"),
    ],
)
def test_parse_date(value, expected):
    assert dates.parse_date(value) == expected


@pytest.mark.parametrize(
    "value", ["yesterday", "11/29/2026", "2026-13-01", True, [1], -5, 1764374400000]
)
def test_unparseable_dates_say_what_is_accepted(value):
    with pytest.raises(ConfigError, match="POSIX seconds.*ISO-8601") as info:
        dates.parse_date(value)
    if value == 1764374400000:
        assert "milliseconds" in str(info.value)


def test_modified_since_filter_uses_the_local_calendar_date():
    when = dt.datetime(2026, 12, 16, 3, 0, tzinfo=dt.UTC)  # 21:00 on Dec 15 in Central time
    assert modified_since_filter("field_5", when, CENTRAL) == {
        "match": "or",
        "rules": [
            {"field": "field_5", "operator": "is", "value": "12/15/2026"},
            {"field": "field_5", "operator": "is after", "value": "12/15/2026"},
        ],
    }


# --- Knack client against the emulator -------------------------------------------------


@pytest.fixture(scope="module")
def emulator():
    emu = KnackEmulator(api_key="unit-key", rate_limit=10)
    metadata, records = generate_app(2500, seed=7)
    emu.app_id_signals = emu.add_app(metadata, records)
    with emu:
        yield emu


@pytest.fixture
def client(emulator):
    emulator.faults = type(emulator.faults)()
    emulator.reset_log()
    c = KnackClient(
        app_id=emulator.app_id_signals, api_url=emulator.url, api_key="unit-key", retry=FAST_RETRY
    )
    yield c
    c.close()


def _ids(emulator, container="object_1"):
    return {r["id"] for r in emulator.records(emulator.app_id_signals, container)}


def test_all_pages_fetched_concurrently_within_the_rate_limit(emulator, client):
    records = client.list_records("object_1").records
    assert {r["id"] for r in records} == _ids(emulator)
    assert len(records) == 2500
    pages = sorted(int(r.query["page"]) for r in emulator.requests)
    assert pages == [1, 2, 3, 4]  # 3 pages of 1000 rows, then an empty page ends it
    assert all(r.query["rows_per_page"] == "1000" for r in emulator.requests)
    assert all(r.status == 200 for r in emulator.requests)  # never a 429
    assert client.stats.requests == 4 and client.stats.retries == 0


def test_views_are_public_and_use_their_scene(emulator, client):
    public = KnackClient(app_id=emulator.app_id_signals, api_url=emulator.url, api_key="")
    try:
        records = public.list_records("view_1", scene="scene_1").records
    finally:
        public.close()
    assert len(records) == 2500
    assert {r.api_key for r in emulator.requests} == {"knack"}
    with pytest.raises(ConfigError, match="needs its scene"):
        client.list_records("view_1")


def test_objects_need_the_api_key(emulator):
    keyless = KnackClient(app_id=emulator.app_id_signals, api_url=emulator.url, api_key="")
    with pytest.raises(MissingCredentialError, match="KNACK_API_KEY"):
        keyless.list_records("object_1")


def test_other_4xx_fail_at_once_with_knacks_message(emulator, client):
    wrong = KnackClient(
        app_id=emulator.app_id_signals, api_url=emulator.url, api_key="wrong", retry=FAST_RETRY
    )
    with pytest.raises(KnackAPIError, match="HTTP 401: Invalid API key"):
        wrong.list_records("object_1")
    assert len(emulator.requests) == 1


def test_overstated_total_records(emulator, client):
    emulator.faults.overstate_total_records = 3000  # Knack says 5,500 records, 6 pages
    records = client.list_records("object_1").records
    assert len(records) == 2500
    assert {r["id"] for r in records} == _ids(emulator)


def test_an_empty_page_before_the_last_is_asked_again(emulator, client):
    emulator.faults.update({"empty_page": 2, "empty_page_times": 1})
    listing = client.list_records("object_1")
    assert listing.complete and {r["id"] for r in listing.records} == _ids(emulator)
    pages = [int(r.query["page"]) for r in emulator.requests if r.status == 200]  # no 429s
    assert sorted(pages) == [1, 2, 2, 3, 4]


def test_an_empty_page_that_stays_is_a_hole_never_the_end(emulator, client):
    emulator.faults.update({"empty_page": 2, "empty_page_times": 10})
    listing = client.list_records("object_1")
    assert not listing.complete and listing.holes == [2]
    assert len(listing.records) == 1500  # pages 1 and 3: page 3 was not taken for the end
    assert "page 2 of the 3 Knack estimated came back empty" in listing.problem


HANG_GUARD = 30.0  # seconds: a listing that has not ended by then never would (not a timing)


def list_or_fail_on_loop(emulator, client, container="object_1") -> Listing:
    """``client.list_records`` in a thread; a listing still running after ``HANG_GUARD``
    fails the test, once its fault is lifted so that the thread ends."""
    out: list[Listing | BaseException] = []

    def listing() -> None:
        try:
            out.append(client.list_records(container))
        except BaseException as e:  # noqa: BLE001 - given to the test's thread
            out.append(e)

    thread = threading.Thread(target=listing, daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    if thread.is_alive():
        asked = len(emulator.requests)
        emulator.faults.repeat_page = 0  # Knack behaves again: the listing ends
        thread.join()
        pytest.fail(
            f"the listing was still running after {HANG_GUARD:.0f} s and {asked} "
            "requests: Knack's same page for every page number made it loop"
        )
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


@pytest.mark.parametrize(
    "repeated, overstated, listed, stopped_at, last_asked",
    [
        (1, 0, 1000, 2, 4),  # page 2 (asked before page 1 was handled) brings page 1 again
        (3, 0, 2500, 4, 4),  # pages past Knack's estimate bring its last page again, for ever
        # Knack counts 100 pages: the stop cancels what was to be asked ahead of page 2
        (1, 97_500, 1000, 2, 1 + PAGE_LOOKAHEAD),
    ],
)
def test_the_same_page_for_every_page_number_ends_as_a_hole_never_a_loop(
    emulator, client, repeated, overstated, listed, stopped_at, last_asked
):
    emulator.faults.update({"repeat_page": repeated, "overstate_total_records": overstated})
    listing = list_or_fail_on_loop(emulator, client)
    assert not listing.complete  # never "the rest is gone": nothing may be deleted on it
    assert listing.count == len(listing.records) == listed  # each record once
    assert f"page {stopped_at} brought only records of earlier pages" in listing.problem
    pages = [int(r.query["page"]) for r in emulator.requests if r.status == 200]
    assert pages.count(stopped_at) == 3  # asked again twice, as an empty page is
    assert max(pages) <= last_asked  # it stopped there: at most the pages asked for ahead


def test_get_record_answers_the_record_or_none_for_404_only(emulator, client):
    record = emulator.records(emulator.app_id_signals, "object_1")[0]
    assert client.get_record("object_1", record["id"]) == record
    assert client.get_record("view_1", record["id"], scene="scene_1") == record
    emulator.delete_record(emulator.app_id_signals, "object_1", record["id"])
    try:
        assert client.get_record("object_1", record["id"]) is None
    finally:
        emulator.put_record(emulator.app_id_signals, "object_1", record)
    emulator.faults.update({"fail_next": 10, "status": 500})
    with pytest.raises(KnackAPIError, match="HTTP 500"):  # not a confirmation of anything
        client.get_record("object_1", record["id"])


def test_every_third_request_503_still_complete(emulator, client):
    emulator.faults.fail_every = 3
    records = client.list_records("object_1").records
    assert {r["id"] for r in records} == _ids(emulator)
    assert client.stats.retries >= 1
    assert client.stats.by_status[503] >= 1


def test_429_burst_honours_retry_after(emulator, client):
    emulator.faults.status = 429
    emulator.faults.fail_next = 3
    records = client.list_records("object_1").records
    assert len(records) == 2500
    statuses = [r.status for r in emulator.requests]
    assert statuses.count(429) == 3
    # Retry-After: 1 was honoured: the first success came at least ~1 s after the first 429
    first_429 = min(r.time for r in emulator.requests if r.status == 429)
    first_ok = min(r.time for r in emulator.requests if r.status == 200)
    assert first_ok - first_429 >= 0.9


def test_503_forever_gives_up_after_bounded_attempts(emulator, client):
    emulator.faults.fail_next = 100
    with pytest.raises(KnackAPIError, match="HTTP 503 after 6 attempts"):
        client.list_records("object_1")
    assert len(emulator.requests) == 6


def test_filters_are_sent_as_knack_json(emulator, client):
    app_id = emulator.app_id_signals
    rid = emulator.records(app_id, "object_1")[0]["id"]
    emulator.touch(
        app_id, "object_1", rid, field="field_5", when=dt.datetime(2027, 1, 5, 12, tzinfo=dt.UTC)
    )
    since = dt.datetime(2027, 1, 5, 3, tzinfo=dt.UTC)  # Jan 4 in Central time
    records = client.list_records(
        "object_1", filters=modified_since_filter("field_5", since, CENTRAL)
    ).records
    assert [r["id"] for r in records] == [rid]
    sent = json.loads(emulator.requests[0].query["filters"])
    assert sent["rules"][0]["value"] == "01/04/2027"


def test_rate_limiter_refuses_more_than_knacks_limit():
    with pytest.raises(ValueError, match="at most Knack's 10"):
        RateLimiter(11)
    limiter = RateLimiter(10)
    assert limiter.interval == pytest.approx(0.1)


# --- the store -------------------------------------------------------------------------


def test_record_keys_reject_bad_ids_and_containers():
    s = AppStore(app_name="demo", env="dev", bucket="b", client=object())
    assert s.record_key("object_3", "5d7964422d7159001659b27a") == (
        "demo-dev/object_3/5d7964422d7159001659b27a.json"
    )
    for bad in ["../x", "5D7964422D7159001659B27A", "5d79644", "", None, "a" * 24 + "/"]:
        with pytest.raises(ValueError, match="not 24 hex"):
            s.record_key("object_3", bad)
    with pytest.raises(ValueError, match="not a container key"):
        s.record_key("_state", "5d7964422d7159001659b27a")
    assert s.state_key("knack_container_to_s3", "view_1").startswith("_state/demo-dev/view_1/")
    with pytest.raises(ConfigError):
        AppStore(app_name="demo", env="staging", bucket="b", client=object())


def test_put_list_skip_unchanged_and_delete(demo_env):
    s = AppStore(app_name="unit", env="dev")
    records = [{"id": f"{i:024x}", "field_1": i} for i in range(30)]
    first = s.put_records("object_1", records)
    assert len(first.written) == 30 and not first.unchanged and not first.failed
    listed = s.list_records("object_1")
    assert set(listed) == {r["id"] for r in records}
    assert listed[records[0]["id"]] == s3_records.md5_hex(s3_records.dumps_stable(records[0]))
    records[0]["field_1"] = "changed"
    again = s.put_records("object_1", records, known_etags=listed)  # full-run comparison
    assert again.written == [records[0]["id"]] and len(again.unchanged) == 29
    records[1]["field_1"] = "changed too"
    by_head = s.put_records("object_1", records[:3])  # incremental: asks each record's ETag
    assert by_head.written == [records[1]["id"]] and len(by_head.unchanged) == 2
    assert s.delete_records("object_1", [records[0]["id"], records[1]["id"]]) == [
        records[0]["id"],
        records[1]["id"],
    ]
    assert len(s.list_records("object_1")) == 28
    assert s.get_json(s.record_key("object_1", records[2]["id"])) == records[2]


def test_read_records_since_keeps_records_of_the_same_second(demo_env):
    s = AppStore(app_name="unit", env="dev")
    records = [{"id": f"{i:024x}", "field_1": i} for i in range(3)]
    s.put_records("object_1", records)
    listed = s.client.list_objects_v2(Bucket=s.bucket, Prefix="unit-dev/object_1/")
    first = min(o["LastModified"] for o in listed["Contents"])  # the puts may straddle a second
    last = max(o["LastModified"] for o in listed["Contents"])
    # a `since` later within the same second must still find them (S3 lists whole seconds)
    since = first.replace(microsecond=999_000)
    assert len(s.read_records("object_1", since=since)) == 3
    assert s.read_records("object_1", since=last + dt.timedelta(seconds=1)) == []
    assert {r["id"] for r in s.read_records("object_1")} == {r["id"] for r in records}
