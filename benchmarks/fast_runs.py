#!/usr/bin/env python
"""Benchmark of issue 11, "Fast runs": what a notebook run costs beyond its own work.

    .venv/bin/python benchmarks/fast_runs.py [--repeat R] [--prod-venv DIR | --no-prod]
        [--records-incremental N] [--records-rerun M] [--s3-latency-ms MS] [--seed S]
        [--quick]

One run starts the stand-ins (``emulators.stack.Stack`` with moto's S3 server in its own
process, the Knack, Socrata and ArcGIS emulators in threads of this process) and measures,
side by side:

1. overhead: each notebook on the demo app (``upload_metadata``, then
   ``knack_container_to_s3``, then the two publishers), through the plain ``papermill`` CLI
   and through ``knack-nb run``, in the dev environment (this interpreter's) and in a
   production worker's (``pip install .`` into ``--prod-venv``, no extras): papermill wall
   time (measured here, around the subprocess) minus the ``seconds`` of the run's summary.
   Each R times, interleaved; the floor is an empty one-cell notebook through the same
   papermill. Goal: median overhead <= 3 s;
2. an incremental run through the dev papermill CLI after 10 of N records changed (N=20,000),
   the first full load having run in this process. Goal: <= 5 s of papermill wall;
3. a first full load of M records (M=5,000) and the unchanged full re-run, both through the
   dev papermill CLI, into a fresh bucket. Goal: the re-run >= 5x faster (papermill wall);
4. what papermill's report saving costs (not a goal): the demo sync through the dev papermill
   CLI saving the report at every cell start and end (papermill's default) against saving it
   only at the end (``--no-request-save-on-cell-execute``), through an S3 proxy
   (``emulators/s3_faults.py``) that counts the PUTs of the report, once with no added
   latency and once with MS of latency before each S3 request.

Every run's summary is checked, so the figures are for correct work. It prints the tables,
then one PASS/FAIL line per goal; the exit status is 0 only when all pass. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nbformat
from _common import APP, CONTAINER, ENV, QUIET_LOGGERS, ROOT, quiet, write_params
from papermill.iorw import load_notebook_node
from sync_benchmark import CHANGED, change_records, count_keys

from emulators._http import Response
from emulators.knack import generate_app
from emulators.s3_faults import S3FaultProxy
from emulators.stack import Stack
from lib import sync
from lib.clients import s3_records
from lib.metadata import upload_metadata
from lib.reports import read_summary

NOTEBOOKS_DIR = ROOT / "notebooks"
# in this order: the sync reads the metadata, the publishers read the synced records
METADATA = "upload_metadata"
SYNC = "knack_container_to_s3"
NOTEBOOKS = (METADATA, SYNC, "upsert_knack_container_to_socrata", "knack_container_to_agol")
PUBLISHERS = NOTEBOOKS[2:]
FLOOR = "floor: empty one-cell notebook"
TOOLS = ("papermill", "knack-nb")
DEMO_APP, DEMO_ENV, DEMO_CONTAINER = "demo", "dev", "object_3"
RERUN_BUCKET = "bench-rerun"
REPORTS = "bench-reports/fast_runs"
SUBPROCESS_TIMEOUT = 900  # seconds; a run that takes longer is a failure, not a figure
VERSIONS = ("papermill", "ipykernel", "jsonschema", "rfc3987-syntax")

# the goals
OVERHEAD_SECONDS = 3.0
INCREMENTAL_SECONDS = 5.0
RERUN_FACTOR = 5.0
GOAL_INCREMENTAL_RECORDS = 20_000
GOAL_RERUN_RECORDS = 5_000


# --------------------------------------------------------------------------- environments


@dataclass
class PyEnv:
    """A Python environment whose ``papermill`` and ``knack-nb`` the runs use."""

    name: str  # "dev" or "prod"
    prefix: Path
    versions: dict[str, str | None] = field(default_factory=dict)
    kernel: dict[str, str] = field(default_factory=dict)

    def bin(self, script: str) -> str:
        return str(self.prefix / "bin" / script)

    def describe(self) -> str:
        versions = ", ".join(f"{name} {v or 'not installed'}" for name, v in self.versions.items())
        return (
            f"{self.name:4} {self.prefix}: {versions}; kernel python3 = "
            f"{self.kernel['executable']}, lib from {self.kernel['lib']}"
        )


def run_checked(cmd: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def prepare_prod(directory: Path) -> tuple[PyEnv, str]:
    """A production worker's environment: ``pip install <repo>`` (no extras) into a venv made
    once; later runs reinstall only the project, whose code changes between runs."""
    t0 = time.perf_counter()
    pip = directory / "bin" / "pip"
    if not directory.exists():
        python3 = shutil.which("python3") or "python3"
        run_checked([python3, "-m", "venv", str(directory)], "creating the prod venv")
        run_checked([str(pip), "install", str(ROOT)], "pip install of the project (prod venv)")
        action = "created"
    elif not pip.exists():
        raise SystemExit(
            f"{directory} exists but has no bin/pip: remove it (it is rebuilt) "
            "or pass another --prod-venv"
        )
    else:
        run_checked(
            [str(pip), "install", "--no-deps", "--force-reinstall", str(ROOT)],
            "refreshing the project in the prod venv",
        )
        action = "refreshed"
    return PyEnv("prod", directory), f"{action} in {time.perf_counter() - t0:.0f} s"


def versions(env: PyEnv) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = run_checked([env.bin("python"), "-c", code, *VERSIONS], f"versions in {env.name}")
    return json.loads(proc.stdout)


def write_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    return path


PROBE_SOURCE = (
    "import importlib.util, json, sys\n"
    'print(json.dumps({"executable": sys.executable, "prefix": sys.prefix,\n'
    '                  "lib": importlib.util.find_spec("lib").origin}))\n'
)


def probe_kernel(env: PyEnv, workdir: Path, run_env: dict[str, str]) -> dict[str, str]:
    """Run a one-cell notebook through the env's papermill with ``-k python3`` (cwd
    ``notebooks/``, as the runs) and check that the kernel is that env's Python and imports
    that env's ``lib``: jupyter's "python3" kernelspec may resolve to another interpreter."""
    source = write_notebook(workdir / "probe.ipynb", PROBE_SOURCE)
    output = workdir / f"probe-{env.name}.ipynb"
    run_checked(
        [env.bin("papermill"), str(source), str(output), "-k", "python3"],
        f"the kernel probe ({env.name})",
        cwd=NOTEBOOKS_DIR,
        env=run_env,
    )
    nb = nbformat.read(output, as_version=4)
    text = "".join(
        o.get("text", "") for o in nb.cells[0].outputs if o.get("output_type") == "stream"
    )
    found = json.loads(text.strip().splitlines()[-1])
    prefix = env.prefix.resolve()
    lib = Path(found["lib"]).resolve()
    expected_lib = ROOT / "lib" if env.name == "dev" else prefix
    if Path(found["prefix"]).resolve() != prefix:
        raise SystemExit(
            f"the {env.name} env's papermill ran its python3 kernel in "
            f"{found['executable']} (sys.prefix {found['prefix']}), not in "
            f"{prefix}: fix the kernelspec before measuring"
        )
    if not lib.is_relative_to(expected_lib):
        raise SystemExit(
            f"the {env.name} kernel imports lib from {lib}, not from "
            f"{expected_lib}: the figures would be for other code"
        )
    return found


# --------------------------------------------------------------------------- running


CELL_ROLES = ("params", "imports", "main", "other")
# the wall outside the cells, from papermill's own timestamps (see timeline())
PHASES = ("process", "kernel start", "between cells", "kernel stop")


@dataclass
class Run:
    wall: float  # seconds, around the subprocess
    summary: dict[str, Any]
    cells: dict[str, float]  # papermill's cell durations, summed by role (cell_roles)
    phases: dict[str, float]  # the rest of the wall (timeline)

    @classmethod
    def from_report(cls, wall: float, location: str) -> Run:
        nb = load_notebook_node(location)
        cells = cell_roles(nb)
        return cls(wall, read_summary(nb), cells, timeline(nb, wall, sum(cells.values())))

    @property
    def work(self) -> float:
        return float(self.summary.get("seconds") or 0.0)

    @property
    def overhead(self) -> float:
        return self.wall - self.work


def timeline(nb: Any, wall: float, in_cells: float) -> dict[str, float]:
    """Where the wall goes outside the cells, from the timestamps papermill writes:

    - ``process``: wall - papermill's own duration (the process's start and imports, reading
      and parameterizing the notebook, the final write, the interpreter's exit);
    - ``kernel start``: papermill's start to the first cell's start (the kernel launched and
      ready, the first save);
    - ``kernel stop``: the last cell's end to papermill's end (kernel_info, the kernel's
      shutdown, the last save);
    - ``between cells``: the rest (the save after each cell)."""
    meta = nb.metadata.get("papermill", {})
    times = [
        (c.metadata.papermill.get("start_time"), c.metadata.papermill.get("end_time"))
        for c in nb.cells
        if c.metadata.get("papermill", {}).get("start_time")
    ]
    if not (meta.get("start_time") and meta.get("end_time") and times):
        return dict.fromkeys(PHASES, float("nan"))
    start, end = (dt.datetime.fromisoformat(meta[k]) for k in ("start_time", "end_time"))
    first = dt.datetime.fromisoformat(times[0][0])
    last = dt.datetime.fromisoformat(times[-1][1])
    duration = (end - start).total_seconds()
    kernel_start = (first - start).total_seconds()
    kernel_stop = (end - last).total_seconds()
    return {
        "process": wall - duration,
        "kernel start": kernel_start,
        # papermill's timestamps are to the microsecond: never below 0 but by rounding
        "between cells": max(0.0, duration - kernel_start - kernel_stop - in_cells),
        "kernel stop": kernel_stop,
    }


def cell_roles(nb: Any) -> dict[str, float]:
    """papermill's cell durations by role: ``params`` (the parameters cells), ``imports``
    (the first code cell after them), ``main`` (the next: the one call the summary times),
    ``other`` (displays, the glue, markdown)."""
    roles = dict.fromkeys(CELL_ROLES, 0.0)
    code = 0
    for cell in nb.cells:
        duration = (cell.metadata.get("papermill") or {}).get("duration") or 0.0
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            role = "params"
        elif cell.cell_type == "code" and code < 2:
            role, code = ("imports", "main")[code], code + 1
        else:
            role = "other"
        roles[role] += duration
    return roles


def papermill_cmd(
    env: PyEnv, notebook: Path, output: str, parameters: dict[str, Any], *extra: str
) -> list[str]:
    cmd = [env.bin("papermill"), str(notebook), output]
    for name, value in parameters.items():
        cmd += ["-p", name, str(value)]
    return [*cmd, "-k", "python3", *extra]


def timed_run(cmd: list[str], what: str, run_env: dict[str, str]) -> tuple[float, str]:
    """``cmd`` with cwd ``notebooks/`` (as ``lib.reports.run._execute`` runs the kernel):
    its wall seconds and stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        cwd=NOTEBOOKS_DIR,
        env=run_env,
        timeout=SUBPROCESS_TIMEOUT,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{(proc.stderr or proc.stdout)[-3000:]}"
        )
    return wall, proc.stdout


def run_papermill(
    env: PyEnv,
    notebook: Path,
    output: str,
    parameters: dict[str, Any],
    run_env: dict[str, str],
    *extra: str,
) -> Run:
    wall, _ = timed_run(
        papermill_cmd(env, notebook, output, parameters, *extra),
        f"papermill {notebook.name} ({env.name})",
        run_env,
    )
    return Run.from_report(wall, output)


def run_knack_nb(env: PyEnv, notebook: str, run_env: dict[str, str]) -> Run:
    cmd = [env.bin("knack-nb"), "run", notebook, "-a", DEMO_APP, "-e", DEMO_ENV]
    if notebook != METADATA:
        cmd += ["-c", DEMO_CONTAINER]
    wall, stdout = timed_run([*cmd, "-q"], f"knack-nb run {notebook} ({env.name})", run_env)
    report = re.findall(r"^report: (\S+)$", stdout, flags=re.MULTILINE)
    if not report:
        raise RuntimeError(f"knack-nb run {notebook} printed no report:\n{stdout[-2000:]}")
    return Run.from_report(wall, report[-1])


def demo_parameters(notebook: str) -> dict[str, str]:
    parameters = {"app_name": DEMO_APP, "env": DEMO_ENV}
    if notebook != METADATA:
        parameters["container"] = DEMO_CONTAINER
    return parameters


def check_demo_summary(notebook: str, tool: str, env: str, summary: dict[str, Any]) -> None:
    where = f"{notebook} via {tool} ({env})"
    assert summary, f"{where}: the report has no summary"
    assert not summary.get("errors"), f"{where}: {summary}"
    assert "seconds" in summary, f"{where}: the summary has no seconds: {summary}"
    if notebook == SYNC:
        assert summary["mode"] == "full" and not summary["failed"], f"{where}: {summary}"


@contextlib.contextmanager
def environ(changes: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (in-process calls of the product), then as before."""
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --------------------------------------------------------------------------- phases


def run_overhead(
    stack: Stack, envs: list[PyEnv], repeat: int, workdir: Path, run_env: dict[str, str]
) -> dict[tuple[str, str, str], list[Run]]:
    """Goal 1: every notebook × tool × env, R times interleaved, with the floor of each env."""
    floor = write_notebook(workdir / "floor.ipynb", "")
    runs: dict[tuple[str, str, str], list[Run]] = defaultdict(list)
    for rep in range(repeat):
        t0 = time.perf_counter()
        for env in envs:
            out = f"s3://{stack.bucket}/{REPORTS}/{env.name}/floor/{rep}.ipynb"
            runs[(env.name, FLOOR, "papermill")].append(run_papermill(env, floor, out, {}, run_env))
        for notebook in NOTEBOOKS:
            path = NOTEBOOKS_DIR / f"{notebook}.ipynb"
            for env in envs:
                for tool in TOOLS:
                    if notebook in PUBLISHERS:  # every publish starts from the empty target
                        stack.reset_socrata()
                        stack.reset_arcgis()
                    if tool == "papermill":
                        out = f"s3://{stack.bucket}/{REPORTS}/{env.name}/{notebook}/{rep}.ipynb"
                        got = run_papermill(env, path, out, demo_parameters(notebook), run_env)
                    else:
                        got = run_knack_nb(env, notebook, run_env)
                    check_demo_summary(notebook, tool, env.name, got.summary)
                    runs[(env.name, notebook, tool)].append(got)
        print(
            f"  overhead round {rep + 1} of {repeat} done ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return runs


# what a fresh process of each kind pays before any work: (label, code for python -c)
PIECES = (
    ("interpreter start", "pass"),
    ("import papermill.cli (the papermill CLI)", "import papermill.cli"),
    ("import lib.cli (knack-nb)", "import lib.cli"),
    ("import ipykernel.ipkernel (the kernel, IPython)", "import ipykernel.ipkernel"),
    ("import boto3 (papermill's S3 handler)", "import boto3"),
)


def run_pieces(
    envs: list[PyEnv], repeat: int, run_env: dict[str, str]
) -> dict[tuple[str, str], list[float]]:
    """Wall of ``<env>/bin/python -c CODE`` for each piece, R times interleaved (cwd
    ``notebooks/``: the prod env then imports its installed lib, not the repository's)."""
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    for _ in range(repeat):
        for label, code in PIECES:
            for env in envs:
                t0 = time.perf_counter()
                run_checked(
                    [env.bin("python"), "-c", code],
                    f"{code} ({env.name})",
                    cwd=NOTEBOOKS_DIR,
                    env=run_env,
                )
                walls[(env.name, label)].append(time.perf_counter() - t0)
    return walls


@dataclass
class Figure:
    label: str
    run: Run
    note: str = ""


def generated_app(stack: Stack, n: int, seed: int, params_dir: Path) -> tuple[str, list[dict]]:
    metadata, data = generate_app(n, seed=seed)
    app_id = stack.knack.add_app(metadata, data)  # the emulator's rate limit: 10 requests/s
    params_dir.mkdir()
    write_params(params_dir, app_id, writer="fast_runs.py")
    return app_id, data[CONTAINER]


def run_incremental(
    stack: Stack, dev: PyEnv, n: int, seed: int, workdir: Path, run_env: dict[str, str]
) -> Figure:
    """Goal 2: a first full load in this process, 10 records changed, then the incremental
    run through the dev papermill CLI, with ``date`` just before the changes."""
    params = workdir / "params-incremental"
    app_id, records = generated_app(stack, n, seed, params)
    changes = {"KNACK_PARAMS_DIR": str(params)}
    with environ(changes), quiet():
        upload_metadata(app_name=APP, env=ENV)
        first = sync.sync_container(app_name=APP, container=CONTAINER, env=ENV)
    assert first.ok and (first.written, first.fetched) == (n, n), first.summary()
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    changed = change_records(stack, app_id, records)
    out = f"s3://{stack.bucket}/{REPORTS}/incremental.ipynb"
    got = run_papermill(
        dev,
        NOTEBOOKS_DIR / f"{SYNC}.ipynb",
        out,
        {"app_name": APP, "env": ENV, "container": CONTAINER, "date": since.isoformat()},
        {**run_env, **changes},
    )
    summary = got.summary
    assert summary["mode"] == "incremental", summary
    assert summary["written"] == CHANGED and not summary["failed"], summary
    s3 = stack.s3()
    prefix = f"{APP}-{ENV}/{CONTAINER}/"
    served = {r["id"]: r for r in stack.knack.records(app_id, CONTAINER)}
    for record in changed:
        body = s3.get_object(Bucket=stack.bucket, Key=f"{prefix}{record['id']}.json")["Body"]
        assert body.read() == s3_records.dumps_stable(served[record["id"]]), f"{record['id']} stale"
    assert count_keys(s3, stack.bucket, prefix) == n
    return Figure(
        f"incremental, {CHANGED} changed of {n:,}",
        got,
        f"fetched {summary['fetched']}, written {summary['written']}; first load in "
        f"process {first.seconds:.1f} s",
    )


def run_rerun(
    stack: Stack, dev: PyEnv, n: int, seed: int, workdir: Path, run_env: dict[str, str]
) -> tuple[Figure, Figure]:
    """Goal 3: a first full load into a fresh bucket, then the unchanged full re-run, both
    through the dev papermill CLI."""
    params = workdir / "params-rerun"
    generated_app(stack, n, seed, params)
    s3 = stack.s3()
    s3.create_bucket(Bucket=RERUN_BUCKET)
    changes = {"KNACK_PARAMS_DIR": str(params), "KNACK_SERVICES_BUCKET": RERUN_BUCKET}
    with environ(changes), quiet():
        upload_metadata(app_name=APP, env=ENV)
    notebook = NOTEBOOKS_DIR / f"{SYNC}.ipynb"
    parameters = {"app_name": APP, "env": ENV, "container": CONTAINER}
    first = run_papermill(
        dev,
        notebook,
        f"s3://{RERUN_BUCKET}/{REPORTS}/first.ipynb",
        parameters,
        {**run_env, **changes},
    )
    s = first.summary
    assert (s["mode"], s["fetched"], s["written"], s["unchanged"]) == ("full", n, n, 0), s
    assert count_keys(s3, RERUN_BUCKET, f"{APP}-{ENV}/{CONTAINER}/") == n
    again = run_papermill(
        dev,
        notebook,
        f"s3://{RERUN_BUCKET}/{REPORTS}/rerun.ipynb",
        parameters,
        {**run_env, **changes},
    )
    s = again.summary
    assert (s["mode"], s["fetched"], s["written"], s["unchanged"], s["deleted"]) == (
        "full",
        n,
        0,
        n,
        0,
    ), s
    return (
        Figure(f"first full load of {n:,}", first, f"written {first.summary['written']}"),
        Figure(
            f"unchanged full re-run of {n:,}",
            again,
            f"written 0, unchanged {again.summary['unchanged']}, deleted 0",
        ),
    )


class CountingProxy(S3FaultProxy):
    """The S3 proxy, counting the PUTs of each key (its own ``requests`` log stays empty)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.puts: Counter[str] = Counter()

    def _dispatch(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        if method == "PUT" and not raw_path.startswith("/_emulator/"):
            with self._lock:
                self.puts[unquote(urlsplit(raw_path).path)] += 1
        return super()._dispatch(method, raw_path, headers, body)


SAVE_MODES = (("every cell (default)", ()), ("final only", ("--no-request-save-on-cell-execute",)))


@dataclass
class SavingFigure:
    latency_ms: float
    mode: str
    runs: list[Run] = field(default_factory=list)
    saves: list[int] = field(default_factory=list)


def run_saving(
    stack: Stack, dev: PyEnv, repeat: int, latencies_ms: list[float], run_env: dict[str, str]
) -> list[SavingFigure]:
    """Figure 4: the demo sync through the dev papermill CLI, saving the report at every cell
    start and end or only at the end, R times interleaved, through the counting proxy."""
    notebook = NOTEBOOKS_DIR / f"{SYNC}.ipynb"
    figures = []
    with CountingProxy(stack.s3_url) as proxy:
        env = {**run_env, "AWS_ENDPOINT_URL": proxy.url}
        for latency in latencies_ms:
            proxy.faults.update({"delay": latency / 1000})
            pair = [SavingFigure(latency, mode) for mode, _ in SAVE_MODES]
            for rep in range(repeat):
                for figure, (_, extra) in zip(pair, SAVE_MODES, strict=True):
                    tag = "final" if extra else "every"
                    key = f"{REPORTS}/saving/{latency:g}ms-{tag}-{rep}.ipynb"
                    got = run_papermill(
                        dev,
                        notebook,
                        f"s3://{stack.bucket}/{key}",
                        demo_parameters(SYNC),
                        env,
                        *extra,
                    )
                    check_demo_summary(SYNC, "papermill", "dev", got.summary)
                    figure.runs.append(got)
                    figure.saves.append(proxy.puts[f"/{stack.bucket}/{key}"])
            figures += pair
    return figures


def expected_saves(notebook: Path) -> tuple[int, int]:
    """papermill's saves, from its code: once at the start, at every cell's start and end
    (markdown cells too, and the injected-parameters cell), at the end and the final write;
    with --no-request-save-on-cell-execute only the final write."""
    cells = len(nbformat.read(notebook, as_version=4).cells) + 1  # + injected parameters
    return 3 + 2 * cells, 1


# --------------------------------------------------------------------------- output


def med(values: list[float]) -> float:
    return statistics.median(values)


def print_table(head: tuple[str, ...], lines: list[tuple[str, ...]], left: set[int]) -> None:
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


def overhead_table(runs: dict[tuple[str, str, str], list[Run]], envs: list[PyEnv]) -> None:
    head = (
        "env",
        "notebook",
        "tool",
        "wall min",
        "wall med",
        "work med",
        "overhead min",
        "overhead med",
    )
    lines = []
    for env in envs:
        for notebook in (FLOOR, *NOTEBOOKS):
            for tool in ("papermill",) if notebook == FLOOR else TOOLS:
                got = runs[(env.name, notebook, tool)]
                walls = [r.wall for r in got]
                lines.append(
                    (
                        env.name,
                        notebook,
                        tool,
                        f"{min(walls):.2f}",
                        f"{med(walls):.2f}",
                        "" if notebook == FLOOR else f"{med([r.work for r in got]):.2f}",
                        f"{min(r.overhead for r in got):.2f}",
                        f"{med([r.overhead for r in got]):.2f}",
                    )
                )
    print_table(head, lines, {0, 1, 2})


def breakdown_table(runs: dict[tuple[str, str, str], list[Run]], envs: list[PyEnv]) -> None:
    head = (
        "env",
        "notebook",
        "tool",
        "wall",
        *PHASES,
        "imports cell",
        "main cell",
        "of it seconds",
        "other cells",
    )
    lines = []
    for env in envs:
        for notebook in (FLOOR, *NOTEBOOKS):
            for tool in ("papermill",) if notebook == FLOOR else TOOLS:
                got = runs[(env.name, notebook, tool)]
                cells = {role: med([r.cells[role] for r in got]) for role in CELL_ROLES}
                lines.append(
                    (
                        env.name,
                        notebook,
                        tool,
                        f"{med([r.wall for r in got]):.2f}",
                        *(f"{med([r.phases[p] for r in got]):.2f}" for p in PHASES),
                        f"{cells['imports']:.2f}",
                        "" if notebook == FLOOR else f"{cells['main']:.2f}",
                        "" if notebook == FLOOR else f"{med([r.work for r in got]):.2f}",
                        "" if notebook == FLOOR else f"{cells['other'] + cells['params']:.2f}",
                    )
                )
    print_table(head, lines, {0, 1, 2})


def pieces_table(walls: dict[tuple[str, str], list[float]], envs: list[PyEnv]) -> None:
    head = ("piece (a fresh process)", *(f"{env.name} min / med" for env in envs))
    print_table(
        head,
        [
            (
                label,
                *(
                    f"{min(walls[(env.name, label)]):.2f} / {med(walls[(env.name, label)]):.2f}"
                    for env in envs
                ),
            )
            for label, _ in PIECES
        ],
        {0},
    )


def figure_table(figures: list[Figure]) -> None:
    head = (
        "run (dev papermill CLI)",
        "papermill wall",
        "sync seconds",
        "overhead",
        *PHASES,
        "imports cell",
        "note",
    )
    print_table(
        head,
        [
            (
                f.label,
                f"{f.run.wall:.2f}",
                f"{f.run.work:.2f}",
                f"{f.run.overhead:.2f}",
                *(f"{f.run.phases[p]:.2f}" for p in PHASES),
                f"{f.run.cells['imports']:.2f}",
                f.note,
            )
            for f in figures
        ],
        {0, 9},
    )


def saving_table(figures: list[SavingFigure]) -> None:
    head = (
        "S3 latency",
        "report saved",
        "saves/run",
        "wall min",
        "wall med",
        "work med",
        "overhead med",
    )
    print_table(
        head,
        [
            (
                f"{f.latency_ms:g} ms",
                f.mode,
                "/".join(str(s) for s in sorted(set(f.saves))),
                f"{min(r.wall for r in f.runs):.2f}",
                f"{med([r.wall for r in f.runs]):.2f}",
                f"{med([r.work for r in f.runs]):.2f}",
                f"{med([r.overhead for r in f.runs]):.2f}",
            )
            for f in figures
        ],
        {0, 1},
    )


def commit() -> str:
    head = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout
    changed = len(dirty.splitlines())
    return f"{head}" + (f" + uncommitted changes in {changed} files" if changed else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="R, runs of each overhead and saving case, interleaved (default 3)",
    )
    parser.add_argument(
        "--prod-venv",
        type=Path,
        default=Path("/tmp/knack-prod-venv"),
        help="a production worker's venv: created with `pip install <repo>` if "
        "missing, else the project reinstalled (default /tmp/knack-prod-venv)",
    )
    parser.add_argument("--no-prod", action="store_true", help="measure the dev env only")
    parser.add_argument(
        "--records-incremental",
        type=int,
        default=GOAL_INCREMENTAL_RECORDS,
        help=f"records in the incremental run's app (default {GOAL_INCREMENTAL_RECORDS})",
    )
    parser.add_argument(
        "--records-rerun",
        type=int,
        default=GOAL_RERUN_RECORDS,
        help=f"records of the first load / re-run (default {GOAL_RERUN_RECORDS})",
    )
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        default=20.0,
        help="latency the S3 proxy adds before each request in the second "
        "saving pair (default 20; 0: no second pair)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated apps")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: R=1, 500 records for goals 2 and 3"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.records_incremental, args.records_rerun = 1, 500, 500
    if args.repeat < 1 or min(args.records_incremental, args.records_rerun) < CHANGED * 2:
        parser.error(f"--repeat must be >= 1 and the record counts >= {CHANGED * 2}")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)

    t_start = time.perf_counter()
    dev = PyEnv("dev", Path(sys.prefix))
    envs = [dev]
    prod_note = "skipped (--no-prod)"
    if not args.no_prod:
        prod, prod_note = prepare_prod(args.prod_venv)
        envs.append(prod)
    workdir = tempfile.TemporaryDirectory(prefix="fast-runs-")
    work = Path(workdir.name)
    stack = Stack(moto_process=True)
    cwd = os.getcwd()
    try:
        stack.start()
        with quiet():
            stack.seed_demo()  # metadata and records in S3: every measured run is a steady one
        stack.apply_env()
        os.chdir(work)  # a report that S3 cannot take would land here
        # the subprocesses: the stack's variables, the shipped params (an installed worker's
        # lib has no params/ beside it), nothing that would put other code on their path
        run_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        run_env["KNACK_PARAMS_DIR"] = str(ROOT / "params")
        for env in envs:
            env.versions = versions(env)
            env.kernel = probe_kernel(env, work, run_env)
        print(
            f"fast runs benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()},"
            f" commit {commit()}, R={args.repeat}, moto S3 in its own process; prod venv "
            f"{prod_note}; setup {time.perf_counter() - t_start:.0f} s",
            flush=True,
        )
        for env in envs:
            print(f"  {env.describe()}", flush=True)
        overhead = run_overhead(stack, envs, args.repeat, work, run_env)
        pieces = run_pieces(envs, args.repeat, run_env)
        incremental = run_incremental(
            stack, dev, args.records_incremental, args.seed, work, run_env
        )
        print(f"  incremental done ({incremental.run.wall:.1f} s)", flush=True)
        first, rerun = run_rerun(stack, dev, args.records_rerun, args.seed + 1, work, run_env)
        print(
            f"  first load and re-run done ({first.run.wall:.1f} s, {rerun.run.wall:.1f} s)",
            flush=True,
        )
        latencies = [0.0] + ([args.s3_latency_ms] if args.s3_latency_ms > 0 else [])
        saving = run_saving(stack, dev, args.repeat, latencies, run_env)
        print(f"  saving pairs done; total {time.perf_counter() - t_start:.0f} s\n", flush=True)
    finally:
        os.chdir(cwd)
        stack.stop()
        workdir.cleanup()

    print(
        "1. overhead = papermill wall (around the subprocess) - the summary's seconds; "
        f"demo app, {DEMO_CONTAINER}; R={args.repeat}"
    )
    overhead_table(overhead, envs)
    print()
    print(
        "   where the wall goes (medians, from papermill's timestamps in the report: process = "
        "wall - papermill's duration; kernel start = to the first cell; kernel stop = after "
        "the last; between cells = the saves after each cell)"
    )
    breakdown_table(overhead, envs)
    print()
    print(f"   what a fresh process pays before any work (wall of python -c, R={args.repeat})")
    pieces_table(pieces, envs)
    print()
    print("2./3. through the dev papermill CLI (moto in its own process)")
    figure_table([incremental, first, rerun])
    print()
    every, final = expected_saves(NOTEBOOKS_DIR / f"{SYNC}.ipynb")
    print(
        f"4. report saving: demo {SYNC} through the dev papermill CLI and the S3 proxy, "
        f"R={args.repeat}; saves/run = PUTs of the report's key (papermill's code gives "
        f"{every} and {final})"
    )
    saving_table(saving)
    print()

    checks = []
    for env in envs:
        for tool in TOOLS:
            worst = max(
                NOTEBOOKS, key=lambda nb: med([r.overhead for r in overhead[(env.name, nb, tool)]])
            )
            value = med([r.overhead for r in overhead[(env.name, worst, tool)]])
            floor = med([r.wall for r in overhead[(env.name, FLOOR, "papermill")]])
            checks.append(
                (
                    f"overhead {env.name:4} {tool:9} worst median {value:5.2f} s ({worst}; "
                    f"floor {floor:.2f} s) (goal <= {OVERHEAD_SECONDS:.0f} s)",
                    value <= OVERHEAD_SECONDS,
                )
            )
    checks.append(
        (
            f"incremental run, papermill wall  {incremental.run.wall:5.2f} s "
            f"({CHANGED} of {args.records_incremental:,}) (goal <= "
            f"{INCREMENTAL_SECONDS:.0f} s)",
            incremental.run.wall <= INCREMENTAL_SECONDS,
        )
    )
    factor = first.run.wall / rerun.run.wall
    checks.append(
        (
            f"first load / unchanged re-run     {factor:5.1f}x  ({first.run.wall:.1f} s vs "
            f"{rerun.run.wall:.1f} s, papermill wall, {args.records_rerun:,}) (goal >= "
            f"{RERUN_FACTOR:.0f}x)",
            factor >= RERUN_FACTOR,
        )
    )
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    for i in range(0, len(saving), 2):
        every_fig, final_fig = saving[i], saving[i + 1]
        diff = med([r.wall for r in every_fig.runs]) - med([r.wall for r in final_fig.runs])
        extra_saves = med(every_fig.saves) - med(final_fig.saves)
        per_save = f", {diff / extra_saves * 1000:.0f} ms per save" if extra_saves else ""
        print(
            f"note  saving the report at every cell, S3 latency {every_fig.latency_ms:g} ms: "
            f"{diff:+.2f} s of median wall ({med(every_fig.saves):g} saves vs "
            f"{med(final_fig.saves):g}{per_save})"
        )
    if (args.records_incremental, args.records_rerun) != (
        GOAL_INCREMENTAL_RECORDS,
        GOAL_RERUN_RECORDS,
    ):
        print(
            f"note: goals 2 and 3 are stated at {GOAL_INCREMENTAL_RECORDS:,} and "
            f"{GOAL_RERUN_RECORDS:,} records; this run used {args.records_incremental:,} and "
            f"{args.records_rerun:,}"
        )
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
