"""Run a notebook with papermill and keep the executed notebook as a run report in S3.

Reports go to ``s3://<bucket>/reports/<app>-<env>/<notebook>/<UTC time>_<container>.ipynb``:
the name sorts by time and says the container (``app`` for app-wide notebooks). The report
is written also when the run fails; then it shows the error at the top.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import config
from lib.clients.s3 import S3_ERRORS
from lib.errors import KnackNbError, MissingParameterError
from lib.jobs import registry
from lib.notebook import SCRAP_MIMETYPE
from lib.redact import redact
from lib.reports.stopped import mark_stopped, stop_reason
from lib.text import clean

logger = logging.getLogger(__name__)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
REPORTS_PREFIX = "reports"
LOCAL_REPORTS_DIR = Path("reports")  # fallback when S3 cannot take the report
# parameters a run must give when the notebook has them: their defaults are the demo's
REQUIRED_PARAMETERS = ("container",)
# jupyter_client's errors for a kernel that never answered (raised before any cell runs)
KERNEL_START_FAILED = ("Kernel died before replying", "Kernel didn't respond")
KERNEL_START_ATTEMPTS = 2
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class RunResult:
    notebook: str
    report: str  # where the executed notebook is (s3:// URL or local path)
    ok: bool
    error: str | None = None  # "ename: evalue" of the failing cell
    summary: dict[str, Any] = field(default_factory=dict)


def notebook_path(name: str) -> Path:
    """``upload_metadata``, ``upload_metadata.ipynb`` or a path → the notebook file."""
    path = Path(name)
    if path.suffix != ".ipynb":
        path = path.with_suffix(".ipynb")
    if not path.is_file() and (NOTEBOOKS_DIR / path.name).is_file():
        path = NOTEBOOKS_DIR / path.name
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")))
        raise FileNotFoundError(f"no notebook {name!r} (known: {known})")
    return path


def report_key(
    *,
    app_name: str,
    env: str,
    notebook: str,
    container: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The S3 key of a run report (no bucket)."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"
    parts = [_safe(f"{app_name}-{env}"), _safe(Path(notebook).stem)]
    return "/".join([REPORTS_PREFIX, *parts, f"{stamp}_{_safe(container or 'app')}.ipynb"])


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "_"


def run_notebook(
    notebook: str,
    *,
    app_name: str,
    env: str,
    container: str | None = None,
    date: str | int | None = None,
    output: str | None = None,
    log_output: bool = False,
    limit: dt.timedelta | None = None,
) -> RunResult:
    """Execute ``notebook`` with papermill; the report goes to ``output`` or the reports prefix.

    Only non-secret identifiers become parameters; credentials reach the kernel through
    the environment it inherits. A notebook with a ``container`` parameter needs
    ``container``: ``MissingParameterError`` before anything runs or is written.

    The run may take ``limit`` (default: :func:`time_limit`); past it, or when its kernel
    dies, it is stopped and fails with a report that says so (``lib.reports.stopped``).
    """
    path = notebook_path(notebook)
    given = {"container": container}
    for name in REQUIRED_PARAMETERS:
        if given[name] is None and name in notebook_parameters(path):
            raise MissingParameterError(
                notebook=path.stem, parameter=name, hint=_container_hint(app_name)
            )
    parameters: dict[str, Any] = {"app_name": app_name, "env": env}
    if container is not None:
        parameters["container"] = container
    if date is not None:
        parameters["date"] = date
    key = report_key(app_name=app_name, env=env, notebook=path.stem, container=container)
    output = output or f"s3://{config.bucket()}/{key}"
    limit = limit or time_limit(path.stem, app_name, container)
    try:
        return _run(path, output, parameters, log_output, limit)
    except S3_ERRORS as e:  # S3 refused the report (papermill writes it)
        if not output.startswith("s3://"):
            raise
        local = LOCAL_REPORTS_DIR / key.removeprefix(f"{REPORTS_PREFIX}/")
        logger.error("cannot write the report to %s (%s); keeping it at %s", output, e, local)
        local.parent.mkdir(parents=True, exist_ok=True)
        return _run(path, str(local), parameters, log_output, limit)


def check_run(notebook: str, *, app_name: str, env: str, container: str | None) -> None:
    """What can be checked before a kernel starts: the notebook exists, ``env`` is one,
    the app's params file loads and has an app id for ``env``, and ``container`` (when the
    notebook takes one) is configured. ``ConfigError`` (or ``FileNotFoundError``) names what
    is wrong and what to do; nothing runs and nothing is written."""
    path = notebook_path(notebook)
    config.check_env(env)
    app = config.load_app(app_name)
    app.app_id_for(env)
    if container is not None and "container" in notebook_parameters(path):
        app.container(container)


def time_limit(notebook: str, app_name: str, container: str | None) -> dt.timedelta:
    """How long a run may take: the container's ``execution_timeout_minutes`` (params) when
    set, else the job's default (``lib.jobs.registry.time_limit``). A params file that does
    not load gives the default: the notebook then fails with what is wrong."""
    minutes = None
    if container is not None:
        try:
            cfg = config.load_app(app_name).containers.get(container)
        except KnackNbError:
            cfg = None
        minutes = cfg.execution_timeout_minutes if cfg is not None else None
    return registry.time_limit(notebook, minutes)


def _run(
    path: Path, output: str, parameters: dict[str, Any], log_output: bool, limit: dt.timedelta
) -> RunResult:
    """One execution and its result: failed with the failing cell's error, or with why it
    was stopped (its time limit passed, its kernel died), the report marked so."""
    from papermill.exceptions import PapermillExecutionError  # papermill: only to run

    try:
        nb = _execute(path, output, parameters, log_output, limit)
    except PapermillExecutionError as e:
        return _failed(path.stem, output, e)
    except Exception as e:
        stop = stop_reason(e, limit=limit)
        if stop is None:
            raise
        logger.error("%s: %s", *stop)
        mark_stopped(output, *stop)
        return RunResult(path.stem, output, ok=False, error=redact(clean(": ".join(stop))))
    return RunResult(path.stem, output, ok=True, summary=read_summary(nb))


def notebook_parameters(path: Path) -> set[str]:
    """The names in a notebook's ``parameters`` cell, read as papermill reads them (not run;
    ``pm.inspect_notebook`` does the same but logs the notebook's path)."""
    import nbformat
    from papermill.translators import papermill_translators

    nb = nbformat.read(path, as_version=4)
    cell = next(
        (c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None
    )
    if cell is None:
        return set()
    kernelspec = nb.metadata.get("kernelspec", {})
    language = kernelspec.get("language") or nb.metadata.get("language_info", {}).get("name")
    translator = papermill_translators.find_translator(
        kernelspec.get("name", "python3"), language or "python"
    )
    return {p.name for p in translator.inspect(cell)}


def _container_hint(app_name: str) -> str:
    """What to pass: the app's configured containers when its params file loads."""
    try:
        containers = sorted(config.load_app(app_name).containers)
    except KnackNbError:
        containers = []
    known = (
        f"one of {', '.join(containers)} (in {app_name}.yaml)"
        if containers
        else (f"an object or view key configured in {app_name}.yaml")
    )
    return f"{known}; the notebook's default is only the demo's"


def _failed(notebook: str, output: str, error: Any) -> RunResult:
    """A failed run's result; its summary too when the notebook glued one before failing."""
    try:
        summary = read_summary(output)
    except Exception:  # noqa: BLE001 - the report may not be readable; the error is what counts
        summary = {}
    error_line = redact(clean(f"{error.ename}: {error.evalue}"))
    return RunResult(notebook, output, ok=False, error=error_line, summary=summary)


def _execute(
    path: Path, output: str, parameters: dict[str, Any], log_output: bool, limit: dt.timedelta
) -> Any:
    """Run the notebook; a kernel that dies before it answers (no cell ran yet: e.g. another
    process took one of the ports jupyter_client picked for it) is started once more.

    The whole run may take ``limit``: each cell is given what is left of it (nbclient's
    ``timeout_func``), so a cell that hangs, or cells that together take too long, raise
    nbclient's ``CellTimeoutError`` and the kernel is stopped."""
    import papermill as pm

    deadline = time.monotonic() + limit.total_seconds()

    def left(cell: Any) -> int:  # at least a second: nbclient reads 0 as "no limit"
        return max(1, math.ceil(deadline - time.monotonic()))

    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        logger.info("running %s → %s", path.name, output)
        try:
            return pm.execute_notebook(
                str(path),
                output,
                parameters=parameters,
                kernel_name="python3",
                progress_bar=False,
                log_output=log_output,
                cwd=str(path.parent),
                engine_name=_engine(),
                # the last cell done, the report holds everything: stop the kernel at once
                # rather than wait ~0.3-0.5 s for its interpreter to tear pandas & co. down
                shutdown_kernel="immediate",
                timeout_func=left,
                # the kernel's own warnings (its loopback TCP "without encryption") are noise
                # on every run's stderr; its errors stay
                extra_arguments=[KERNEL_LOG_LEVEL],
            )
        except RuntimeError as e:
            if attempt == KERNEL_START_ATTEMPTS or not str(e).startswith(KERNEL_START_FAILED):
                raise
            logger.warning("the kernel failed to start (%s): starting another", e)
    raise AssertionError("unreachable")  # pragma: no cover


ENGINE = "knack_nb"
KERNEL_LOG_LEVEL = "--IPKernelApp.log_level=ERROR"


def _engine() -> str:
    """The papermill engine ``run_notebook`` uses, registered once: papermill's own nbclient
    engine with a manager that saves the report less often (``_SparseSaves``)."""
    from papermill.engines import papermill_engines

    if ENGINE not in papermill_engines._engines:  # noqa: SLF001 - papermill has no lookup
        papermill_engines.register(ENGINE, _sparse_saving_engine())
    return ENGINE


def _sparse_saving_engine() -> type:
    from papermill.engines import NBClientEngine, NotebookExecutionManager

    class SparseSaves(NotebookExecutionManager):
        """Saves the report when the run starts, when each code cell starts and when the run
        ends (papermill also saves at every cell's end and at markdown cells: 31 PUTs of
        the sync notebook's report, here 9). A run killed half-way still leaves a report that
        shows the cell running and every output before it; a long cell is still saved every
        ``autosave_cell_every`` seconds, and a failure at the end."""

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._saving(cell.get("cell_type") == "code"):
                super().cell_start(cell, cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            with self._saving(False):  # the next code cell's start, or the end, saves it
                super().cell_complete(cell, cell_index, **kwargs)

        @contextlib.contextmanager
        def _saving(self, save: bool) -> Iterator[None]:
            output_path, self.output_path = self.output_path, self.output_path if save else None
            try:
                yield
            finally:
                self.output_path = output_path

    class SparseSavingEngine(NBClientEngine):
        """``Engine.execute_notebook`` (papermill 2.x) with ``SparseSaves`` as the manager."""

        @classmethod
        def execute_notebook(
            cls,
            nb: Any,
            kernel_name: str,
            output_path: str | None = None,
            progress_bar: bool = True,
            log_output: bool = False,
            autosave_cell_every: int = 30,
            **kwargs: Any,
        ) -> Any:
            nb_man = SparseSaves(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    return SparseSavingEngine


def read_summary(nb: Any) -> dict[str, Any]:
    """The ``summary`` scrap a notebook glued (``lib.notebook.glue``, scrapbook's format), from
    a notebook node or a path or URL papermill reads. The last one glued wins, as in scrapbook."""
    if isinstance(nb, str):
        from papermill.iorw import load_notebook_node

        nb = load_notebook_node(nb)
    summary: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(SCRAP_MIMETYPE)
            if isinstance(payload, dict) and payload.get("name") == "summary":
                data = payload.get("data")
                summary = dict(json.loads(data) if isinstance(data, str) else data or {})
    return summary
