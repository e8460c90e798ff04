"""What successful runs record in S3: the ``auto`` resume point and the metadata fetch tick.

```
s3://<bucket>/_state/<app-name>-<env>/<container>/<job>.json    the "auto" point of a job
s3://<bucket>/_state/<app-name>-<env>/upload_metadata.json      the last metadata fetch
```
**The ``auto`` point** of a job and container is a time up to which every change is known
to be in S3 (for a publisher: at its destination). A run moves it to the run's start only if
the run looked at every change since the point: a full run (``since`` None; ``auto`` with no
point yet is one), an ``auto`` run (``since`` is the point) or a run from an explicit date
at or before the point. A later date never moves it.

**The fetch tick**: Airflow's container DAGs of one app fetch the metadata once per schedule
tick: the first run of a tick fetches it and records when it started; the others find that
record at or after their tick and use the stored metadata (dags/knack_dags.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from lib.clients.app_store import AppStore
from lib.clients.s3 import STATE_PREFIX
from lib.errors import StoreError

logger = logging.getLogger(__name__)

METADATA_FETCH = "upload_metadata"  # _state/<app>-<env>/upload_metadata.json


class RunStore(AppStore):
    """One app-env's store (the doorway, ``lib.clients.app_store.AppStore``) with what its runs
    remember there: the jobs use this one."""

    # --- the "auto" resume point (the rule: the module's docstring) -----------------------

    def resume_point(self, job: str, container: str) -> tuple[dt.datetime | None, str]:
        """For ``date="auto"``: the start of the last successful run of ``job`` on
        ``container`` (None: none yet, so a full run), and a note saying which.

        A corrupt state object raises StoreError naming its key and what to do."""
        since = self._state_point(self.state_key(job, container))
        if since is None:
            return None, 'date "auto": no successful run recorded yet, so a full run'
        return since, f'date "auto": resuming from the last successful run, {since.isoformat()}'

    def record_success(
        self,
        job: str,
        container: str,
        started: dt.datetime,
        *,
        since: dt.datetime | None,
        **info: Any,
    ) -> str | None:
        """Record that a run of ``job`` on ``container`` which started at ``started`` and
        took the changes since ``since`` (None: a full run) succeeded: call only on success.

        Advances the ``auto`` state to ``started`` by the module's rule (never back); returns
        None, or a note for the report saying why the state was left as it is.
        """
        key = self.state_key(job, container)
        try:
            point = self._state_point(key)
        except StoreError as e:
            if since is not None:
                return f"{e} (this run left it as it is)"
            point = None  # a full run replaces a corrupt state
        if since is not None:
            if point is None:
                return (
                    f'the "auto" state was not started: this run took the changes since '
                    f"{since.isoformat()} only, so it does not know that every earlier change "
                    'is in S3; a full run (date None) or an "auto" run starts it'
                )
            if since > point:
                return (
                    f'the "auto" state was left at {point.isoformat()}: this run took the '
                    f"changes since {since.isoformat()}, which is later, so it did not look "
                    "at what changed in between"
                )
        if point is not None and point > started:  # a run that started later recorded it
            return None
        self.put_json(key, {"job": job, "last_success_start": started.isoformat(), **info})
        return None

    def _state_point(self, key: str) -> dt.datetime | None:
        """The ``last_success_start`` of the state at ``key`` (None: no state)."""
        fix = f'delete it (aws s3 rm {self.url(key)}); the next "auto" run is then a full run'
        state = self.get_json(key, fix=fix)
        if state is None:
            return None
        if not isinstance(state, dict):
            why = f"a JSON {type(state).__name__}, not a JSON object"
        elif "last_success_start" not in state:
            why = "no last_success_start"
        else:
            value = state["last_success_start"]
            try:
                point = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                point = None
            if point is not None and point.tzinfo is not None:
                return point.astimezone(dt.UTC)
            why = (
                f"last_success_start {value!r} has no UTC offset"
                if point is not None
                else f"last_success_start {value!r} is not an ISO-8601 time"
            )
        raise StoreError(f'the "auto" state {self.url(key)} is corrupt ({why}): {fix}')

    # --- when the metadata was last fetched (the tick: the module's docstring) ------------

    def metadata_fetch_key(self) -> str:
        return f"{STATE_PREFIX}/{self.prefix}/{METADATA_FETCH}.json"

    def metadata_fetched(self, app_id: str) -> dt.datetime | None:
        """The start of the last successful metadata upload of ``app_id`` recorded by
        :meth:`record_metadata_fetch`; None when there is none, it is of another app id,
        or it cannot be read (the caller then fetches, which replaces it)."""
        key = self.metadata_fetch_key()
        try:
            state = self.get_json(key)
            if state is None:
                return None
            started = dt.datetime.fromisoformat(state["started"])
            if state["app_id"] != app_id or started.tzinfo is None:
                return None
        except (StoreError, TypeError, KeyError, ValueError) as e:
            logger.warning("%s cannot be read (%s): the metadata is fetched again", key, e)
            return None
        return started.astimezone(dt.UTC)

    def record_metadata_fetch(self, app_id: str, started: dt.datetime) -> None:
        """Record that an upload of ``app_id``'s metadata that started at ``started``
        (aware) succeeded: the stored metadata is at least that fresh. Never moves back."""
        known = self.metadata_fetched(app_id)
        if known is None or known < started:
            self.put_json(
                self.metadata_fetch_key(),
                {"app_id": app_id, "started": started.astimezone(dt.UTC).isoformat()},
            )
