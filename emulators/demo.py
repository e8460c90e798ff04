"""The bundled demo: the product's real jobs against local stand-ins, no credentials needed.

    python -m emulators.demo run     # run the jobs, print what they did, keep the reports
    python -m emulators.demo lab     # Jupyter Lab on lab/ (a copy of notebooks/), stand-ins up
    python -m emulators.demo serve   # only the stand-ins; prints the variables to export

moto's S3 lives in memory, so ``run`` also copies every report to ``demo-reports/``. The
demo's PostgreSQL server (``emulators.postgres``) lives as long as the command: ``lab`` and
``serve`` print how to open ``psql`` on it (object_3 is in table ``knack.demo_object_3``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from emulators.stack import Stack
from lib import reports
from lib.jobs import registry
from lib.notebook import LOG_FORMAT

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
# `make lab`'s working copy of notebooks/: git-ignored, outside the tests' paths
LAB_DIR = ROOT / "lab"
DEMO_APP = "demo"
DEMO_ENV = "dev"
SYNCED = ("object_3", "view_6")  # the containers the jobs that read Knack take
CONTAINER = "object_3"  # the container the other jobs take (every destination configured)
# Every registered job, in the registry's order: (notebook, container).
JOBS: list[tuple[str, str | None]] = [
    (job.name, container)
    for job in registry.jobs()
    for container in (
        (SYNCED if job.calls_knack else (CONTAINER,)) if job.takes_container else (None,)
    )
]


def run(out_dir: Path) -> int:
    failures = 0
    with Stack() as stack:
        stack.apply_env()
        results = []
        for notebook, container in JOBS:
            result = reports.run_notebook(
                notebook, app_name=DEMO_APP, env=DEMO_ENV, container=container
            )
            results.append(result)
            failures += not result.ok
        saved = _save_reports(stack, out_dir)
        print(f"\nDemo: app {DEMO_APP!r} (env {DEMO_ENV}) on the Knack emulator {stack.knack.url},")
        print(f"S3 on moto's server (in memory) at {stack.s3_url}, bucket {stack.bucket}\n")
        print(_table(results))
        print(f"\nS3 now holds {len(stack.s3_keys())} objects. Run reports (executed notebooks):")
        for result in results:
            print(f"   {result.report}")
        print(f"copied to {out_dir}/ (moto's S3 is gone when the demo ends):")
        for path in saved:
            print(f"   {path.relative_to(out_dir)}")
        print(
            f"\nPostgreSQL: {_table_rows(stack)} rows in {PG_TABLE} on a throwaway server (gone "
            "with the demo); `make lab` keeps one up and prints how to psql into it."
        )
    return 1 if failures else 0


PG_TABLE = "knack.demo_object_3"  # params/demo.yaml: object_3's postgres: table


def _table_rows(stack: Stack) -> str:
    import psycopg

    try:
        with psycopg.connect(stack.postgres.url) as conn:
            return str(conn.execute(f"SELECT count(*) FROM {PG_TABLE}").fetchone()[0])
    except psycopg.Error:
        return "no"


def _print_psql(stack: Stack) -> None:
    print(f"PostgreSQL (object_3 in {PG_TABLE}, {_table_rows(stack)} rows); in another shell:")
    print(f"  {stack.postgres.psql}")
    print(f"  e.g. SELECT id, short_text, date_time___w__time_default_current FROM {PG_TABLE};")
    print(flush=True)


# "rows": a backup's rows ("deleted": the old backups its retention deleted); "records":
# the snapshot's rows (explore_container)
COLUMNS = (
    "fetched",
    "written",
    "unchanged",
    "created",
    "added",
    "updated",
    "deleted",
    "skipped",
    "rows",
    "records",
    "errors",
    "seconds",
)


def _table(results: list[reports.RunResult]) -> str:
    rows = [("job", "container", "status", *COLUMNS)]
    for r in results:
        container = str(r.summary.get("container") or "-")
        status = "ok" if r.ok else "FAILED"
        rows.append((r.notebook, container, status, *(str(r.summary.get(c, "")) for c in COLUMNS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        if not r.ok:
            lines.append(f"{r.notebook} failed: {r.error}")
    return "\n".join(lines)


def _save_reports(stack: Stack, out_dir: Path) -> list[Path]:
    s3 = stack.s3()
    saved = []
    for key in stack.s3_keys(reports.REPORTS_PREFIX + "/"):
        path = out_dir / key.removeprefix(reports.REPORTS_PREFIX + "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(stack.bucket, key, str(path))
        saved.append(path)
    return saved


def seed_lab(lab_dir: Path = LAB_DIR, notebooks: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The analyst's scratch copy of the notebooks: each of ``notebooks`` not yet in
    ``lab_dir`` is copied there (one already there, maybe edited, is kept). Lab works on
    the copies, so Run All, saves and new notebooks never touch what Airflow runs."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for source in sorted(notebooks.glob("*.ipynb")):
        target = lab_dir / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            copied.append(target)
    return copied


def lab(extra: list[str]) -> int:
    copied = seed_lab()
    print(f"Jupyter Lab works on {LAB_DIR} (git-ignored), seeded from notebooks/", end="")
    print(f": {len(copied)} copied" if copied else "", flush=True)
    with Stack() as stack:
        stack.seed_demo()
        stack.apply_env()
        from lib.publish import get_publisher  # object_3 in the table, for SQL users

        get_publisher("postgres")(app_name=DEMO_APP, container=CONTAINER, env=DEMO_ENV)
        _print_env(stack)
        _print_psql(stack)
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--ip=127.0.0.1",
            "--no-browser",
            f"--notebook-dir={LAB_DIR}",
            *extra,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI machines often run as root
        return subprocess.call(cmd, env=os.environ.copy())


def serve() -> int:
    with Stack() as stack:
        _print_env(stack)
        _print_psql(stack)
        print("serving; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _print_env(stack: Stack) -> None:
    print("The demo stand-ins are up. For a shell of your own:")
    for key, value in stack.env.items():
        print(f"  export {key}={value}")
    print(flush=True)


def quiet_logging() -> None:
    """Our INFO lines on stderr; the web servers' access lines (moto's werkzeug), botocore's
    and papermill's cell by cell lines only from WARNING up."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    for noisy in ("werkzeug", "botocore", "papermill"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the demo jobs")
    p_run.add_argument("--out", type=Path, default=ROOT / "demo-reports")
    sub.add_parser("lab", help="Jupyter Lab against the stand-ins")
    sub.add_parser("serve", help="only the stand-ins")
    args, extra = parser.parse_known_args(argv)
    quiet_logging()
    if args.command == "run":
        return run(args.out)
    if args.command == "lab":
        return lab(extra)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
