"""Knack → S3: the app's metadata (and, later, container records)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib import config, schema
from lib.knack import KnackClient
from lib.store import Store, dumps_stable

logger = logging.getLogger(__name__)


@dataclass
class MetadataUpload:
    """What ``upload_metadata`` did, for the report."""

    app_name: str
    env: str
    app_id: str
    url: str
    metadata: dict[str, Any]
    previous_found: bool
    written: bool
    changes: list[schema.SchemaChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def objects(self) -> pd.DataFrame:
        return schema.objects_table(self.metadata)

    @property
    def views(self) -> pd.DataFrame:
        return schema.views_table(self.metadata)

    @property
    def changes_table(self) -> pd.DataFrame:
        return schema.changes_table(self.changes)

    @property
    def needs_full_run(self) -> list[str]:
        return schema.containers_needing_full_run(self.changes, self.metadata)

    def summary(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "env": self.env,
            "app_id": self.app_id,
            "s3_url": self.url,
            "objects": len(self.metadata.get("objects", [])),
            "views": int(len(self.views)),
            "fetched": 1,
            "written": int(self.written),
            "unchanged": int(not self.written),
            "schema_changes": len(self.changes),
            "needs_full_run": self.needs_full_run,
            "errors": 0,
            "seconds": round(self.seconds, 2),
        }


def upload_metadata(*, app_name: str, env: str) -> MetadataUpload:
    """Fetch the app's metadata from Knack and keep it in S3 (only when it changed)."""
    started = time.monotonic()
    env = config.check_env(env)
    app = config.load_app(app_name)
    app_id = app.app_id_for(env)
    store = Store(app_name=app_name, env=env)
    key = store.metadata_key(app_id)

    client = KnackClient(app_id=app_id)
    try:
        metadata = client.get_metadata()
    finally:
        client.close()
    logger.info(
        "fetched metadata of %s (%s): %d objects",
        metadata.get("name"), app_id, len(metadata.get("objects", [])),
    )

    previous = store.get_json(key)
    changes = schema.diff(previous, metadata) if previous is not None else []
    written = previous is None or dumps_stable(previous) != dumps_stable(metadata)
    if written:
        store.put_json(key, metadata)
        logger.info("wrote %s", store.url(key))
    else:
        logger.info("%s already holds this metadata: nothing written", store.url(key))
    return MetadataUpload(
        app_name=app_name,
        env=env,
        app_id=app_id,
        url=store.url(key),
        metadata=metadata,
        previous_found=previous is not None,
        written=written,
        changes=changes,
        seconds=time.monotonic() - started,
    )
