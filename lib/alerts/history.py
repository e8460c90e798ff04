"""The alerts' memory in S3: one object per job and container, through the S3 doorway.

```
s3://<bucket>/_state/<app-name>-<env>/alerts/<job>/<container|app>.json
```
It holds :class:`lib.alerts.messages.History`: since when the job has been failing, how many
runs failed, and what was said when. It is written only when something changes (a failure,
a recovery): an ordinary success reads it and writes nothing.
"""

from __future__ import annotations

import logging
import re

from lib.alerts.messages import History
from lib.clients.app_store import AppStore
from lib.clients.s3 import STATE_PREFIX
from lib.errors import StoreError

logger = logging.getLogger(__name__)

ALERTS_DIR = "alerts"
APP_WIDE = "app"  # the name of an app-wide job's object (no container)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class AlertHistory:
    """The history of ``job`` (on ``container``) of one app-env."""

    def __init__(self, store: AppStore, job: str, container: str | None) -> None:
        if not _NAME.match(job):
            raise ValueError(f"job name {job!r} cannot be part of an S3 key")
        if container is not None:
            store.container_prefix(container)  # validates the key
        self.store = store
        self.key = f"{STATE_PREFIX}/{store.prefix}/{ALERTS_DIR}/{job}/{container or APP_WIDE}.json"

    def read(self) -> History:
        """The stored history (none stored, or unreadable: an empty one, logged)."""
        try:
            return History.from_json(self.store.get_json(self.key))
        except StoreError as e:
            logger.warning("the alert history %s cannot be read (%s): starting anew", self.key, e)
            return History()

    def write(self, history: History) -> None:
        self.store.put_json(self.key, history.to_json())
