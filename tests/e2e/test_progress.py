"""lib.progress: a tqdm bar on stderr outside a kernel; in a kernel (papermill here) one display
output updated in place, so log lines do not split it and the saved report holds only its
final state. And ``KnackClient.list_records(on_estimate=...)`` gives Knack's estimate, which
a bar can take as its total late."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from emulators.knack import KnackEmulator, generate_app
from lib import progress
from lib.clients.knack import KnackClient

ROOT = Path(__file__).resolve().parents[2]


# --- outside a kernel: tqdm on stderr ----------------------------------------------------


def test_outside_a_kernel_it_is_a_tqdm_bar_on_stderr_whose_total_can_come_late(monkeypatch):
    from tqdm import tqdm

    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress.progress_bar("sync object_3", unit="rec") as bar:
        assert isinstance(bar, tqdm) and bar.total is None
        bar.update(1200)
        bar.set_total(5000)
        assert bar.total == 5000
        bar.update(3800)
    text = err.getvalue()
    assert "sync object_3" in text and "5000/5000" in text and "100%" in text
    with progress.progress_bar("read object_1", unit="rec") as bar:
        bar.total = 10  # assigning works too
        bar.update(10)
    assert "10/10" in err.getvalue()


# --- the display bar's text (a clock given, so nothing depends on the real time) ---------


class FakeHandle:
    def __init__(self) -> None:
        self.updates: list[dict[str, str]] = []

    def update(self, obj, **kwargs) -> None:
        assert kwargs == {"raw": True}
        self.updates.append(obj)


def test_display_bar_text_throttling_and_final_state(monkeypatch):
    shown: list[dict[str, str]] = []
    handle = FakeHandle()

    def display(obj, **kwargs):
        assert kwargs == {"raw": True, "display_id": True}
        shown.append(obj)
        return handle

    monkeypatch.setattr("IPython.display.display", display)
    now = [100.0]
    bar = progress.DisplayBar("sync object_3", unit="rec", clock=lambda: now[0])
    assert shown == [
        {"text/plain": "sync object_3: started · 0 rec · 0.0 s", "text/html": shown[0]["text/html"]}
    ]
    now[0] += 0.1
    bar.update(10)  # too soon after the first display: not sent
    assert handle.updates == []
    now[0] += 0.5
    bar.update(290)
    assert handle.updates[-1]["text/plain"] == "sync object_3: 300 rec · 0.6 s · 500 rec/s"
    now[0] += 1.4
    bar.set_total(5000)  # the estimate, after the first page
    assert handle.updates[-1]["text/plain"] == (
        "sync object_3: 300 of 5,000 rec (6%) · 2.0 s · 150 rec/s"
    )
    now[0] += 1.0
    bar.update(900)
    assert handle.updates[-1]["text/plain"] == (
        "sync object_3: 1,200 of 5,000 rec (24%) · 3.0 s · 400 rec/s"
    )
    assert "width:24%" in handle.updates[-1]["text/html"]
    sent = len(handle.updates)
    now[0] += 9.5
    bar.update(3800)
    bar.update(1)  # at once: throttled
    bar.total = 5001
    assert len(handle.updates) == sent + 1
    with bar:
        pass
    final = handle.updates[-1]
    assert final["text/plain"] == (
        "sync object_3: done · 5,001 of 5,001 rec (100%) · 12 s · 400 rec/s"
    )
    assert "sync object_3: done" in final["text/html"] and "width:100%" in final["text/html"]
    bar.update(5)
    bar.close()
    assert handle.updates[-1] is final  # closed: nothing more is sent

    failing = progress.DisplayBar("upsert <x>", total=10, unit="row", clock=lambda: now[0])
    with pytest.raises(RuntimeError), failing:  # a failure: the bar says where it stopped
        failing.update(4)
        raise RuntimeError
    # no rate over less than half a second
    assert handle.updates[-1]["text/plain"] == "upsert <x>: stopped · 4 of 10 row (40%) · 0.0 s"
    assert "upsert &lt;x&gt;" in handle.updates[-1]["text/html"]


# --- in a kernel, end to end through papermill -------------------------------------------

CELL = """\
import logging
import sys
import time

from lib import progress

handler = logging.StreamHandler(sys.stdout)  # as lib.notebook.setup: logs go to stdout
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
logging.getLogger().addHandler(handler)
log = logging.getLogger("lib.test")
log.setLevel(logging.INFO)

with progress.progress_bar("sync object_3", unit="rec") as bar:
    assert isinstance(bar, progress.DisplayBar)
    for page in range(1, 6):
        log.info("page %d", page)
        if page == 2:
            bar.set_total(50)  # the estimate, known after page 1
        bar.update(10)
        time.sleep(0.3)  # some updates are sent, some throttled
with progress.progress_bar("upsert abcd-1234", total=7, unit="row") as bar:
    log.info("upserting")
    bar.update(3)
    bar.update(4)
log.info("all done")
"""


def test_in_a_kernel_the_saved_report_holds_one_output_per_bar_in_its_final_state(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(CELL))]
    source, out = tmp_path / "bars.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    pm.execute_notebook(
        str(source), str(out), kernel_name="python3", progress_bar=False, cwd=str(ROOT)
    )

    outputs = nbformat.read(out, as_version=4).cells[0].outputs
    displays = [o for o in outputs if o.output_type == "display_data"]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert len(displays) == 2, outputs  # one per bar, however many updates were sent
    assert all(o.output_type in ("display_data", "stream") for o in outputs), outputs
    assert {o.name for o in streams} == {"stdout"}  # nothing on stderr: no tqdm, no pink box
    sync, upsert = (o.data["text/plain"] for o in displays)
    assert sync.startswith("sync object_3: done · 50 of 50 rec (100%) · ")
    assert upsert.startswith("upsert abcd-1234: done · 7 of 7 row (100%) · ")
    for o in displays:
        assert o.data["text/plain"] in o.data["text/html"] and "width:100%" in o.data["text/html"]
    logged = "".join(o.text for o in streams)
    for n in range(1, 6):
        assert f"INFO lib.test: page {n}\n" in logged
    assert "INFO lib.test: upserting\n" in logged and "INFO lib.test: all done\n" in logged
    # the bars stay where they were created: the first before the first log line
    assert outputs[0].output_type == "display_data"


# --- Knack's estimate ------------------------------------------------------------------


def test_list_records_gives_knacks_estimate_once_before_any_record():
    metadata, records = generate_app(250, seed=5)
    with KnackEmulator(rate_limit=None) as knack:
        app_id = knack.add_app(metadata, records)
        knack.max_rows_per_page = 100  # three pages: 100, 100, 50
        client = KnackClient(app_id=app_id, api_url=knack.url, api_key=knack.api_key)
        events: list[tuple[str, int]] = []
        try:
            listing = client.list_records(
                "object_1",
                on_estimate=lambda n: events.append(("estimate", n)),
                on_records=lambda rows: events.append(("records", len(rows))),
            )
            # once, before the first page's records are handled
            assert events[:2] == [("estimate", 250), ("records", 100)]
            assert [e for e, _ in events].count("estimate") == 1
            assert sum(n for e, n in events if e == "records") == 250
            assert listing.count == 250 and listing.estimated_records == 250

            knack.faults.overstate_total_records = 30  # only an estimate: given as Knack says
            estimates: list[int] = []
            listing = client.list_records("object_1", on_estimate=estimates.append)
            assert estimates == [280] and listing.count == 250
        finally:
            client.close()
