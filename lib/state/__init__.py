"""What runs remember in S3, on top of the doorway (``lib.clients.s3``), under ``_state/``.

- ``runs``: :class:`RunStore`, the doorway's store of one app-env with the ``auto`` resume
  point of each job and container and the metadata fetch tick (what the jobs use);
- ``stale_marks``: the snapshot's stale marks, one per sync run (:class:`RunMark`,
  :func:`is_stale`);
- ``bindings``: which Knack field fills which column of each destination, kept by the
  destination (``_state/bindings/``), written by a publish that succeeded.
"""

from lib.state.runs import RunStore
from lib.state.stale_marks import RunMark, is_stale

__all__ = ["RunMark", "RunStore", "is_stale"]
