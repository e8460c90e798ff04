"""``knack-nb check``: a preflight of every destination's columns against the stored
metadata, before a publish finds out (the binding rule: ``lib.bindings``).

For each container of the app (or the one asked for) and each of its destinations, one
plan from: the container's fields in the metadata stored in S3 (``--refresh`` fetches it
from Knack first, as ``upload_metadata`` does, and stores it), the destination's columns
as it has them now (read from Socrata or ArcGIS; nothing is written), the bindings its last
successful publish stored and params' pins and retired columns. The plans print as one
table; a column that would go blank (the publish would fail) makes the check fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lib import bindings, config
from lib.bindings import Destination, Plan
from lib.clients.app_store import AppStore
from lib.errors import ConfigError
from lib.state import bindings as stored_bindings
from lib.table import Table


@dataclass
class Check:
    """The plans of an app-env's destinations."""

    app_name: str
    env: str
    plans: list[Plan] = field(default_factory=list)

    @property
    def fails(self) -> bool:
        return any(p.fails for p in self.plans)

    def failures(self) -> list[str]:
        return [why for p in self.plans for why in p.failures()]

    def table(self) -> Table:
        caption = f"{self.app_name}-{self.env}: {len(self.plans)} destination(s); " + (
            "a publish would fail: see the rows that would blank"
            if self.fails
            else "nothing would blank"
        )
        return bindings.table(self.plans, caption=caption)


def check(*, app_name: str, env: str, container: str | None = None, refresh: bool = False) -> Check:
    """Plan every destination of ``container`` (None: of every container of the app)."""
    env = config.check_env(env)
    app = config.load_app(app_name)
    names = [container] if container is not None else sorted(app.containers)
    for name in names:
        app.container(name)  # an unknown container fails by name, before any request
    if refresh:
        from lib.metadata import upload_metadata  # the Knack client: only when asked

        upload_metadata(app_name=app_name, env=env)
    store = AppStore(app_name=app_name, env=env)
    metadata = store.get_json(store.metadata_key(app.app_id_for(env)))
    if metadata is None:
        raise ConfigError(
            f"no metadata of {app_name}-{env} in S3: run upload_metadata first, or "
            "knack-nb check with --refresh (it fetches and stores it)"
        )
    result = Check(app_name, env)
    for name in names:
        result.plans += container_plans(store, metadata, app_name, name, app.container(name))
    return result


def container_plans(
    store: AppStore,
    metadata: dict[str, Any],
    app_name: str,
    container: str,
    cfg: config.ContainerConfig,
) -> list[Plan]:
    """The plan of each destination of one container: its columns read from it now, its
    stored bindings, params' pins and retired columns (what a publish would do)."""
    fields = bindings.container_fields(metadata, container)
    plans = []
    for destination in bindings.destinations(cfg, app_name=app_name, container=container):
        stored = stored_bindings.load(store, destination)
        plans.append(
            bindings.plan(
                destination,
                container,
                fields,
                columns(destination, cfg),
                stored.bindings if stored else {},
                app_name=app_name,
            )
        )
    return plans


def columns(destination: Destination, cfg: config.ContainerConfig) -> dict[str, str]:
    """The destination's columns now (name → type), read from it."""
    if destination.kind == "postgres":
        from lib.clients import postgres

        return postgres.read_columns(destination.id) or {}  # no table yet: every field new
    if destination.kind == "socrata":
        from lib.clients.socrata import Client, dataset_columns

        client = Client()
        try:
            return dataset_columns(client, destination.id)
        finally:
            client.close()
    from lib.clients.agol import Layer  # arcgis: a heavy import, only for an ArcGIS layer

    assert cfg.agol is not None
    return Layer(service_id=cfg.agol.service_id, layer_id=cfg.agol.layer_id).fields
