"""A full sync never deletes a record Knack did not delete, whatever its offset paging does.

Knack pages by offset with no snapshot (DESIGN.md, Facts): a record deleted while pages are
fetched shifts the later pages, and Knack has answered an empty page before the last one.
The sync deletes a stored record only when the record's own route answers 404.
End to end: papermill → kernel → Knack emulator (with its paging faults) → moto S3 for the
two runs whose report is read; the first load and the last run (summary and S3 only) take
the notebook's own steps in process (``signals.sync``, tests/inprocess.py).
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from signals_app import Signals

ROWS = 20  # the page size: the emulator's cap lowered from Knack's 1000 (the client asks 1000)
N = 2 * ROWS + ROWS // 2  # three pages: 20, 20, 10 (S3 writes are what a record costs here)


@pytest.fixture
def big(demo_env, tmp_path, monkeypatch):
    monkeypatch.setattr(demo_env.knack, "max_rows_per_page", ROWS)
    params = tmp_path / "params"
    params.mkdir()
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    signals = Signals(demo_env, params, seed=3, n=N)
    first = signals.sync()
    assert first.ok and first.summary["written"] == N, first.error
    return signals


def test_paging_faults_never_delete_a_record_knack_still_has(big):
    knack = big.stack.knack
    order = [r["id"] for r in knack.records(big.app_id, "object_1")]  # Knack's listing order

    # 1. the first record is deleted in Knack right after page 1 is served, so page 2 shifts
    #    and the listing misses the first record of page 2, which is still in Knack; and
    #    page 2 answers empty once, so it is asked again
    shifted = order[ROWS]
    knack.faults.update({"delete_after_page": 1, "empty_page": 2, "empty_page_times": 1})
    during = big.run()
    assert during.ok, during.error
    assert order[0] not in big.knack()  # really deleted, but it was listed: stays till next run
    assert shifted in big.s3() and shifted in big.knack()  # not deleted: Knack confirmed it
    assert during.summary["deleted"] == 0 and during.summary["recovered"] == 1
    assert during.summary["confirmations"] == 2  # a probe of a listed record, then `shifted`
    assert "still in Knack" in big.report_text(during)

    # 2. page 2 stays empty (total_pages 3, page 3 full): a hole, never "the rest is gone"
    knack.faults.update({"empty_page": 2, "empty_page_times": 100})
    hole = big.run()
    knack.faults.update({"empty_page": 0})
    assert not hole.ok
    # pages 1 and 3 of N - 1 records (the one deleted above is gone now)
    assert hole.summary["deleted"] == 0 and hole.summary["fetched"] == ROWS + (N - 1 - 2 * ROWS)
    assert "had a hole (page 2 of the 3 Knack estimated came back empty" in hole.error
    assert "none was deleted" in hole.error and "Rerun later" in hole.error
    assert "a rerun is safe and completes the work" in hole.error
    assert "had a hole" in big.report_text(hole)
    assert len(big.s3()) == N  # all still stored

    # 3. the next full run deletes the record Knack really deleted, once Knack confirms it
    after = big.sync()
    assert after.ok, after.error
    assert after.summary["deleted"] == 1 and after.summary["confirmations"] == 2
    big.assert_s3_equals_knack()


HANG_GUARD = 60.0  # seconds: a run that has not ended by then never would (not a timing)


def run_or_fail_on_loop(signals, **kwargs):
    """``signals.run`` (papermill) in a thread; a run still going after ``HANG_GUARD`` fails
    the test, once Knack's fault is lifted so that the run (and its kernel) ends."""
    out = []
    thread = threading.Thread(target=lambda: out.append(signals.run(**kwargs)), daemon=True)
    thread.start()
    thread.join(HANG_GUARD)
    if thread.is_alive():
        asked = len(signals.stack.knack.requests)
        signals.stack.knack.faults.repeat_page = 0  # Knack behaves again: the listing ends
        thread.join()
        pytest.fail(
            f"the run was still listing after {HANG_GUARD:.0f} s and {asked} requests: "
            "Knack's same page for every page number made it loop"
        )
    return out[0]


def record_reads(knack):
    """The single-record requests (``GET .../records/{id}``) in the emulator's log."""
    return [r for r in knack.requests if "/records/" in r.path]


def test_the_same_page_for_every_page_number_ends_the_listing_as_a_hole(big):
    knack = big.stack.knack
    knack.reset_log()
    knack.faults.update({"repeat_page": 3})  # pages 4, 5, ... bring page 3's records again
    looped = run_or_fail_on_loop(big)
    assert not looped.ok
    assert looped.summary["fetched"] == N and looped.summary["deleted"] == 0
    assert "had a hole (page 4 brought only records of earlier pages" in looped.error
    assert "none was deleted" in looped.error and "Rerun later" in looped.error
    assert "had a hole (page 4" in big.report_text(looped)
    pages = [int(r.query["page"]) for r in knack.requests if r.path.endswith("/records")]
    assert max(pages) == 4 and record_reads(knack) == []
    big.assert_s3_equals_knack()


def test_a_last_page_that_came_back_empty_is_listed_again_not_confirmed_record_by_record(big):
    knack = big.stack.knack
    knack.reset_log()
    # the last page (10 records) answers empty once: the listing ends 10 short of Knack's 50
    knack.faults.update({"empty_page": 3, "empty_page_times": 1})
    again = big.run()
    assert again.ok, again.error
    assert again.summary["confirmations"] == 0 and record_reads(knack) == []
    assert again.summary["recovered"] == 0 and again.summary["deleted"] == 0
    assert again.summary["fetched"] == N
    assert "listed it again before confirming any deletion" in big.report_text(again)
    big.assert_s3_equals_knack()


def test_only_what_the_second_listing_still_misses_is_confirmed_one_by_one(big):
    knack = big.stack.knack
    order = [r["id"] for r in knack.records(big.app_id, "object_1")]
    knack.delete_record(big.app_id, "object_1", order[0])  # really gone: 49 left, 20 + 20 + 9
    knack.reset_log()
    knack.faults.update({"empty_page": 3, "empty_page_times": 1})
    once = big.sync()
    assert once.ok, once.error
    # the second listing found the 9 of page 3: a probe of a listed record, then order[0]
    assert once.summary["confirmations"] == 2 and len(record_reads(knack)) == 2
    assert once.summary["deleted"] == 1 and once.summary["recovered"] == 0
    big.assert_s3_equals_knack()

    # the second listing comes back short too: it is read once, then each one is confirmed
    knack.faults.update({"empty_page": 3, "empty_page_times": 2})
    knack.reset_log()
    twice = big.sync()
    assert twice.ok, twice.error
    assert twice.summary["confirmations"] == 1 + 9 and twice.summary["recovered"] == 9
    listings = [r for r in knack.requests if r.path.endswith("/records") and r.query["page"] == "1"]
    assert len(listings) == 3  # the first, the one re-read, the one after records recovered
    big.assert_s3_equals_knack()


def test_an_incremental_listing_short_of_knacks_count_is_listed_again_never_skipped(big):
    knack = big.stack.knack
    order = [r["id"] for r in knack.records(big.app_id, "object_1")]
    big.touch(order[-1], dt.datetime(2026, 8, 1, 12, tzinfo=dt.UTC), change="on the last page")
    point = big.state()
    since = "2025-12-01"  # every record was modified since: 50 records, the last page 10

    knack.faults.update({"empty_page": 3, "empty_page_times": 2})  # and when listed again
    twice = big.sync(date=since)
    assert not twice.ok and "came back short twice" in twice.error
    assert "the `auto` state stays where it was" in twice.error
    assert big.state() == point  # the next `auto` run still asks for the changed record

    knack.faults.update({"empty_page": 3, "empty_page_times": 1})
    once = big.sync(date=since)
    assert once.ok, once.error
    assert once.summary["fetched"] == N
    big.assert_s3_equals_knack()  # the changed record on the last page is stored
