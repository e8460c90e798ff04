"""What every publisher does first: check the params, find the stored metadata, pick the
run's mode (full or incremental, with ``date="auto"`` resolved from the job's state)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from lib import config, dates
from lib.errors import ConfigError
from lib.store import Store

DESTINATIONS = {"socrata": "socrata", "agol": "agol"}  # registry name -> params key


@dataclass
class PublishRun:
    """One publish of one container: its settings, its store and its stored metadata."""

    app_name: str
    env: str
    container: str
    job: str
    cfg: config.ContainerConfig
    store: Store
    metadata: dict[str, Any]
    since: dt.datetime | None = None  # None: a full run
    notes: list[str] = field(default_factory=list)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    t0: float = field(default_factory=time.monotonic)

    @property
    def mode(self) -> str:
        return "full" if self.since is None else "incremental"

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def record_success(self, **info: Any) -> None:
        """Advance the ``date="auto"`` state of this job: call only when the run succeeded."""
        self.store.record_success(self.job, self.container, self.started, mode=self.mode, **info)


def start(*, app_name: str, container: str, env: str, date: Any, job: str,
          destination: str) -> PublishRun:
    """Validate everything a publish needs before any request to the destination."""
    started, t0 = dt.datetime.now(dt.UTC), time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    cfg = app.container(container)
    key = DESTINATIONS[destination]
    if getattr(cfg, key) is None:
        raise ConfigError(
            f"{container} has no `{key}:` settings in {app_name}.yaml: nothing to publish"
        )
    since = dates.parse_date(date)
    store = Store(app_name=app_name, env=env)
    metadata = store.get_json(store.metadata_key(app.app_id_for(env)))
    if metadata is None:
        raise ConfigError(
            f"no metadata of {app_name}-{env} in S3: run upload_metadata first "
            "(publishing reads S3, never Knack)"
        )
    run = PublishRun(app_name, env, container, job, cfg, store, metadata,
                     started=started, t0=t0)
    if since == dates.AUTO:
        since, note = store.resume_point(job, container)
        run.notes.append(note)
    run.since = since
    return run
