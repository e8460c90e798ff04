"""Errors that name what was wrong and say what to do: bad dates, corrupt JSON in S3."""

from __future__ import annotations

import datetime as dt

import pytest

from lib import dates
from lib.errors import ConfigError, StoreError
from lib.state import RunStore

# --- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "NaN",
        " nan ",
        "inf",
        "-inf",
        "Infinity",
        "1e400",
        float("nan"),
        float("inf"),
        float("-inf"),
    ],
)
def test_nan_and_infinity_are_named(value):
    with pytest.raises(ConfigError, match=r"is not a number.*POSIX seconds") as info:
        dates.parse_date(value)
    assert repr(value) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:00:00-12:00",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:59:59Z",
        "0001-01-01",
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=12))),
    ],
)
def test_dates_out_of_range_are_named(value):
    with pytest.raises(ConfigError, match=r"is out of range.*POSIX seconds") as info:
        dates.parse_date(value)
    assert (repr(value) if isinstance(value, str) else "9999") in str(info.value)


@pytest.mark.parametrize(
    "value", [0.0, "0.0", "0.00", " 0 ", "-0", "-0.0", "0e0", "   ", "None", "null"]
)
def test_every_spelling_of_zero_and_empty_is_a_full_run(value):
    assert dates.parse_date(value) is None


def test_near_the_ends_still_parse():
    assert dates.parse_date("9999-12-01T00:00:00Z").year == 9999
    assert dates.parse_date("1900-01-01").year == 1900


# --- corrupt JSON in S3 ----------------------------------------------------------------


@pytest.fixture
def store(demo_env) -> RunStore:
    return RunStore(app_name="demo", env="dev")


def put(store: RunStore, key: str, body: bytes) -> None:
    store.client.put_object(Bucket=store.bucket, Key=key, Body=body)


@pytest.mark.parametrize(
    "body, why",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"2026-11-01T00:00:00+00:00"', "not a JSON object"),
        (b'{"job": "knack_container_to_s3"}', "no last_success_start"),
        (b'{"last_success_start": "yesterday"}', "'yesterday' is not an ISO"),
        (b'{"last_success_start": 1764374400}', "1764374400 is not an ISO"),
        (b'{"last_success_start": "2026-11-01T00:00:00"}', "no UTC offset"),
    ],
)
def test_a_corrupt_state_names_its_key_and_what_to_do(store, body, why):
    key = store.state_key("knack_container_to_s3", "object_3")
    put(store, key, body)
    with pytest.raises(StoreError) as info:
        store.resume_point("knack_container_to_s3", "object_3")
    message = str(info.value)
    assert f"s3://{store.bucket}/{key}" in message
    assert why in message
    assert "delete it" in message and "full run" in message
    assert "\n" not in message


def test_a_corrupt_state_is_replaced_by_a_full_run_and_kept_by_a_later_date(store):
    key = store.state_key("knack_container_to_s3", "object_3")
    put(store, key, b"{not json")
    started = dt.datetime.now(dt.UTC)
    note = store.record_success(
        "knack_container_to_s3", "object_3", started, since=started - dt.timedelta(days=1)
    )
    assert note and key in note and "delete it" in note
    assert store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read() == b"{not json"
    assert store.record_success("knack_container_to_s3", "object_3", started, since=None) is None
    assert store.resume_point("knack_container_to_s3", "object_3")[0] == started


def test_any_corrupt_json_object_names_its_key(store):
    key = store.metadata_key("5d79512148c4af00106d1507")
    put(store, key, b'{"objects": [')
    with pytest.raises(StoreError) as info:
        store.get_json(key)
    message = str(info.value)
    assert f"s3://{store.bucket}/{key} is not JSON" in message and "delete it" in message


# --- the run's error: in process, and end to end through papermill ----------------------


def report_text(stack, result) -> str:
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


@pytest.mark.parametrize(
    "date, message",
    [
        ("nan", "ConfigError: date 'nan' is not a number"),
        (
            "9999-12-31T23:00:00-12:00",
            "ConfigError: date '9999-12-31T23:00:00-12:00' is out of range",
        ),
    ],
)
def test_a_bad_date_fails_the_run_with_one_line_and_writes_nothing(signals, date, message):
    # the notebook's steps in process (tests/inprocess.py); a project error's one line in the
    # report, without a traceback, is the papermill test below
    result = signals.sync(date=date)
    assert not result.ok
    assert result.error.startswith(message), result.error
    assert "\n" not in result.error
    assert signals.stack.s3_keys() == []


def test_a_corrupt_state_fails_an_auto_run_naming_the_key(signals):
    key = "_state/signals-dev/object_1/knack_container_to_s3.json"
    signals.stack.s3().put_object(Bucket=signals.stack.bucket, Key=key, Body=b"{oops")
    result = signals.run(date="auto")
    assert not result.ok
    url = f"s3://{signals.stack.bucket}/{key}"
    assert result.error.startswith("CorruptObjectError: ") and url in result.error
    assert "delete it" in result.error
    text = report_text(signals.stack, result)
    assert url in text and "Traceback" not in text
    assert sorted(k for k in signals.stack.s3_keys() if not k.startswith("reports/")) == [key]
    assert signals.s3() == {}
