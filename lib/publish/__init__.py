"""Publishing from S3 to destinations, one module per destination, found through the jobs'
registry (``lib.jobs.registry``: a destination's params key → its job and publish function).

Publishing reads the stored metadata and records from S3, never Knack. A destination's
module decorates its publish function with ``@register("<params key>")``, which checks
that the registry names that very function for the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.errors import ConfigError
from lib.jobs import registry

Publisher = Callable[..., Any]


def register(name: str) -> Callable[[Publisher], Publisher]:
    """Mark ``fn`` as the publisher of destination ``name``: the registry must name it."""

    def decorate(fn: Publisher) -> Publisher:
        job = registry.publisher(name)
        if job.entry != f"{fn.__module__}:{fn.__name__}":
            raise ConfigError(
                f"{fn.__module__}.{fn.__name__} publishes to {name!r}, but the jobs' registry "
                f"names {job.entry} for it: fix its Job in lib/jobs/registry.py"
            )
        return fn

    return decorate


def get_publisher(name: str) -> Publisher:
    """The publish function of destination ``name`` (e.g. ``socrata``), its module imported
    now; an unknown name fails listing the known ones."""
    return registry.publisher(name).load()
