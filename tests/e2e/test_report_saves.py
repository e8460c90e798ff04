"""How often ``knack-nb run`` (``lib.reports.run_notebook``) saves the report while it runs.

papermill saves the executed notebook at the start, at every cell's start and end (markdown
cells too) and at the end: 31 PUTs of the sync notebook's report, each a round trip to S3.
``run_notebook`` saves at the start, at each code cell's start and at the end, so a run
killed half-way still leaves a report showing the cell that was running (checked by
``test_container_sync_faults_e2e.py::test_killed_half_way_then_rerun_ends_equal``).
"""

from __future__ import annotations

import json

import papermill.engines

from lib import reports


def test_the_report_is_saved_at_the_start_each_code_cell_and_the_end(demo_env, monkeypatch):
    saves: list[list[str]] = []  # each save: the status of every cell
    write = papermill.engines.write_ipynb

    def counting(nb, path):
        saves.append([c.metadata.papermill["status"] for c in nb.cells])
        return write(nb, path)

    monkeypatch.setattr(papermill.engines, "write_ipynb", counting)
    result = reports.run_notebook(
        "knack_container_to_s3", app_name="demo", env="dev", container="object_3"
    )
    assert result.ok, result.error

    key = result.report.removeprefix(f"s3://{demo_env.bucket}/")
    nb = json.loads(demo_env.s3().get_object(Bucket=demo_env.bucket, Key=key)["Body"].read())
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    assert len(nb["cells"]) > len(code) >= 5
    # the start, one save as each code cell starts (that cell running), the end
    assert len(saves) == 1 + len(code) + 1
    assert all(status == "pending" for status in saves[0])
    for save, index in zip(saves[1:-1], code, strict=True):
        assert save[index] == "running"
        assert all(save[i] == "completed" for i in code if i < index)
    assert all(status == "completed" for status in saves[-1])
    # the report in S3 is the whole run (papermill writes the finished notebook once more)
    assert all(c["metadata"]["papermill"]["status"] == "completed" for c in nb["cells"])
    assert result.summary["mode"] == "full" and result.summary["fetched"] > 0
