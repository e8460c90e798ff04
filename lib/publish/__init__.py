"""Publishing from S3 to destinations, chosen through a registry (like papermill's I/O).

Publishing reads the stored metadata and records from S3, never Knack.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lib.errors import ConfigError

Publisher = Callable[..., Any]
_REGISTRY: dict[str, Publisher] = {}
BUILTIN = ("socrata", "agol")  # modules of lib.publish that register a publisher


def register(name: str) -> Callable[[Publisher], Publisher]:
    def decorate(fn: Publisher) -> Publisher:
        _REGISTRY[name] = fn
        return fn

    return decorate


def get_publisher(name: str) -> Publisher:
    """The publish function of destination ``name`` (e.g. ``socrata``)."""
    if name not in _REGISTRY:  # the project's own publishers register when imported
        for module in BUILTIN:
            importlib.import_module(f"lib.publish.{module}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"no publisher for destination {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None
