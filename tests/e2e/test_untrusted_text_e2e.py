"""Text from services shown as text, never as markup: an app, object, view, field and record
and an ArcGIS layer named with Markdown (a ``javascript:`` link, a remote image) go through
upload_metadata, knack_container_to_s3 and knack_container_to_agol run by papermill, and the
offline page of each report (``knack-nb reports --html``) shows the names literally, with no
``javascript:`` address and nothing fetched from elsewhere. The steps before the notebook a
test checks run in process (tests/inprocess.py)."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from inprocess import run as run_in_process
from signals_app import N
from test_agol_publish_e2e import netguard  # noqa: F401 - no request leaves 127.0.0.1

from emulators.knack import generate_app
from emulators.stack import agol_fields
from lib import cli, reports

EVIL = "[x](javascript:alert(1)) ![](http://evil.example/p.png)"
LABEL = "Location Name <img src=http://evil.example/l.png>"  # field_2's label
TABLE = "7ab1e0c3d4e5f60718293a4b5c6d7e8f"  # an ArcGIS table named EVIL
IDS = {"app_name": "signals", "env": "dev"}


@pytest.fixture
def evil(signals, netguard):  # noqa: F811
    """The signals app, named EVIL (so are object_1 and view_1, field_2's label is LABEL and
    one record's field_2 is EVIL), published to an ArcGIS table named EVIL."""
    stack = signals.stack
    metadata, records = generate_app(N, seed=1)
    app = metadata["application"]
    app["name"] = EVIL
    obj = next(o for o in app["objects"] if o["key"] == "object_1")
    obj["name"] = EVIL
    next(f for f in obj["fields"] if f["key"] == "field_2")["name"] = LABEL
    for scene in app["scenes"]:
        for view in scene["views"]:
            view["name"] = EVIL
    first = records["object_1"][0]
    first["field_2"] = first["field_2_raw"] = EVIL
    assert stack.knack.add_app(metadata, records) == signals.app_id
    stack.arcgis.add_service(
        TABLE, "evil", [{"name": EVIL, "fields": agol_fields(app, "object_1")}]
    )
    # a table with a location field: the report says the layer, by name, has no geometry
    signals.containers["object_1"]["agol"] = {
        "service_id": TABLE,
        "layer_id": 0,
        "location_field": "field_3",
    }
    signals.write_params()
    return signals


class _Page(HTMLParser):
    """A page's start tags (with their attributes) and the text it shows."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def rendered(result: reports.RunResult, out: Path, capsys, caplog) -> str:
    """The offline page of ``result``'s report, as ``knack-nb reports --html`` writes it;
    the report itself has nothing for the page's own clean-up (lib/offline.py) to remove."""
    capsys.readouterr()
    caplog.set_level(logging.WARNING, logger="lib.reports.index")
    assert cli.main(["reports", "--html", result.report, "--out", str(out)]) == 0
    assert "left out" not in caplog.text, caplog.text
    (line,) = capsys.readouterr().out.strip().splitlines()
    path = re.match(r"^wrote (.+\.html) \(also s3://", line)[1]
    return Path(path).read_text()


def assert_safe(page: str) -> str:
    """No address runs script, nothing is fetched from elsewhere; the text the page shows."""
    parsed = _Page(page)
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            address = re.sub(r"[\x00-\x20]+", "", html.unescape(value or "")).lower()
            assert not address.startswith(("javascript:", "vbscript:")), (tag, name, value)
            if name in ("src", "srcset", "poster", "data", "background") or (
                name == "href" and tag in ("link", "image", "use")
            ):
                assert not re.match(r"^([a-z][a-z0-9+.-]*:)?//", address), (tag, name, value)
                assert "evil.example" not in address, (tag, name, value)
    assert "evil.example" not in " ".join(v or "" for _, a in parsed.tags for v in a.values())
    return " ".join("".join(parsed.text).split())


def test_upload_metadata_shows_names_as_text(evil, tmp_path, capsys, caplog):
    result = reports.run_notebook("upload_metadata", **IDS)
    assert result.ok, result.error
    shown = assert_safe(rendered(result, tmp_path / "pages", capsys, caplog))
    assert f"{EVIL}, timezone" in shown  # the app's name, in the run's sentence
    assert f"Records per object ({EVIL}, Knack's count)" in shown
    assert shown.count(EVIL) >= 4, shown  # and the object's and the views' names


def test_sync_shows_labels_and_values_as_text(evil, tmp_path, capsys, caplog):
    """(Its report quotes no service in Markdown: this keeps it so.)"""
    assert run_in_process("upload_metadata", **IDS).ok
    result = evil.run("object_1")
    assert result.ok, result.error
    shown = assert_safe(rendered(result, tmp_path / "pages", capsys, caplog))
    assert LABEL in shown  # the sample's column
    assert EVIL[:39] + "…" in shown  # the first record's value in the sample, cut


def test_agol_publish_shows_the_layer_name_as_text(evil, tmp_path, capsys, caplog):
    assert run_in_process("upload_metadata", **IDS).ok
    assert evil.sync("object_1").ok
    result = reports.run_notebook("knack_container_to_agol", container="object_1", **IDS)
    assert result.ok, result.error
    shown = assert_safe(rendered(result, tmp_path / "pages", capsys, caplog))
    assert f"layer {EVIL!r} is a table: field_3 is published without geometry" in shown


# --- terminal escape sequences and control characters ------------------------------------

# Knack's error message with colours, a hyperlink, a window title, a screen clear and home,
# their 8-bit form, a bell and a terminal reset
MESSAGE = (
    "app \x1b[31mred\x1b[0m \x1b]8;;http://evil.example/\x07link\x1b]8;;\x07 "
    "\x1b]0;pwned\x07\x1b[2J\x1b[H\x9b2Jbell\x07 \x1bcdone"
)
SHOWN = "app red link bell\\x07 done"  # what is printed instead
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
KNACK_NB = Path(sys.executable).with_name("knack-nb")


def test_a_service_message_reaches_the_terminal_report_and_page_cleaned(signals, tmp_path):
    """Knack refuses the metadata with MESSAGE: ``knack-nb run`` (its own process, echoing
    the notebook's output), the report, ``knack-nb reports`` and the offline page show it
    without one control character."""
    signals.stack.knack.faults.update({"status": 400, "fail_next": 1, "message": MESSAGE})
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(KNACK_NB), "-v", "run", "upload_metadata", "-a", "signals", "-e", "dev"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    printed = done.stdout + done.stderr
    assert not CONTROL.search(printed.replace("\n", "").replace("\t", "")), repr(printed)
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("knack-nb:")]
    assert line.endswith(
        f"KnackAPIError: Knack refused GET /applications/{signals.app_id}: HTTP 400: {SHOWN}"
    ), line

    (key,) = signals.stack.s3_keys("reports/")
    report = signals.stack.s3().get_object(Bucket=signals.stack.bucket, Key=key)["Body"].read()
    text = json.loads(report)  # the report's JSON escapes (\u001b) decoded
    assert not CONTROL.search(json.dumps(text, ensure_ascii=False).replace("\\n", "")), key
    assert SHOWN.replace("\\", "\\\\") in report.decode()

    listing = subprocess.run(
        [str(KNACK_NB), "reports", "-a", "signals", "-e", "dev"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert listing.returncode == 0 and "HTTP 400: app red li" in listing.stdout  # cut
    assert not CONTROL.search(listing.stdout.replace("\n", "")), repr(listing.stdout)
    page = subprocess.run(
        [str(KNACK_NB), "reports", "--html", key, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert page.returncode == 0, page.stderr
    html_text = next(tmp_path.rglob("*.html")).read_text()
    assert SHOWN in html.unescape(html_text)
    assert not CONTROL.search(html_text.replace("\n", "").replace("\t", ""))
