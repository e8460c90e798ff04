"""The run set-up every job shares: params → metadata → mode → ``auto`` state.

``start`` checks what a run is given before any request (the env, the app's params file,
the container's settings, ``date``) and opens the app-env's S3 store; the ``Run`` it answers
then loads the stored metadata (``load_metadata``), decides the mode (``resolve_mode``:
``date`` → full or incremental, ``"auto"`` resumed from the job's state) and, once the run
succeeded, advances that state (``record_success``). Each step is written here once; the
jobs call them in this order.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lib import config, dates
from lib.errors import ConfigError
from lib.state import RunStore

FULL, INCREMENTAL = "full", "incremental"
Date = dt.datetime | str | None  # a parsed ``date``: an instant, None (full) or dates.AUTO
Resume = Callable[[], tuple[dt.datetime | None, str]]  # the job's resume point and a note


def decide_mode(date: Date, resume: Resume) -> tuple[dt.datetime | None, str | None]:
    """The instant a run takes changes since (None: a full run) for a parsed ``date``, and
    a note for the report: ``"auto"`` asks ``resume`` (the last successful run's start, or
    None before the first), any other date is taken as it is (no note)."""
    if date == dates.AUTO:
        return resume()
    assert date is None or isinstance(date, dt.datetime)
    return date, None


def mode_of(since: dt.datetime | None) -> str:
    return FULL if since is None else INCREMENTAL


R = TypeVar("R", bound="Run")


@dataclass
class Run:
    """One run of a job on an app-env (and a container): what it was given and found."""

    job: str
    app: config.AppConfig
    env: str
    store: RunStore
    container: str | None = None
    cfg: config.ContainerConfig | None = None  # the container's settings
    app_id: str | None = None  # asked for by ``start(app_id=True)``
    date: Date = None  # as given, parsed; ``resolve_mode`` turns "auto" into ``since``
    since: dt.datetime | None = None  # changes on or after this; None: a full run
    metadata: dict[str, Any] | None = None  # once ``load_metadata`` ran
    notes: list[str] = field(default_factory=list)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    t0: float = field(default_factory=time.monotonic)

    @property
    def app_name(self) -> str:
        return self.app.name

    @property
    def mode(self) -> str:
        return mode_of(self.since)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def load_metadata(
        self,
        *,
        fetch: Callable[[], dict[str, Any]] | None = None,
        missing: str = "run upload_metadata first",
    ) -> dict[str, Any]:
        """The app's metadata as stored in S3. None stored: ``fetch`` it (a note says so)
        when given, else ``ConfigError`` ending with ``missing``."""
        app_id = self.app_id or self.app.app_id_for(self.env)
        metadata = self.store.get_json(self.store.metadata_key(app_id))
        if metadata is None:
            if fetch is None:
                raise ConfigError(f"no metadata of {self.app_name}-{self.env} in S3: {missing}")
            self.notes.append(
                "no metadata stored in S3 yet: fetched it from Knack (run "
                "upload_metadata to keep it)"
            )
            metadata = fetch()
        self.metadata = metadata
        return metadata

    def resolve_mode(self) -> None:
        """Set ``since`` from ``date``: ``"auto"`` resumes from this job's last success on
        the container (its note goes to the report)."""
        since, note = decide_mode(
            self.date, lambda: self.store.resume_point(self.job, self.container or "")
        )
        self.since = since
        if note:
            self.notes.append(note)

    def full_run_instead(self, why: str) -> None:
        """Take every record after all (e.g. nothing to filter changes on): a note says why."""
        self.notes.append(why)
        self.since = None

    def record_success(self, **info: Any) -> None:
        """Advance the ``date="auto"`` state of this job (by the RunStore's rule: not when the
        run's date is later than the state's point, then a note says so): call only when
        the run succeeded."""
        note = self.store.record_success(
            self.job, self.container or "", self.started, since=self.since, mode=self.mode, **info
        )
        if note:
            self.notes.append(note)


def start(
    job: str,
    *,
    app_name: str,
    env: str,
    container: str | None = None,
    date: Any = None,
    needs: tuple[str, str] | None = None,
    app_id: bool = False,
    kind: type[R] = Run,
) -> R:  # type: ignore[assignment]
    """Check a run's params before any request: the env, the app's params file, the
    container's settings (``needs``: a key they must have and why, e.g. ``("socrata",
    "nothing to publish")``; ``app_id``: the app's id in this env too) and ``date``; then
    open the app-env's store. Any of them wrong: ``ConfigError`` naming it. ``kind``: a
    subclass of ``Run`` with a job's own steps (a publish's reading of records)."""
    started, t0 = dt.datetime.now(dt.UTC), time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    cfg = app.container(container) if container is not None else None
    if needs is not None and getattr(cfg, needs[0], None) is None:
        raise ConfigError(
            f"{container} has no `{needs[0]}:` settings in {app_name}.yaml: {needs[1]}"
        )
    knack_id = app.app_id_for(env) if app_id else None
    parsed = dates.parse_date(date)  # a bad date fails before any request
    store = RunStore(app_name=app_name, env=env)
    return kind(job, app, env, store, container, cfg, knack_id, parsed, started=started, t0=t0)
