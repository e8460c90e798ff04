"""An analyst's own cells after the run (in Lab, or appended to a notebook) never set the
report's status: ``notebook.finish`` settles the header. Through papermill against the
stand-ins, reading the executed notebook."""

from __future__ import annotations

import nbformat
import pytest

from lib import reports

ANALYST_CELLS = {
    "a missing column": 'result.objects.to_pandas()["no_such_column"]',
    "a project error": (
        "from lib.errors import ConfigError\nraise ConfigError('an analyst made this one')"
    ),
}


def _header(nb: nbformat.NotebookNode) -> str:
    (html,) = [
        "".join(o.get("data", {}).get("text/html", ""))
        for c in nb.cells
        for o in c.get("outputs", [])
        if "knack-nb-header" in "".join(o.get("data", {}).get("text/html", ""))
    ]
    return html


@pytest.mark.parametrize("case", sorted(ANALYST_CELLS))
def test_a_failing_cell_after_finish_leaves_the_header_ok(demo_env, tmp_path, case):
    nb = nbformat.read(reports.notebook_path("upload_metadata"), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(ANALYST_CELLS[case]))
    path = tmp_path / "upload_metadata.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "report.ipynb"
    result = reports.run_notebook(str(path), app_name="demo", env="dev", output=str(out))
    assert not result.ok  # papermill still stops at the failing cell: the cell says why
    report = nbformat.read(out, as_version=4)
    header = _header(report)
    assert 'data-status="ok"' in header and "✓ ok in " in header, header  # before: failed
    errors = [o for o in report.cells[-1].outputs if o.output_type == "error"]
    assert errors and "header at the top" not in "".join(errors[0].traceback)


def test_a_failing_run_cell_still_fails_the_header(demo_env, tmp_path):
    """The run's own cells still do: a project error in the run's call."""
    result = reports.run_notebook(
        "upload_metadata", app_name="demo", env="dev", output=str(tmp_path / "r.ipynb")
    )
    assert result.ok
    demo_env.knack.faults.metadata_body = "<html>down</html>"
    out = tmp_path / "failed.ipynb"
    result = reports.run_notebook("upload_metadata", app_name="demo", env="dev", output=str(out))
    assert not result.ok
    assert 'data-status="failed"' in _header(nbformat.read(out, as_version=4))
