"""knack_container_to_knack.ipynb end to end: papermill → kernel → moto S3 → the Knack
emulator's write API, a generated source app ("assets", Central time) copied to an empty
destination app ("assets-copy", Eastern time, its own key): tests/knack_copy_app.py.
Set-up runs (the sync, a first copy before a change) take the notebook's steps in process
(tests/inprocess.py); each behaviour shown keeps a papermill run. Write requests are
counted at the emulator (its request log), and the records compared there."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
from knack_copy_app import KEY_VARIABLE, TARGET, CopyApps, N

from emulators.knack_pair import ASSET_MATCH, FIELD_MAP, OWNER_MATCH, TARGET_OWNERS

CENTRAL, EASTERN = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")
EPOCH = dt.datetime(1970, 1, 1)


@pytest.fixture
def apps(demo_env, tmp_path, monkeypatch) -> CopyApps:
    params = tmp_path / "params"
    params.mkdir()
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    return CopyApps(demo_env, params, monkeypatch)


def instant(raw: dict, tz: ZoneInfo) -> dt.datetime:
    """A Knack date's instant: its unix_timestamp is the local wall time written as UTC."""
    wall = EPOCH + dt.timedelta(milliseconds=raw["unix_timestamp"])
    return wall.replace(tzinfo=tz)


def assert_copied(apps: CopyApps) -> None:
    """Every source record has exactly one destination record, every mapped value equal to
    the source's after conversion, checked type by type."""
    sources, targets = apps.sources(), apps.by_source()
    assert set(targets) == set(sources)
    owners = {r[f"{OWNER_MATCH}_raw"]: r["id"] for r in apps.targets(TARGET_OWNERS)}
    for rid, src in sources.items():
        dst = targets[rid]

        def raw(source_key: str, src=src, dst=dst):
            return src[f"{source_key}_raw"], dst[f"{FIELD_MAP[source_key]}_raw"]

        for key in ("field_11", "field_12", "field_16", "field_28"):  # text, choice
            a, b = raw(key)
            assert a == b, (rid, key)
        for key in ("field_13", "field_23", "field_24"):  # number, rating, currency
            a, b = raw(key)
            assert float(a) == float(b), (rid, key)
        assert raw("field_14")[0] is raw("field_14")[1]  # boolean
        a, b = raw("field_15")  # date/time: the same instant, each in its app's timezone
        assert instant(a, CENTRAL) == instant(b, EASTERN), rid
        a, b = raw("field_27")  # date only: the same calendar date
        assert a["date"] == b["date"], rid
        a, b = raw("field_17")  # address with latitude/longitude
        assert {k: a[k] for k in a} == {k: b[k] for k in a}, rid
        for key in ("field_18", "field_19", "field_21"):  # name, email, link
            a, b = raw(key)
            assert a == b, (rid, key)
        assert raw("field_20")[0]["full"] == raw("field_20")[1]["full"]  # phone
        assert sorted(raw("field_26")[0]) == sorted(raw("field_26")[1])  # several options
        a, b = raw("field_22")  # connection: the copy of the connected owner
        assert [c["id"] for c in b] == [owners[c["id"]] for c in a], rid


def test_first_copy_holds_every_value_of_every_type_and_an_unchanged_rerun_writes_nothing(apps):
    apps.sync()
    owners = apps.publish(container="object_1")
    assert owners.ok, owners.error
    assert owners.summary["created"] == 5
    apps.stack.knack.reset_log()

    result = apps.publish()
    assert result.ok, result.error
    s = result.summary
    assert (s["mode"], s["read"], s["created"], s["updated"], s["deleted"]) == ("full", N, N, 0, 0)
    assert s["destination_app"] == TARGET and s["requests"] >= N
    assert len([w for w in apps.writes() if w.method == "POST"]) == N
    assert all(w.api_key == apps.key for w in apps.writes())  # the destination's own key
    assert_copied(apps)
    # dates near midnight: some land on another calendar day in the other timezone
    moved = [
        r
        for r in apps.sources().values()
        if instant(r["field_15_raw"], CENTRAL).astimezone(EASTERN).date()
        != instant(r["field_15_raw"], CENTRAL).date()
    ]
    assert moved and len(moved) < N
    text = apps.report_text(result)
    assert "requests to Knack app assets-copy" in text and "daily API quota" in text
    for secret in [*apps.stack.secrets, apps.key]:
        assert secret not in text
    # the sample's heads are the destination's labels with their keys ("Source Id (field_N)")
    heads = result_sample_heads(text)
    assert heads and all(re.fullmatch(r".+ \(field_\d+\)", h) for h in heads), heads

    apps.stack.knack.reset_log()
    again = apps.publish()
    assert again.ok, again.error
    assert apps.writes() == []  # an unchanged rerun: 0 write requests
    assert (again.summary["unchanged"], again.summary["created"], again.summary["updated"]) == (
        N,
        0,
        0,
    )


def test_ten_changed_records_make_exactly_ten_updates(apps):
    apps.first_copy()
    ids = sorted(apps.sources())[:10]
    for i, rid in enumerate(ids):
        src = apps.sources()[rid]
        stamp = src["field_15_raw"]["unix_timestamp"] + 60_000 * (i + 1)  # a minute or more
        moved = dict(src["field_15_raw"], unix_timestamp=stamp)
        wall = EPOCH + dt.timedelta(milliseconds=stamp)
        moved.update(
            date=wall.strftime("%m/%d/%Y"),
            hours=f"{wall.hour % 12 or 12:02d}",
            minutes=f"{wall.minute:02d}",
            am_pm="AM" if wall.hour < 12 else "PM",
        )
        changes = {"field_15": moved} if i % 2 else {"field_11": f"renamed {i}"}
        apps.change(rid, **changes)
    apps.sync()
    apps.stack.knack.reset_log()

    result = apps.publish()
    assert result.ok, result.error
    assert sorted(w.method for w in apps.writes()) == ["PUT"] * 10
    assert {w.path.rsplit("/", 1)[1] for w in apps.writes()} == {
        apps.by_source()[rid]["id"] for rid in ids
    }
    assert (result.summary["updated"], result.summary["unchanged"]) == (10, N - 10)
    assert_copied(apps)


def test_a_source_deletion_deletes_only_with_delete_true_and_within_the_guard(apps):
    apps.first_copy()
    ids = sorted(apps.sources())
    for rid in ids[:2]:
        apps.stack.knack.delete_record(apps.source_id, "object_2", rid)
    apps.sync()
    apps.stack.knack.reset_log()
    kept = apps.publish_in_process()  # delete: false (the default)
    assert kept.ok, kept.error
    assert apps.writes() == [] and kept.summary["kept"] == 2
    assert set(ids[:2]) <= set(apps.by_source())

    apps.write_params(delete=True)
    result = apps.publish()
    assert result.ok, result.error
    assert [w.method for w in apps.writes()] == ["DELETE", "DELETE"]
    assert result.summary["deleted"] == 2
    assert_copied(apps)

    # more than mass_delete_threshold (half) of the destination would go (records whose
    # source ids S3 never held, as after the source app was copied: new ids): refused
    stale = apps.targets()[0]
    for i in range(N):
        rid = f"{i:024x}"
        record = {**stale, "id": f"{i + 1:024x}", f"{ASSET_MATCH}": rid, f"{ASSET_MATCH}_raw": rid}
        apps.stack.knack.put_record(apps.target_id, "object_12", record)
    apps.stack.knack.reset_log()
    refused = apps.publish_in_process()
    assert not refused.ok and "mass_delete_threshold" in refused.error
    assert apps.writes() == []
    assert len(apps.targets()) == 2 * N - 2


def test_503s_and_429s_mid_run_lose_and_duplicate_nothing(apps):
    apps.sync()
    assert apps.publish_in_process("object_1").ok
    faults = apps.stack.knack.faults
    # every 4th request fails before it is applied, and 3 writes are applied but their
    # answer is lost (the create must not be sent again: the record is matched first);
    # the faults ask for a short Retry-After, so the test waits little
    faults.update(
        {
            "fail_path": "/objects/",
            "fail_every": 4,
            "status": 503,
            "apply_then_fail": 3,
            "retry_after": 0.05,
        }
    )
    result = apps.publish()
    assert result.ok, result.error
    assert result.summary["retries"] >= 3 and result.summary["created"] == N
    assert_copied(apps)  # one destination record per source, every value right

    ids = sorted(apps.sources())[:10]
    for i, rid in enumerate(ids):
        apps.change(rid, field_13=100 + i)
    apps.sync()
    faults.update({"fail_every": 3, "status": 429, "apply_then_fail": 0})  # retry_after stays
    apps.stack.knack.reset_log()
    result = apps.publish_in_process()
    assert result.ok, result.error
    assert result.summary["updated"] == 10 and result.summary["retries"] >= 3
    answered = [w.status for w in apps.writes()]
    assert answered.count(200) == 10 and 429 in answered
    assert_copied(apps)


def test_a_run_past_max_requests_per_run_stops_before_starting(apps):
    apps.sync()
    assert apps.publish_in_process("object_1").ok
    apps.write_params(max_requests_per_run=N)  # the listing and N creates need more
    apps.stack.knack.reset_log()
    result = apps.publish()
    assert not result.ok and "max_requests_per_run (30)" in result.error
    assert "nothing was written" in result.error
    assert apps.writes() == []


def test_a_mapped_field_gone_from_either_app_fails_before_any_write(apps):
    apps.first_copy()
    apps.stack.knack.remove_field(apps.target_id, "object_12", FIELD_MAP["field_18"])
    apps.stack.knack.remove_field(apps.source_id, "object_2", "field_21")
    apps.sync()  # the source's metadata, as stored in S3, lacks field_21 now
    apps.stack.knack.reset_log()
    result = apps.publish()
    assert not result.ok
    assert "source field field_21 is gone from object_2" in result.error
    assert f"destination field {FIELD_MAP['field_18']} (filled by field_18" in result.error
    assert apps.writes() == []


def test_a_value_knack_refuses_fails_that_record_alone_with_knacks_message(apps):
    apps.sync()
    assert apps.publish_in_process("object_1").ok
    bad = sorted(apps.sources())[3]
    apps.change(bad, field_16="SOLD")  # not an option of the destination's Status
    apps.sync()
    result = apps.publish_in_process()
    assert not result.ok
    assert f"{bad}: field_206: 'SOLD' is not an option of Status" in result.error
    assert result.summary["created"] == N - 1 and result.summary["failed"] == 1
    assert bad not in apps.by_source()


def test_the_destination_key_comes_from_its_own_variable(apps, monkeypatch):
    apps.sync()
    monkeypatch.delenv(KEY_VARIABLE)  # the stack's KNACK_API_KEY is not the destination's
    result = apps.publish_in_process("object_1")
    assert not result.ok and "Invalid API key" in result.error
    assert apps.targets(TARGET_OWNERS) == []
    monkeypatch.delenv("KNACK_API_KEY")
    result = apps.publish_in_process("object_1")
    assert not result.ok and f"{KEY_VARIABLE} is not set" in result.error


def result_sample_heads(report: str) -> list[str]:
    """The column heads of the report's sample table (the cell after `result.sample`)."""
    cells = json.loads(report)["cells"]
    code = [i for i, c in enumerate(cells) if "result.sample" in "".join(c.get("source", ""))]
    html = "".join(
        "".join(o.get("data", {}).get("text/html", "")) for o in cells[code[0]].get("outputs", [])
    )
    heads = re.findall(r"<th[^>]*>(.*?)</th>", html, flags=re.S)
    return [re.sub(r"<[^>]+>", "", h).strip() for h in heads]
