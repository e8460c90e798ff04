"""``lib.notebook.glue`` writes exactly the output ``scrapbook.glue`` writes, so readers of the
reports (``scrapbook.read_notebook(...).scraps``, ``lib.reports.read_summary``) see the same
``summary``; the kernel no longer imports scrapbook (~3 s a run: papermill, nbformat,
jsonschema)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import scrapbook as sb

from lib import reports

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = {
    "status": "ok",
    "fetched": 3,
    "seconds": 0.25,
    "deleted": ["a", "b"],
    "none": None,
    "text": "é \u2192 ok",
    "nested": {"x": [1, 2.5, True]},
}


def test_glue_output_is_scrapbooks_own(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        # what a notebook's import cell loads: none of the slow ones (arcgis only to publish)
        nbformat.v4.new_code_cell(
            "import sys\nfrom lib import notebook, schema, sync\n"
            "from lib.publish import get_publisher\nnotebook.setup()\n"
            "print(sorted(m for m in ('scrapbook', 'papermill', 'jsonschema', 'nbformat',"
            " 'arcgis') if m in sys.modules))"
        ),
        nbformat.v4.new_code_cell(f"notebook.glue('summary', {SUMMARY!r})"),
        nbformat.v4.new_code_cell(f"import scrapbook as sb\nsb.glue('summary', {SUMMARY!r})"),
    ]
    source = tmp_path / "glue.ipynb"
    nbformat.write(nb, source)
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(source), str(out), kernel_name="python3", progress_bar=False, cwd=str(ROOT)
    )

    executed = nbformat.read(out, as_version=4)
    assert executed.cells[0].outputs[0].text.strip() == "[]"
    ours, theirs = executed.cells[1].outputs, executed.cells[2].outputs
    assert len(ours) == 1 and len(theirs) == 1
    assert ours[0] == theirs[0]  # same mimetype, payload (name, data, encoder, version), metadata

    executed.cells = executed.cells[:2]  # only ours
    nbformat.write(executed, out)
    assert sb.read_notebook(str(out)).scraps["summary"].data == SUMMARY
    assert reports.read_summary(str(out)) == SUMMARY
    assert reports.read_summary(executed) == SUMMARY
