"""Publishing from S3 to destinations, chosen through a registry (like papermill's I/O).

Publishing reads the stored metadata and records from S3, never Knack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.errors import ConfigError

Publisher = Callable[..., Any]
_REGISTRY: dict[str, Publisher] = {}


def register(name: str) -> Callable[[Publisher], Publisher]:
    def decorate(fn: Publisher) -> Publisher:
        _REGISTRY[name] = fn
        return fn

    return decorate


def get_publisher(name: str) -> Publisher:
    """The publish function of destination ``name`` (e.g. ``socrata``)."""
    if not _REGISTRY:
        from lib.publish import agol, socrata  # noqa: F401 - they register themselves
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"no publisher for destination {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None
