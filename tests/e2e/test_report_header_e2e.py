"""Every report opens with a header (lib/header.py): status, where it ran, the parameters
with their meaning, duration and counts; a failed run states its error once, near the top.
Runs through papermill against the stand-ins, then reads the report from S3."""

import json
from html import escape as html_escape

import pytest


def outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] for o in c.get("outputs", [])]


def shown(output: dict) -> str:
    """What a reader sees of one output: its HTML if it has one, else its text."""
    if output.get("output_type") == "error":
        return "\n".join(output.get("traceback", []))
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    return "".join(data.get("text/html") or data.get("text/plain") or "")


def header_of(nb: dict) -> dict:
    (header,) = [o for o in outputs(nb) if "knack-nb-header" in shown(o)]
    # the first output of the notebook's first code cell after its parameters
    code = [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and not {"parameters", "injected-parameters"} & set(c["metadata"].get("tags", []))
    ]
    assert code[0]["outputs"][0] is header
    return header


def report(signals, result) -> dict:
    return json.loads(signals.report_text(result))


def test_a_report_opens_with_its_status_parameters_and_counts(signals):
    result = signals.run()
    assert result.ok, result.error
    header = header_of(report(signals, result))
    html = shown(header)
    assert 'data-status="ok"' in html and "✓ ok in " in html
    assert "signals-dev · knack_container_to_s3 · object_1" in html
    assert "<code>date</code>: <code>none</code> → full run" in html
    n = result.summary["fetched"]
    assert f"fetched <strong>{n:,}</strong>" in html and f"written <strong>{n:,}</strong>" in html
    plain = "".join(header["data"]["text/plain"])
    assert plain.startswith("✓ ok in ") and "date: none → full run" in plain
    assert plain.split(":")[0].endswith(" s of cells")  # not papermill's whole run


def test_a_failed_report_states_its_error_once_at_the_top(signals):
    signals.stack.s3().put_object(
        Bucket=signals.stack.bucket,
        Key="_state/signals-dev/object_1/knack_container_to_s3.json",
        Body=b"{oops",
    )
    result = signals.run(date="auto")
    assert not result.ok
    message = result.error.split(": ", 1)[1]  # "CorruptObjectError: <message>"
    nb = report(signals, result)
    html = shown(header_of(nb))
    assert 'data-status="failed"' in html and "What went wrong (cell In [" in html
    assert (
        "<code>auto</code> → incremental: records modified in Knack since the last successful run"
    ) in html
    # the message (escaped as HTML in the header) is shown once in the whole report
    escaped = html_escape(message)
    seen = [o for o in outputs(nb) if message in shown(o) or escaped in shown(o)]
    assert len(seen) == 1, [shown(o)[:200] for o in seen]
    (failing,) = [
        c for c in nb["cells"] if any(o["output_type"] == "error" for o in c.get("outputs", []))
    ]
    assert f"What went wrong (cell In [{failing['execution_count']}])" in html
    (error,) = [o for o in outputs(nb) if o["output_type"] == "error"]
    assert error["evalue"] == message  # whole, for papermill and the reports index
    assert "header at the top" in error["traceback"][0]


def test_the_header_of_a_run_that_never_got_a_result_is_failed(signals):
    result = signals.run(container="object_99")
    assert not result.ok
    html = shown(header_of(report(signals, result)))
    assert 'data-status="failed"' in html and "object_99" in html
    assert "add it under" in html  # the error says what to do


@pytest.mark.parametrize(
    "value, means",
    [
        (None, "full run"),
        ("auto", "since the last successful run"),
        ("2026-11-01", "on or after this"),
        ("not-a-date", "could not be read as a date"),  # before: "on or after this"
    ],
)
def test_the_date_parameter_says_what_it_does(value, means):
    from lib.header import meaning

    assert means in meaning("date", value, notebook="knack_container_to_s3")
    assert "written to S3" in meaning("date", "auto", notebook="knack_container_to_agol")
