"""Knack → S3: the container sync (``knack_container_to_s3``).

- ``container``: the job, ``sync_container``: set-up, listing, checks, snapshot, state.
- ``pages``: Knack's pages written to S3 as they arrive; a short listing listed again.
- ``deletions``: a full run's deletions, each confirmed by Knack first.
- ``result``: ``ContainerSync`` (the report's result) and ``SyncRun`` (what the steps share).

The app's metadata has its own job: ``lib.metadata``.
"""

from lib.sync.container import SYNC_JOB, sync_container
from lib.sync.result import ContainerSync, SyncError

__all__ = ["SYNC_JOB", "ContainerSync", "SyncError", "sync_container"]
