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
from dataclasses import dataclass, field
from typing import Any

from lib import config
from lib.clients.s3 import Store
from lib.clients.socrata import Client
from lib.errors import ConfigError, KnackNbError

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
    store: Store

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
    def of(cls, app_name: str, container: str, env: str) -> Target:
        """The dataset of ``container`` (its ``socrata:`` settings) and the app-env's store."""
        env = config.check_env(env)
        app = config.load_app(app_name)
        cfg = app.container(container)
        if cfg.socrata is None:
            raise ConfigError(
                f"{container} has no `socrata:` settings in {app_name}.yaml: it publishes no "
                "dataset to back up"
            )
        return cls(
            app_name=app_name,
            env=env,
            container=container,
            cfg=cfg,
            soc=cfg.socrata,
            store=Store(app_name=app_name, env=env),
        )


@dataclass(kw_only=True)
class Result:
    """What every backup or restore reports: the dataset, and its requests, retries, time
    and errors around the counts a subclass gives (``counts``)."""

    app_name: str
    env: str
    container: str
    resource_id: str
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, Any]:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "container": self.container,
            "resource_id": self.resource_id,
            **self.counts(),
            "errors": len(self.errors),
            "requests": self.requests,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
        }

    def raise_for_errors(self) -> None:
        if self.errors:
            raise BackupError(" | ".join(self.errors))


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
