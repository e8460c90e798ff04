"""A container's Socrata dataset and its backups in S3: what the backup (``lib.backup``) and
the restore (``lib.restore``) share.

```
s3://<bucket>/_backups/<app-name>-<env>/<container>/socrata-<resource-id>/<UTC stamp>.csv.gz
```
A backup is the whole dataset as Socrata's own CSV (header, then one row per dataset row,
``id`` included), gzip-compressed, one object named by the UTC time its read started.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from lib import config
from lib.clients.app_store import AppStore
from lib.clients.socrata import Client
from lib.errors import KnackNbError
from lib.jobs import context
from lib.jobs.result import ContainerResult

BACKUP_PREFIX = "_backups"
STAMP = "%Y%m%dT%H%M%SZ"  # UTC, sorts by time: 20261202T060000Z.csv.gz
BACKUP_NAME = re.compile(r"^(\d{8}T\d{6}Z)\.csv\.gz$")


class BackupError(KnackNbError):
    """A backup could not be made, verified or restored; the message says what to do."""


@dataclass(frozen=True)
class StoredBackup:
    """One backup object in S3."""

    key: str
    taken: dt.datetime  # the UTC stamp in its name: when its read started
    size: int  # bytes, compressed

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(kw_only=True)
class Target:
    """The dataset of one container and where its backups go."""

    app_name: str
    env: str
    container: str
    cfg: config.ContainerConfig
    soc: config.SocrataConfig
    store: AppStore

    @property
    def prefix(self) -> str:
        return (
            f"{BACKUP_PREFIX}/{self.store.prefix}/{self.container}/socrata-{self.soc.resource_id}/"
        )

    def key(self, taken: dt.datetime) -> str:
        return f"{self.prefix}{taken.astimezone(dt.UTC).strftime(STAMP)}.csv.gz"

    def backups(self) -> list[StoredBackup]:
        """This dataset's backups, oldest first (other objects under the prefix ignored)."""
        found = []
        for obj in self.store.list_objects(self.prefix):
            match = BACKUP_NAME.match(obj["Key"][len(self.prefix) :])
            if match:
                taken = dt.datetime.strptime(match.group(1), STAMP).replace(tzinfo=dt.UTC)
                found.append(StoredBackup(obj["Key"], taken, int(obj["Size"])))
        return sorted(found, key=lambda b: b.key)

    @classmethod
    def of(cls, app_name: str, container: str, env: str, *, job: str = "backup_socrata") -> Target:
        """The dataset of ``container`` (its ``socrata:`` settings) and the app-env's store."""
        run = context.start(
            job,
            app_name=app_name,
            env=env,
            container=container,
            needs=("socrata", "it publishes no dataset to back up"),
        )
        assert run.cfg is not None and run.cfg.socrata is not None  # start() checked it
        return cls(
            app_name=app_name,
            env=run.env,
            container=container,
            cfg=run.cfg,
            soc=run.cfg.socrata,
            store=run.store,
        )


@dataclass(kw_only=True)
class Result(ContainerResult):
    """What every backup or restore reports: the dataset, and its requests, retries, time
    and errors (``ContainerResult``) around the counts a subclass gives (``counts``)."""

    resource_id: str

    ERROR: ClassVar[type[KnackNbError]] = BackupError
    KEPT: ClassVar[str | None] = None  # the errors say what to do

    def counts(self) -> dict[str, Any]:
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        return {"resource_id": self.resource_id, **self.counts()}


def count_rows(client: Client, resource_id: str) -> int:
    """``$select=count(*)``: the dataset's rows, as Socrata counts them now."""
    answer = client.call(
        "counting the dataset's rows", client.soda.get, resource_id, select="count(*)"
    )
    try:
        (count,) = answer[0].values()
        return int(count)
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        raise BackupError(
            f"Socrata answered the row count of {resource_id} with {str(answer)[:200]!r}, "
            "not one count; check SOCRATA_URL"
        ) from None
