"""``knack-nb``: the command line.

    knack-nb run upload_metadata --app-name data-tracker --env prod
    knack-nb run knack_container_to_s3 -a data-tracker -e prod -c view_197 -d 2026-11-01
"""

from __future__ import annotations

import argparse
import logging
import sys

from lib import reports
from lib.notebook import LOG_FORMAT


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knack-nb", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute a notebook and keep its report in S3")
    run.add_argument("notebook", help="e.g. upload_metadata or notebooks/upload_metadata.ipynb")
    run.add_argument("-a", "--app-name", required=True, help="a params/<app-name>.yaml file")
    run.add_argument("-e", "--env", required=True, help="prod or dev")
    run.add_argument("-c", "--container", help="object or view key, e.g. view_197")
    run.add_argument(
        "-d", "--date",
        help="records modified at or after: POSIX seconds or ISO-8601 (none: full run)",
    )
    run.add_argument("-o", "--output", help="where to write the report (default: S3 reports)")
    run.add_argument("-q", "--quiet", action="store_true", help="don't echo notebook output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )
    if args.command == "run":
        return _run(args)
    return 2  # pragma: no cover - argparse enforces the sub-command


def _run(args: argparse.Namespace) -> int:
    date: str | int | None = args.date
    if isinstance(date, str) and date.lstrip("-").isdigit():
        date = int(date)
    try:
        result = reports.run_notebook(
            args.notebook,
            app_name=args.app_name,
            env=args.env,
            container=args.container,
            date=date,
            output=args.output,
            log_output=not args.quiet,
        )
    except FileNotFoundError as e:
        print(f"knack-nb: {e}", file=sys.stderr)
        return 2
    out = sys.stdout if result.ok else sys.stderr
    if result.ok:
        print(f"{result.notebook}: ok", file=out)
    else:
        print(f"knack-nb: {result.notebook} failed: {result.error}", file=out)
    for key, value in result.summary.items():
        print(f"  {key}: {value}", file=out)
    print(f"report: {result.report}", file=out)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
