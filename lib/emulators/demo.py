"""The bundled demo: the product's real jobs against local stand-ins, no credentials needed.

    python -m lib.emulators.demo run     # run the jobs, print what they did, keep the reports
    python -m lib.emulators.demo lab     # Jupyter Lab with the stand-ins running
    python -m lib.emulators.demo serve   # only the stand-ins; prints the variables to export

moto's S3 lives in memory, so ``run`` also copies every report to ``demo-reports/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from lib import reports
from lib.emulators.stack import Stack
from lib.notebook import LOG_FORMAT

ROOT = Path(__file__).resolve().parents[2]
DEMO_APP = "demo"
DEMO_ENV = "dev"
# The main job, in order: (notebook, container). Later notebooks join this list.
JOBS: list[tuple[str, str | None]] = [
    ("upload_metadata", None),
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
        print(f"\nDemo: app {DEMO_APP!r} (env {DEMO_ENV}) on the Knack emulator {stack.knack.url}")
        print(f"S3 (moto server, in memory): s3://{stack.bucket} at {stack.s3_url}")
        for result in results:
            status = "ok" if result.ok else f"FAILED: {result.error}"
            print(f"\n== {result.notebook} {status}")
            for key, value in result.summary.items():
                print(f"   {key}: {value}")
            print(f"   report: {result.report}")
        print(f"\nS3 now holds {len(stack.s3_keys())} objects; reports copied to:")
        for path in saved:
            print(f"   {path}")
    return 1 if failures else 0


def _save_reports(stack: Stack, out_dir: Path) -> list[Path]:
    s3 = stack.s3()
    saved = []
    for key in stack.s3_keys(reports.REPORTS_PREFIX + "/"):
        path = out_dir / key.removeprefix(reports.REPORTS_PREFIX + "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(stack.bucket, key, str(path))
        saved.append(path)
    return saved


def lab(extra: list[str]) -> int:
    with Stack() as stack:
        stack.apply_env()
        _print_env(stack)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--ip=127.0.0.1", "--no-browser",
               f"--notebook-dir={ROOT / 'notebooks'}", *extra]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI machines often run as root
        return subprocess.call(cmd, env=os.environ.copy())


def serve() -> int:
    with Stack() as stack:
        _print_env(stack)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.emulators.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the demo jobs")
    p_run.add_argument("--out", type=Path, default=ROOT / "demo-reports")
    sub.add_parser("lab", help="Jupyter Lab against the stand-ins")
    sub.add_parser("serve", help="only the stand-ins")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    for noisy in ("werkzeug", "botocore", "papermill"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "run":
        return run(args.out)
    if args.command == "lab":
        return lab(extra)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
