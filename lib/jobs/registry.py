"""Every job the project runs, by its notebook's name: the one map from a notebook to the
function that does its work, and from a destination's params key to its publisher.

The CLI, the Airflow DAGs, the report header, the demo and the tests read it. An entry
names its function as text (``"lib.sync:sync_container"``), imported only when the function
is asked for (``Job.load``), so reading the registry imports nothing: the header reads it in
every kernel, and the DAG file is parsed again and again.

A new destination is its module in ``lib/publish/`` (its publish function decorated with
``@lib.publish.register("<params key>")``, which checks it against its entry here), its
notebook in ``notebooks/``, and its ``Job`` line below. The tests check that every notebook
is registered, every registered notebook exists with the parameters its entry lists, and
every destination key is a container setting in params.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lib.errors import ConfigError

IDS = ("app_name", "env")  # every job's first parameters
# the time limit of a notebook that is not a registered job (``knack-nb run path.ipynb``)
DEFAULT_TIMEOUT_MINUTES = 60


@dataclass(frozen=True)
class Job:
    """One job: its notebook, the function that does its work, and how it is run."""

    name: str  # the notebook's name (notebooks/<name>.ipynb), in reports and state keys
    entry: str  # "module:function", imported on first use
    parameters: tuple[str, ...]  # the notebook's parameters, in its parameters cell's order
    what: str  # what it does, in a line
    destination: str | None = None  # a publisher: the params key of its destination
    calls_knack: bool = False  # runs in the app's Knack pool under Airflow
    # how long a run may take before it is stopped (a hung kernel never ends by itself); a
    # container's execution_timeout_minutes in params overrides it for every job on it
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES

    @property
    def takes_container(self) -> bool:
        return "container" in self.parameters

    @property
    def takes_date(self) -> bool:
        return "date" in self.parameters

    @property
    def publishes(self) -> bool:
        """Reads the records stored in S3 and writes them to a destination."""
        return self.destination is not None

    def load(self) -> Callable[..., Any]:
        """The function that does the job (its module imported now)."""
        module, _, function = self.entry.partition(":")
        return getattr(importlib.import_module(module), function)

    def arguments(self, **given: Any) -> dict[str, Any]:
        """``given`` cut to this job's parameters, in ``given``'s order (a run's ids and
        date, offered to any job)."""
        return {name: value for name, value in given.items() if name in self.parameters}


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add ``job`` (a job of a plug-in, or a test's); a name or destination taken fails."""
    if job.name in _JOBS:
        raise ConfigError(f"a job named {job.name!r} is registered already")
    if job.destination is not None and job.destination in destinations():
        raise ConfigError(f"destination {job.destination!r} has a publisher already")
    _JOBS[job.name] = job
    return job


def get(name: str) -> Job:
    """The job of notebook ``name``; an unknown name fails listing the known ones."""
    try:
        return _JOBS[name]
    except KeyError:
        raise ConfigError(f"no job named {name!r} (known: {', '.join(names())})") from None


def find(name: str) -> Job | None:
    """The job of notebook ``name``, or None (a notebook of the user's own)."""
    return _JOBS.get(name)


def jobs() -> list[Job]:
    """Every job, in the order a container's data flows through them."""
    return list(_JOBS.values())


def names() -> list[str]:
    return list(_JOBS)


def destinations() -> dict[str, Job]:
    """Each destination's params key → its publishing job."""
    return {job.destination: job for job in _JOBS.values() if job.destination is not None}


def publisher(destination: str) -> Job:
    """The job that publishes to ``destination`` (a params key, e.g. ``socrata``); an
    unknown key fails listing the known ones."""
    found = destinations()
    if destination not in found:
        raise ConfigError(
            f"no publisher for destination {destination!r} (known: {', '.join(found)})"
        )
    return found[destination]


def time_limit(name: str, execution_timeout_minutes: int | None = None) -> dt.timedelta:
    """How long a run of notebook ``name`` may take: the container's
    ``execution_timeout_minutes`` when set, else the job's default (``DEFAULT_TIMEOUT_MINUTES``
    for a notebook that is not a registered job)."""
    job = find(name)
    default = job.timeout_minutes if job is not None else DEFAULT_TIMEOUT_MINUTES
    return dt.timedelta(minutes=execution_timeout_minutes or default)


# The project's own jobs. Parameters: the notebook's, in its parameters cell's order.
register(
    Job(
        "upload_metadata",
        "lib.metadata:upload_metadata",
        IDS,
        "the app's metadata (schema) → S3, with what changed since last time",
        calls_knack=True,
        timeout_minutes=15,
    )
)
register(
    Job(
        "knack_container_to_s3",
        "lib.sync:sync_container",
        ("app_name", "container", "env", "date"),
        "records of one container modified on or after `date` → S3",
        calls_knack=True,
        timeout_minutes=120,
    )
)
register(
    Job(
        "upsert_knack_container_to_socrata",
        "lib.publish.socrata:publish",
        ("app_name", "container", "env", "date"),
        "a container's records in S3 → its Socrata dataset",
        destination="socrata",
        timeout_minutes=120,
    )
)
register(
    Job(
        "knack_container_to_agol",
        "lib.publish.agol:publish",
        ("app_name", "container", "env", "date"),
        "a container's records in S3 → its ArcGIS Online layer or table",
        destination="agol",
        timeout_minutes=120,
    )
)
register(
    Job(
        "knack_container_to_postgres",
        "lib.publish.postgres:publish",
        ("app_name", "container", "env", "date"),
        "a container's records in S3 → its PostgreSQL table",
        destination="postgres",
        timeout_minutes=120,
    )
)
register(
    Job(
        "knack_container_to_knack",
        "lib.publish.knack:publish",
        ("app_name", "container", "env", "date"),
        "a container's records in S3 → an object of another Knack app (field map, match field)",
        destination="knack",
        timeout_minutes=120,
    )
)
register(
    Job(
        "backup_socrata",
        "lib.backup:backup",
        ("app_name", "container", "env"),
        "a container's Socrata dataset → a dated, verified CSV backup in S3",
        timeout_minutes=60,
    )
)
register(
    Job(
        "explore_container",
        "lib.explore:explore_container",
        ("app_name", "container", "env"),
        "a container's snapshot as a table, for analysts",
        timeout_minutes=30,
    )
)
register(
    Job(
        "health",
        "lib.health:check_app",
        IDS,
        "every container of an app: fresh, failing, counts that disagree",
        calls_knack=True,
        timeout_minutes=30,
    )
)
