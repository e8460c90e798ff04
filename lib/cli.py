"""``knack-nb``: the command line.

knack-nb run upload_metadata --app-name data-tracker --env prod
knack-nb run knack_container_to_s3 -a data-tracker -e prod -c view_197 -d 2026-11-01
knack-nb run explore_container -a data-tracker -e prod -c view_197  # the snapshot, for analysts
knack-nb run knack_container_to_s3 -a data-tracker -e prod -c view_197 -d auto --alert  # cron
knack-nb health -a data-tracker -e prod   # every container: fresh, failing, counts; exit 1: fail
knack-nb last-success --dag knack_data-tracker_view_197      # POSIX seconds, for --date
knack-nb reports --app-name data-tracker --env prod --failed  # runs, newest first
knack-nb reports --html reports/data-tracker-prod/...ipynb  # offline HTML: ./reports-html/, S3
knack-nb airflow-pools -o pools.json   # then: airflow pools import pools.json
knack-nb restore-socrata -a data-tracker -e prod -c view_197 [--backup KEY] [--dry-run]
knack-nb check -a data-tracker -e prod [-c view_197] [--refresh]  # would a column go blank?
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import traceback
from typing import TextIO

from lib import airflow_api, airflow_pools, reports
from lib.errors import ConfigError, KnackNbError, MissingParameterError
from lib.jobs import registry
from lib.notebook import LOG_FORMAT
from lib.redact import install_filter, redact
from lib.reports import index as reports_index
from lib.text import clean

# how a notebook parameter is given on the command line
FLAGS = {"container": "--container (-c)"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knack-nb", description=__doc__.split("\n")[0])
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging; knack-nb run: papermill's cell by cell log and the notebook's output",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="execute a notebook and keep its report in S3",
        epilog=_jobs_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("notebook", help="a job (below), e.g. upload_metadata, or a notebook's path")
    run.add_argument("-a", "--app-name", required=True, help="a params/<app-name>.yaml file")
    run.add_argument("-e", "--env", required=True, help="prod or dev")
    run.add_argument("-c", "--container", help="object or view key, e.g. view_197")
    run.add_argument(
        "-d",
        "--date",
        help="records modified at or after: POSIX seconds or ISO-8601 (none: full run)",
    )
    run.add_argument("-o", "--output", help="where to write the report (default: S3 reports)")
    run.add_argument(
        "-q", "--quiet", action="store_true", help="don't echo notebook output under -v"
    )
    run.add_argument(
        "--alert",
        action="store_true",
        help="tell people as a scheduler would: a failure, or the first success after "
        "failures, to the apprise URLs of KNACK_ALERT_URLS",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="MINUTES",
        help="stop the run after MINUTES (default: the container's execution_timeout_minutes, "
        "else the job's own limit)",
    )

    health = sub.add_parser(
        "health",
        help="every container of an app: last sync, stale or failing, counts that disagree",
    )
    health.add_argument("-a", "--app-name", required=True, help="a params/<app-name>.yaml file")
    health.add_argument("-e", "--env", required=True, help="prod or dev")

    last = sub.add_parser(
        "last-success",
        help="the start of a DAG's most recent successful run, from Airflow's REST API",
    )
    last.add_argument("--dag", required=True, help="the DAG id, e.g. knack_data-tracker_view_197")
    last.add_argument("--iso", action="store_true", help="ISO 8601 instead of POSIX seconds")

    rep = sub.add_parser("reports", help="list runs from their S3 reports, or render one to HTML")
    reports_index.add_arguments(rep)

    pools = sub.add_parser(
        "airflow-pools",
        help="the Airflow pools of the Knack apps in params, as `airflow pools import` takes",
    )
    pools.add_argument("-o", "--output", help="write the JSON to this file (default: print it)")

    restore = sub.add_parser(
        "restore-socrata",
        help="make a container's Socrata dataset equal to one of its backups (backup_socrata)",
    )
    restore.add_argument("-a", "--app-name", required=True, help="a params/<app-name>.yaml file")
    restore.add_argument("-e", "--env", required=True, help="prod or dev")
    restore.add_argument("-c", "--container", required=True, help="e.g. view_197")
    restore.add_argument(
        "-b",
        "--backup",
        help="the backup's key, s3:// URL or file name (default: the newest backup)",
    )
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="check the backup and count what would change; write nothing",
    )
    restore.add_argument("--list", action="store_true", help="list the backups, newest first")

    chk = sub.add_parser(
        "check",
        help="every destination's columns against the stored metadata and bindings; "
        "exit 1 when a column would go blank",
    )
    chk.add_argument("-a", "--app-name", required=True, help="a params/<app-name>.yaml file")
    chk.add_argument("-e", "--env", required=True, help="prod or dev")
    chk.add_argument("-c", "--container", help="one container (default: every one)")
    chk.add_argument(
        "--refresh",
        action="store_true",
        help="fetch the metadata from Knack first and store it (as upload_metadata does)",
    )
    return parser


def _jobs_text() -> str:
    """The registered jobs, a line each: the notebooks ``knack-nb run`` takes by name."""
    jobs = registry.jobs()
    width = max(len(job.name) for job in jobs)
    lines = [f"  {job.name:<{width}}  {job.what}" for job in jobs]
    return "jobs (notebooks/<job>.ipynb):\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:  # every logger's records, botocore's too
        install_filter(handler)
    if not args.verbose:  # papermill's line per cell: behind -v
        logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "health":
            return _health(args)
        if args.command == "last-success":
            return _last_success(args)
        if args.command == "reports":
            return reports_index.main_reports(args)
        if args.command == "airflow-pools":
            return _airflow_pools(args)
        if args.command == "restore-socrata":
            return _restore_socrata(args)
        if args.command == "check":
            return _check(args)
    except KnackNbError as e:
        _error(str(e))
        return 1
    except Exception:  # a bug or a library's error: its traceback, redacted
        _say(traceback.format_exc(), end="", file=sys.stderr)
        return 1
    return 2  # pragma: no cover - argparse enforces the sub-command


def _say(text: str, *, file: TextIO | None = None, end: str = "\n") -> None:
    """Print (on stdout unless ``file``) what may quote a service: cleaned of terminal
    escape sequences and control characters (lib/text.py), redacted."""
    print(redact(clean(text)), end=end, file=file or sys.stdout)


def _error(message: str) -> None:
    _say(f"knack-nb: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    date: str | int | None = args.date
    if isinstance(date, str) and date.lstrip("-").isdigit():
        date = int(date)
    if args.timeout is not None and args.timeout <= 0:
        _error("--timeout takes a number of minutes above 0")
        return 2
    limit = dt.timedelta(minutes=args.timeout) if args.timeout else None
    try:  # before a kernel starts: a bad app, env or container writes no report
        reports.check_run(
            args.notebook, app_name=args.app_name, env=args.env, container=args.container
        )
    except (ConfigError, FileNotFoundError) as e:
        _say(f"knack-nb run {args.notebook}: {e} (nothing ran, no report)", file=sys.stderr)
        return 2
    try:
        result = reports.run_notebook(
            args.notebook,
            app_name=args.app_name,
            env=args.env,
            container=args.container,
            date=date,
            output=args.output,
            log_output=args.verbose and not args.quiet,
            limit=limit,
        )
    except MissingParameterError as e:
        flag = FLAGS.get(e.parameter, e.parameter)
        _say(f"knack-nb run {e.notebook} needs {flag}: {e.hint}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        _error(str(e))
        return 2
    out = sys.stdout if result.ok else sys.stderr
    lines = [
        f"{result.notebook}: ok"
        if result.ok
        else f"knack-nb: {result.notebook} failed: {result.error}"
    ]
    lines += [f"  {key}: {value}" for key, value in result.summary.items()]
    lines.append(f"report: {result.report}")
    _say("\n".join(lines), file=out)
    if args.alert:
        _alert(args, result)
    return 0 if result.ok else 1


def _alert(args: argparse.Namespace, result: reports.RunResult) -> None:
    """What a scheduler's callback would say of this run (``lib.alerts``)."""
    from lib import alerts  # apprise: only for --alert
    from lib.alerts import runs

    if not alerts.alert_urls():
        _say("alert: none sent: KNACK_ALERT_URLS is not set", file=sys.stderr)
        return
    message = alerts.notify(
        runs.outcome(
            app_name=args.app_name,
            env=args.env,
            job=result.notebook,
            container=args.container,
            ok=result.ok,
            report=result.report,
            error=result.error,
        )
    )
    said = f"sent: {message.title}" if message else "none (nothing new to say)"
    _say(f"alert: {said}", file=sys.stderr)


def _health(args: argparse.Namespace) -> int:
    from lib import health  # boto3, the clients: only for this command

    result = health.check_app(app_name=args.app_name, env=args.env)
    _say(result.console())
    return 1 if result.failing else 0


def _last_success(args: argparse.Namespace) -> int:
    try:
        started = airflow_api.last_success(args.dag)
    except KnackNbError as e:
        _error(str(e))
        return 1
    print(started.isoformat() if args.iso else int(started.timestamp()))
    return 0


def _airflow_pools(args: argparse.Namespace) -> int:
    found = airflow_pools.pools()
    text = airflow_pools.pools_json(found)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        print(
            f"wrote {len(found)} pool(s) to {args.output}; "
            f"create or update them with: airflow pools import {args.output}"
        )
    else:
        print(text, end="")
    return 0


def _restore_socrata(args: argparse.Namespace) -> int:
    from lib import backup  # sodapy and boto3: only for this command

    ids = {"app_name": args.app_name, "container": args.container, "env": args.env}
    if args.list:
        found = backup.list_backups(**ids)
        for b in reversed(found):
            print(f"{b.taken:%Y-%m-%d %H:%M:%S} UTC  {b.size:>12,} bytes  {b.key}")
        print(f"{len(found)} backup(s)", file=sys.stderr)
        return 0
    result = backup.restore(**ids, backup=args.backup, dry_run=args.dry_run)
    out = sys.stdout if result.ok else sys.stderr
    head = "dry run, nothing written" if args.dry_run else "restored"
    lines = [
        f"restore-socrata: {head}"
        if result.ok
        else f"knack-nb: restore-socrata failed: {' | '.join(result.errors)}"
    ]
    lines += [f"  note: {note}" for note in result.notes]
    lines += [f"  {key}: {value}" for key, value in result.summary().items()]
    _say("\n".join(lines), file=out)
    return 0 if result.ok else 1


def _check(args: argparse.Namespace) -> int:
    from lib import check  # the clients: only for this command

    result = check.check(
        app_name=args.app_name, env=args.env, container=args.container, refresh=args.refresh
    )
    _say(repr(result.table()))
    if result.fails:
        _error("check: a publish would fail: " + " | ".join(result.failures()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
