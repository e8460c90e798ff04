"""explore_container.ipynb end to end: a sync writes the snapshot (in process), then papermill
→ kernel → lib.explore → moto S3, and the report is read back.

What the report shows is checked against values computed here from the raw records (the
fixture's JSON, the generated app's records), not from the snapshot: fill rates from the
``field_N_raw`` values, months from the raw dates (Knack's local dates: no timezone, the
machine's included, enters), points from the raw latitude/longitude.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser

import nbformat
from map_data import embedded

from emulators.knack import load_fixture_app
from lib import cli, maps, reports, sync
from lib.metadata import upload_metadata
from lib.records import coordinates

IDS = {"app_name": "demo", "container": "object_3", "env": "dev"}
_NOT_NAME = re.compile(r"[^0-9a-z_]")


class _Rows(HTMLParser):
    """The text of every table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def report(stack, result) -> tuple[str, list[str]]:
    """The report's text and the text/html of its outputs, in order."""
    key = result.report.removeprefix(f"s3://{stack.bucket}/")
    text = stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()
    nb = nbformat.reads(text, as_version=4)
    htmls = [
        out["data"]["text/html"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "text/html" in out.get("data", {})
    ]
    return text, htmls


def columns_table(htmls: list[str]) -> dict[str, list[str]]:
    """The columns table of the report: column name -> its row's cells."""
    (table,) = [h for h in htmls if "field columns" in h and "Knack type" in h]
    parser = _Rows()
    parser.feed(table)
    header, *rows = parser.rows
    assert header[:6] == ["column", "field", "Knack type", "type", "filled", "share"]
    assert re.fullmatch(r"filled, of [\d,]+", header[6])  # the bars: shares of the rows
    return {row[0]: row for row in rows}


def label_rule(label: str) -> str:
    name = _NOT_NAME.sub("_", label.strip().lower())
    return "_id" if name == "id" else name


def present(raw) -> bool:
    return raw not in (None, "", [], {})


def test_demo_snapshot_report_counts_columns_and_months(demo_env):
    stack = demo_env
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(**IDS).ok
    stored = stack.s3_keys("demo-dev/object_3/")

    result = reports.run_notebook("explore_container", **IDS)
    assert result.ok, result.error
    s = result.summary
    metadata, records = load_fixture_app()
    fixture = records["object_3"]
    assert s["records"] == len(stored) == len(fixture) == 25
    assert (s["app_name"], s["env"], s["container"], s["errors"]) == ("demo", "dev", "object_3", 0)
    obj = next(o for o in metadata["application"]["objects"] if o["key"] == "object_3")
    assert s["columns"] == len(obj["fields"])

    text, htmls = report(stack, result)
    table = columns_table(htmls)
    fields = {f["key"]: f for f in obj["fields"]}
    expected_types = {
        "field_10": "float64",
        "field_29": "bool",
        "field_44": "string",
        "field_7": "string",
        "field_13": "timestamp (America/Chicago)",
    }
    for key, dtype in expected_types.items():
        name = label_rule(fields[key]["name"])
        filled = sum(present(r.get(f"{key}_raw")) for r in fixture)
        row = table[name]
        assert row[1:5] == [key, fields[key]["type"], dtype, str(filled)], row
        assert row[5] == f"{100 * filled / len(fixture):.0f}%"
    assert table["address_lat_lon"][4] == "2"  # two of the fixture's records have coordinates

    # records per month of field_13 (params' modified_date_field), from the raw local dates
    months = Counter("{2}-{0}".format(*r["field_13_raw"]["date"].split("/")) for r in fixture)
    (chart,) = [h for h in htmls if "records per month" in h]
    shown = dict(re.findall(r"<title>(\d{4}-\d{2}): (\d+) records</title>", chart))
    assert {m: int(n) for m, n in shown.items() if n != "0"} == dict(months)
    assert min(shown) == min(months) and max(shown) == max(months)

    (located,) = [h for h in htmls if embedded(h)]
    (shown,) = embedded(located)
    assert len(shown["points"]) == s["points"] == s["located"] == 2
    with_points = {r["id"] for r in fixture if coordinates(r.get("field_44_raw"))}
    assert {p[2].split(" — ")[0] for p in shown["points"]} == with_points  # popups: ids
    assert "2 points of address_lat_lon (field_44) from 2 of 25 records" in located

    frames = [h for h in htmls if "knack-nb-table" in h or "dataframe" in h]
    newest = max(fixture, key=lambda r: r["field_13_raw"]["unix_timestamp"])
    (sample,) = [h for h in frames if newest["id"] in h]  # the sample starts at the newest
    assert "knack-nb-table" in sample and "dataframe" not in sample  # one table renderer
    for frame in frames:
        assert "NaN" not in frame and "&lt;NA&gt;" not in frame and "NaT" not in frame

    for secret in stack.secrets:
        assert secret not in text


def test_generated_app_map_counts_the_located_records(signals):
    assert signals.sync().ok
    raw = [r.get("field_3_raw") for r in signals.knack().values()]
    located = sum(isinstance(v, dict) and "latitude" in v for v in raw)
    assert 0 < located < len(raw)  # the generator leaves ~2% without a location

    result = reports.run_notebook(
        "explore_container", app_name="signals", env="dev", container="object_1"
    )
    assert result.ok, result.error
    s = result.summary
    assert (s["records"], s["located"], s["points"]) == (len(raw), located, located)
    _, htmls = report(signals.stack, result)
    (drawn,) = [h for h in htmls if embedded(h)]
    (shown,) = embedded(drawn)
    assert len(shown["points"]) == located
    assert f'aria-label="map of {located} points"' in drawn
    knack = signals.knack()  # each popup: the record's id and its Location Name
    assert sorted(p[2] for p in shown["points"]) == sorted(
        maps.Point(0, 0, rid, r.get("field_2_raw") or "").popup
        for rid, r in knack.items()
        if coordinates(r.get("field_3_raw"))
    )
    assert (
        f"{located} points of location (field_3) from {located} of {len(raw)} records; "
        f"{len(raw) - located} without coordinates"
    ) in drawn
    table = columns_table(htmls)
    assert table["location"][1:5] == ["field_3", "address", "string", str(located)]


def test_a_missing_snapshot_is_one_clear_error_naming_what_to_run(demo_env, capsys):
    assert (
        cli.main(["run", "explore_container", "-a", "demo", "-e", "dev", "-c", "object_3", "-q"])
        == 1
    )
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    url = f"s3://{demo_env.bucket}/_snapshots/demo-dev/object_3.parquet"
    assert first == (
        f"knack-nb: explore_container failed: SnapshotError: {url} does not "
        "exist: run knack_container_to_s3 for object_3 (every successful sync "
        "writes it)"
    )
    [key] = demo_env.s3_keys("reports/demo-dev/explore_container/")
    nb = json.loads(demo_env.s3().get_object(Bucket=demo_env.bucket, Key=key)["Body"].read())
    errors = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    message = (
        f"{url} does not exist: run knack_container_to_s3 for object_3 "
        "(every successful sync writes it)"
    )
    # stated once, in the report's header; the failing cell points there; evalue is whole
    assert len(errors) == 1 and errors[0]["evalue"] == message
    assert errors[0]["traceback"] == [
        "SnapshotError: this run failed; the header at the top "
        "of the report says why and what to do"
    ]
    (header,) = [
        o
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "knack-nb-header" in "".join(o.get("data", {}).get("text/html", ""))
    ]
    assert 'data-status="failed"' in "".join(header["data"]["text/html"])
    assert f"SnapshotError: {message}" in "".join(header["data"]["text/plain"])
