"""``make screenshots``: what a reviewer and an analyst see, as PNG files.

Runs the demo's jobs against the stand-ins (as ``make demo``), plus one run that fails (a
sync with an unparseable date), renders every report to offline HTML
(``knack-nb reports --html``'s ``write_html``) and screenshots each page in headless
Chromium (Debian's ``chromium``), each page whole. Then Jupyter Lab: each notebook after
Run All, and a saved report as Lab shows it (``emulators.lab_shots``), each notebook whole.
Everything goes to ``screenshots/`` (``--out``): ``html/``, ``png/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from emulators.demo import DEMO_APP, DEMO_ENV, JOBS, NOTEBOOKS_DIR, ROOT, quiet_logging
from emulators.lab_shots import lab_screenshots
from emulators.stack import Stack
from lib import reports
from lib.reports import index as reports_index

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# a sync that fails: the failed report's header, with its error stated once
FAILING = ("knack_container_to_s3", "object_3", "not-a-date")
# the report Lab also shows as saved (untrusted: through Lab's sanitizer)
SAVED_REPORT = "upsert_knack_container_to_socrata"


def chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no chromium found: apt-get install chromium (Debian's package)")


def shoot(
    url: str, png: Path, *, width: int = 1280, height: int = 1800, wait_ms: int = 4000
) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={wait_ms}",
                f"--screenshot={png}",
                url,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )


# a page's full height, read by a script added to a copy of it (headless Chromium's
# --screenshot takes the window only: the window is made as tall as the page)
_MEASURE = (
    "<script>addEventListener('load', function () { setTimeout(function () {"
    " document.body.setAttribute('data-page-height',"
    " document.documentElement.scrollHeight); }, 500); });</script>"
)
MAX_HEIGHT = 20000


def page_height(page: Path, *, width: int = 1280, default: int = 1800) -> int:
    """How tall ``page`` (an HTML file) is at ``width``, in CSS pixels (at most MAX_HEIGHT)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as work:
        copy = Path(work) / page.name
        copy.write_text(
            page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>", 1),
            encoding="utf-8",
        )
        dom = subprocess.run(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={Path(work) / 'profile'}",
                f"--window-size={width},{default}",
                "--virtual-time-budget=4000",
                "--dump-dom",
                copy.as_uri(),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    found = re.search(r'data-page-height="(\d+)"', dom)
    return min(MAX_HEIGHT, int(found.group(1))) if found else default


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.screenshots", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--no-lab", action="store_true", help="skip the Jupyter Lab screenshot")
    args = parser.parse_args(argv)
    quiet_logging()
    out: Path = args.out
    html_dir, png_dir = out / "html", out / "png"
    shutil.rmtree(out, ignore_errors=True)
    shots: list[Path] = []
    with Stack() as stack:
        stack.apply_env()
        results = [
            reports.run_notebook(nb, app_name=DEMO_APP, env=DEMO_ENV, container=c) for nb, c in JOBS
        ]
        nb, container, date = FAILING
        results.append(
            reports.run_notebook(
                nb, app_name=DEMO_APP, env=DEMO_ENV, container=container, date=date
            )
        )
        for result in results:
            key = result.report.removeprefix(f"s3://{stack.bucket}/")
            path, _ = reports_index.write_html(key, out_dir=html_dir)
            container = result.summary.get("container") or (FAILING[1] if not result.ok else "app")
            name = f"{result.notebook}-{container}" + ("" if result.ok else "-failed")
            png = png_dir / f"{len(shots) + 1:02d}-{name}.png"
            shoot(path.resolve().as_uri(), png, height=page_height(path) + 40)  # the whole page
            shots.append(png)
            print(f"{'ok    ' if result.ok else 'FAILED'} {result.notebook}: {png}", flush=True)
        if not args.no_lab:
            # Lab after Run All on each notebook, then a saved report as Lab shows it
            publish = next(r for r in results if r.notebook == SAVED_REPORT and r.ok)
            local = out / "lab" / f"report-{SAVED_REPORT}.ipynb"
            local.parent.mkdir(parents=True, exist_ok=True)
            key = publish.report.removeprefix(f"s3://{stack.bucket}/")
            stack.s3().download_file(stack.bucket, key, str(local))
            notebooks = [NOTEBOOKS_DIR / f"{n}.ipynb" for n in dict.fromkeys(n for n, _ in JOBS)]
            shots += lab_screenshots(
                chromium(),
                notebooks,
                png_dir,
                _free_port(),
                start=len(shots) + 1,
                reports=(local,),
            )
    print(f"{len(shots)} screenshots in {png_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
