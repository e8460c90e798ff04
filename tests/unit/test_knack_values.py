"""A source value as another Knack app's field takes it (lib/publish/knack_values.py), and
the destination's stored value in the same form; the ``knack:`` params (lib/config.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from lib import config
from lib.errors import ConfigError
from lib.publish.knack_values import Converter
from lib.publish.values import Refused

CENTRAL, PACIFIC = ZoneInfo("America/Chicago"), ZoneInfo("America/Los_Angeles")
EPOCH = dt.datetime(1970, 1, 1)


def date_raw(wall: dt.datetime) -> dict:
    """A Knack date's raw value for a local wall time (unix_timestamp: the wall as UTC)."""
    return {
        "date": wall.strftime("%m/%d/%Y"),
        "hours": f"{wall.hour % 12 or 12:02d}",
        "minutes": f"{wall.minute:02d}",
        "am_pm": "AM" if wall.hour < 12 else "PM",
        "unix_timestamp": int((wall - EPOCH).total_seconds() * 1000),
    }


def conv(kind: str, source_kind: str | None = None, *, fmt=None, source_fmt=None, **kw):
    source = {"key": "field_1", "type": source_kind or kind, "format": source_fmt or {}}
    target = {"key": "field_2", "type": kind, "format": fmt or {}, **kw}
    return Converter(source, target, CENTRAL, PACIFIC)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # 00:30 Central is 22:30 Pacific the day before
        (dt.datetime(2026, 3, 2, 0, 30), {"date": "03/01/2026", "hours": 10, "minutes": 30}),
        # 23:45 Central stays on its day in Pacific
        (dt.datetime(2026, 3, 1, 23, 45), {"date": "03/01/2026", "hours": 9, "minutes": 45}),
        # 01:15 Central after the spring change (03/08): 23:15 Pacific the day before
        (dt.datetime(2026, 3, 9, 1, 15), {"date": "03/08/2026", "hours": 11, "minutes": 15}),
    ],
)
def test_a_date_keeps_its_instant_in_the_destinations_timezone(wall, expected):
    c = conv("date_time")
    written = c.write(date_raw(wall))
    assert written == {**expected, "am_pm": "PM"}
    # what the destination then stores (its wall time) reads back equal: no rewrite
    stored_wall = wall.replace(tzinfo=CENTRAL).astimezone(PACIFIC).replace(tzinfo=None)
    assert c.stored(date_raw(stored_wall)) == written


def test_a_date_only_field_keeps_its_calendar_date_and_a_range_its_end():
    c = conv(
        "date_time", fmt={"time_format": "Ignore Time"}, source_fmt={"time_format": "Ignore Time"}
    )
    assert c.write(date_raw(dt.datetime(2026, 3, 2))) == {"date": "03/02/2026"}
    ranged = {**date_raw(dt.datetime(2026, 3, 2, 8)), "to": date_raw(dt.datetime(2026, 3, 2, 9))}
    written = conv("date_time").write(ranged)
    assert written["to"] == {"date": "03/02/2026", "hours": 7, "minutes": 0, "am_pm": "AM"}


@pytest.mark.parametrize(
    ("kind", "source", "stored", "written"),
    [
        ("short_text", "a", "a", "a"),
        ("number", 12, 12, 12.0),
        ("currency", "100.43", "100.43", 100.43),
        ("rating", 3, 3, 3.0),
        ("boolean", True, True, True),
        ("email", {"email": "a@b.co"}, {"email": "a@b.co"}, {"email": "a@b.co"}),
        ("link", {"url": "https://x"}, {"url": "https://x"}, {"url": "https://x"}),
        (
            "phone",
            {"full": "5125551234", "area": "512"},
            {"full": "5125551234"},
            {"full": "5125551234"},
        ),
        (
            "name",
            {"first": "A", "last": "B", "middle": ""},
            {"first": "A", "last": "B"},
            {"first": "A", "last": "B"},
        ),
        (
            "address",
            {"street": "1 Main", "latitude": 30, "longitude": -97.5, "zip": ""},
            {"street": "1 Main", "latitude": 30.0, "longitude": -97.5},
            {"street": "1 Main", "latitude": 30.0, "longitude": -97.5},
        ),
        ("short_text", "", "", None),
    ],
)
def test_each_type_is_written_as_knack_takes_it_and_compares_equal_once_stored(
    kind, source, stored, written
):
    c = conv(kind)
    assert c.write(source) == written
    assert c.stored(stored) == written  # unchanged: never written again


def test_choices_connections_and_refusals():
    single = conv("multiple_choice", fmt={"type": "single"})
    assert single.write("A") == "A" and single.write(["A"]) == "A"
    with pytest.raises(Refused, match="2 options for a field that takes one"):
        single.write(["A", "B"])
    assert conv("multiple_choice", fmt={"type": "multi"}).write("A") == ["A"]
    link = conv("connection")
    link.connected = {"s1": "d1", "s2": "d2"}
    assert link.write([{"id": "s2"}, {"id": "s1"}]) == ["d1", "d2"]
    assert link.stored([{"id": "d2", "identifier": "x"}, {"id": "d1"}]) == ["d1", "d2"]
    assert link.body(link.write([])) == []  # an emptied connection
    with pytest.raises(Refused, match="connected record s3 is not in"):
        link.write([{"id": "s3"}])
    with pytest.raises(Refused, match="is not a number"):
        conv("number", "short_text").write("many")


def test_knack_params_refuse_a_target_twice_or_the_match_field_as_a_target():
    base = {"app_name": "other", "object": "object_1", "match_field": "field_9"}
    assert config.KnackConfig(**base, fields={"field_1": "field_2"}).delete is False
    with pytest.raises(ValueError, match="field_2 filled by more than one source field"):
        config.KnackConfig(**base, fields={"field_1": "field_2", "field_3": "field_2"})
    with pytest.raises(ValueError, match="field_9 is the match_field"):
        config.KnackConfig(**base, fields={"field_1": "field_9"})


def test_an_unknown_knack_key_names_the_file_and_key(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "app_id: {dev: 0123456789abcdef01234567}\ncontainers:\n  object_1:\n    knack:\n"
        "      app_name: b\n      object: object_2\n      match_field: field_3\n"
        "      fields: {field_1: field_4}\n      delet: true\n"
    )
    with pytest.raises(
        ConfigError, match=r"a\.yaml: unknown key 'containers\.object_1\.knack\.delet'"
    ):
        config.load_app("a", tmp_path)


def test_an_apps_own_key_wins_over_knack_api_key(monkeypatch):
    monkeypatch.setenv("KNACK_API_KEY", "general")
    assert config.knack_api_key_variable("signs-markings") == "KNACK_API_KEY_SIGNS_MARKINGS"
    assert config.knack_api_key_of("signs-markings") == "general"
    monkeypatch.setenv("KNACK_API_KEY_SIGNS_MARKINGS", "own")
    assert config.knack_api_key_of("signs-markings") == "own"
