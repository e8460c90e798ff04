"""A full sync never deletes a record Knack did not delete, whatever its offset paging does.

Knack pages by offset with no snapshot (DESIGN.md, Facts): a record deleted while pages are
fetched shifts the later pages, and Knack has answered an empty page before the last one.
The sync deletes a stored record only when the record's own route answers 404.
End to end: papermill → kernel → Knack emulator (with its paging faults) → moto S3 for the
two runs whose report is read; the first load and the last run (summary and S3 only) take
the notebook's own steps in process (``signals.sync``, tests/inprocess.py).
"""

from __future__ import annotations

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
