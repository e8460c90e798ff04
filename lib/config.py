"""Configuration: ``params/<app>.yaml`` files and the environment.

Params files are validated into pydantic models with unknown keys forbidden, so a typo
fails loudly and names the file and the key. Credentials come only from environment
variables (see DESIGN.md) and are read when needed, never at import.
"""

from __future__ import annotations

import os
import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from lib.errors import ConfigError, MissingCredentialError, UnknownAppError, UnknownContainerError

ENVS = ("prod", "dev")
Env = Literal["prod", "dev"]

DEFAULT_PARAMS_DIR = Path(__file__).resolve().parent.parent / "params"
DEFAULT_KNACK_API_URL = "https://api.knack.com/v1"
DEFAULT_BUCKET = "atd-knack-services"
DEFAULT_SOCRATA_URL = "https://data.austintexas.gov"
DEFAULT_AGOL_URL = "https://austin.maps.arcgis.com"

KnackKey = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")]
# What a params file may hold, aliases counted as often as they are used: a real file has a
# few hundred values, 6 levels deep. Beyond either, the loader stops before it expands the
# aliases (a "billion laughs" of 600 bytes stands for 9**14 values) or recurses too deep.
MAX_VALUES = 100_000
MAX_DEPTH = 32
SHOWN_CHARS = 80  # of a wrong value or key quoted in an error message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FieldKey = Annotated[str, Field(pattern=r"^field_\d+$")]
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]


class _Bindings(_Strict):
    """A destination's bindings in params (the binding rule: ``lib.bindings``): ``fields``
    pins a column to a Knack field key; a column in ``retired_columns`` is left as it is,
    never sent nor bound again."""

    fields: dict[ColumnName, FieldKey] = {}
    retired_columns: list[ColumnName] = []

    @field_validator("fields", "retired_columns")
    @classmethod
    def _not_the_id(cls, value: Any) -> Any:
        if "id" in {name.lower() for name in value}:
            raise ValueError("`id` is the column of the Knack record id: it holds no field")
        return value

    @field_validator("retired_columns")
    @classmethod
    def _not_pinned_and_retired(cls, value: list[str], info: ValidationInfo) -> list[str]:
        pinned = {name.lower() for name in info.data.get("fields") or {}}
        both = sorted(name for name in value if name.lower() in pinned)
        if both:
            raise ValueError(
                f"{', '.join(both)} also pinned in fields: a column is either filled by a "
                "field or retired, keep one"
            )
        return value


class SocrataConfig(_Bindings):
    resource_id: Annotated[str, Field(pattern=r"^[a-z0-9]{4}-[a-z0-9]{4}$")]
    location_field: str | None = None
    no_replace: bool = False  # true: a full run deletes no rows from the dataset
    chunk_size: Annotated[int, Field(ge=1, le=10000)] = 1000  # rows per upsert request
    # backup_socrata keeps this many backups of the dataset (s3://<bucket>/_backups/...)
    backup_keep: Annotated[int, Field(ge=1, le=10000)] = 30
    # when Airflow backs the dataset up (a cron expression or preset, UTC); null: no backup DAG
    backup_schedule: str | None = "0 6 * * *"


class AgolConfig(_Bindings):
    service_id: str
    layer_id: int = 0
    location_field: str | None = None  # none: a table, no geometry
    upsert_matching_field: str = "id"
    chunk_size: Annotated[int, Field(ge=1, le=2000)] = 500  # features per applyEdits request


# A PostgreSQL schema or table name as written unquoted: lowercase, at most 63 bytes
PgName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]


class PostgresConfig(_Bindings):
    """``postgres:``: the container as one table of the database ``KNACK_POSTGRES_URL``
    names (lib/publish/postgres.py)."""

    db_schema: PgName = Field("knack", alias="schema")  # `schema` shadows pydantic's
    table: PgName | None = None  # default: <app>_<container>, made safe (table_name)

    def table_name(self, app_name: str, container: str) -> str:
        """The table: ``table``, else ``<app>_<container>`` lowercased with every other
        character than a-z, 0-9 and ``_`` as ``_``, cut to 63 bytes."""
        if self.table:
            return self.table
        name = re.sub(r"[^a-z0-9_]", "_", f"{app_name}_{container}".lower())
        return (name if name[0].isalpha() or name[0] == "_" else f"_{name}")[:63]


class KnackConfig(_Strict):
    """Publish to an object of another Knack app (``lib.publish.knack``)."""

    app_name: Annotated[str, Field(min_length=1)]  # another params file: its app_id, its key
    object: Annotated[str, Field(pattern=r"^object_\d+$")]
    match_field: FieldKey  # the destination field that holds the source record id
    fields: dict[FieldKey, FieldKey]  # source field key -> destination field key
    delete: bool = False  # full runs delete the records whose source is gone
    max_requests_per_run: Annotated[int, Field(ge=1)] = 20000  # stop before starting past it

    @field_validator("fields")
    @classmethod
    def _one_source_per_destination(cls, value: dict[str, str], info: ValidationInfo) -> Any:
        targets = list(value.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} filled by more than one source field")
        if not value:
            raise ValueError("map at least one source field to a destination field")
        if info.data.get("match_field") in targets:
            raise ValueError(
                f"{info.data['match_field']} is the match_field: it holds the source id"
            )
        return value


class ContainerConfig(_Strict):
    description: str = ""
    scene: Annotated[str, Field(pattern=r"^scene_\d+$")] | None = None
    modified_date_field: Annotated[str, Field(pattern=r"^field_\d+$")] | None = None
    socrata: SocrataConfig | None = None
    agol: AgolConfig | None = None
    postgres: PostgresConfig | None = None
    knack: KnackConfig | None = None
    # A full run refuses to delete more than this share of the stored records (or all of
    # them when Knack returns none) unless allow_mass_delete is true: an outage or a wrong
    # filter must never empty the store.
    mass_delete_threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    allow_mass_delete: bool = False
    # The container's Airflow DAG (dags/knack_dags.py); times are UTC.
    schedule: str | None = "@hourly"  # a cron expression or Airflow preset; null: manual only
    retries: Annotated[int, Field(ge=0, le=10)] = 2  # per task, retry_delay_seconds apart
    retry_delay_seconds: Annotated[int, Field(ge=1, le=24 * 3600)] = 300
    # The first run at or after each tick of this cron is a full run (deletions reach every
    # destination); null: only the first run is full. Default: monthly, the 1st, 07:00 UTC.
    full_run_schedule: str | None = "0 7 1 * *"
    # How long each task of the container's DAGs (and `knack-nb run` of a job on it) may run
    # before it is stopped, its report saying so; null: each job's default (lib/jobs/registry).
    execution_timeout_minutes: Annotated[int, Field(ge=1, le=24 * 60)] | None = None

    def refuses_mass_delete(self, gone: int, of: int, remaining: int) -> bool:
        """The mass-delete guard of every full run that deletes (the sync in S3, the
        publishers at their destinations): deleting ``gone`` of ``of`` with ``remaining``
        left at the source is refused when nothing remains or more than
        ``mass_delete_threshold`` would go, unless ``allow_mass_delete``."""
        if not gone or self.allow_mass_delete:
            return False
        return not remaining or gone > self.mass_delete_threshold * of


class AppConfig(_Strict):
    name: str = Field(description="the params file's stem, e.g. data-tracker")
    app_id: dict[Env, KnackKey]
    # client-side pace of Knack requests; Knack answers 429 beyond 10 per second
    requests_per_second: Annotated[float, Field(gt=0, le=10)] = 8.0
    # How many of the app's Knack tasks (upload_metadata, knack_container_to_s3, of all its
    # container DAGs) Airflow runs at once: the slots of the app's pool (dags/, `knack-nb
    # airflow-pools`). They share requests_per_second (see client_requests_per_second).
    concurrent_knack_tasks: Annotated[int, Field(ge=1, le=10)] = 1
    containers: dict[Annotated[str, Field(pattern=r"^(object|view)_\d+$")], ContainerConfig]

    @property
    def client_requests_per_second(self) -> float:
        """The pace of one Knack client: the app's ``requests_per_second`` shared by the
        ``concurrent_knack_tasks`` that may run at once, so together they stay under it."""
        return self.requests_per_second / self.concurrent_knack_tasks

    def app_id_for(self, env: str) -> str:
        env = check_env(env)
        if env not in self.app_id:
            raise ConfigError(
                f"params for app {self.name!r} have no app_id for env {env!r}: "
                f"add app_id.{env} to {self.name}.yaml"
            )
        return self.app_id[env]

    def container(self, key: str) -> ContainerConfig:
        try:
            return self.containers[key]
        except KeyError:
            known = ", ".join(sorted(self.containers)) or "none"
            raise UnknownContainerError(
                f"container {key!r} is not configured for app {self.name!r} "
                f"(configured: {known}); add it under `containers:` in {self.name}.yaml"
            ) from None


def check_env(env: str) -> Env:
    """Return ``env`` if it is ``prod`` or ``dev``, else fail with a clear message."""
    if env not in ENVS:
        raise ConfigError(f"env must be 'prod' or 'dev', not {env!r}")
    return env  # type: ignore[return-value]


def params_dir() -> Path:
    """The folder of params files: ``KNACK_PARAMS_DIR`` or the project's ``params/``."""
    return Path(os.environ.get("KNACK_PARAMS_DIR") or DEFAULT_PARAMS_DIR)


def known_apps(directory: Path | None = None) -> list[str]:
    directory = directory or params_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_app(app_name: str, directory: Path | None = None) -> AppConfig:
    """Load and validate ``<params dir>/<app_name>.yaml``."""
    directory = directory or params_dir()
    path = directory / f"{app_name}.yaml"
    if not app_name or "/" in app_name or not path.is_file():
        known = ", ".join(known_apps(directory)) or "none"
        raise UnknownAppError(
            f"unknown app {app_name!r}: no {path} (known apps: {known}); "
            "add a params file or set KNACK_PARAMS_DIR"
        )
    try:
        raw = _load_yaml(path.read_text())
    except _DuplicateKey as e:
        raise ConfigError(
            f"{path}: key {_shown(e.path)} is given twice (line {e.first} and line {e.second}): "
            "keep one"
        ) from None
    except _TooBig as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping with app_id and containers")
    try:
        return AppConfig.model_validate({"name": app_name, **raw})
    except ValidationError as e:
        raise ConfigError(_describe(path, e)) from None


class _DuplicateKey(Exception):
    def __init__(self, path: str, first: int, second: int) -> None:
        super().__init__(path)
        self.path, self.first, self.second = path, first, second


class _TooBig(Exception):
    """The document is nested deeper than ``MAX_DEPTH`` or holds more than ``MAX_VALUES``."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping key given twice (PyYAML keeps the last one), and
    a document nested deeper than ``MAX_DEPTH`` or holding more than ``MAX_VALUES`` values
    once its aliases are expanded (checked on the composed nodes, before anything walks or
    builds them).

    Keys merged in with ``<<`` may still be overridden, as YAML means them to be.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # the composer recurses once per level: stop it well before Python's own limit
        if self._depth >= MAX_DEPTH:
            raise _TooBig(_too_deep(self.peek_event().start_mark.line + 1))
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        _check_size(node)
        self._paths: dict[int, str] = {}
        _key_paths(node, "", self._paths)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader says so itself
                continue
            if first is not None:
                raise _DuplicateKey(f"{self._paths.get(id(node), '')}{key}", first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _too_deep(line: int) -> str:
    return (
        f"values nested deeper than {MAX_DEPTH} levels (at line {line}; aliases "
        "counted where they are used): a params file needs 6, flatten it"
    )


def _check_size(root: yaml.Node) -> None:
    """Fail (``_TooBig``) when ``root`` expanded (each alias as the node it names) is nested
    deeper than ``MAX_DEPTH`` or holds more than ``MAX_VALUES`` values. Each node is
    measured once: linear in the document's size, not in its expansion's."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels below it)

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        known = measured.get(id(node))
        if known is None:
            if depth > MAX_DEPTH:
                raise _TooBig(_too_deep(node.start_mark.line + 1))
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            values, levels = 1, 0
            for child in children:
                n, below = measure(child, depth + 1)
                values, levels = values + n, max(levels, below + 1)
                if values > MAX_VALUES:
                    raise _TooBig(
                        f"more than {MAX_VALUES:,} values once its aliases (*name) are "
                        "expanded: a params file holds a few hundred; use fewer aliases"
                    )
            known = measured[id(node)] = (values, levels)
        if depth + known[1] > MAX_DEPTH:
            raise _TooBig(_too_deep(node.start_mark.line + 1))
        return known

    measure(root, 1)


def _key_paths(node: yaml.Node, prefix: str, paths: dict[int, str]) -> None:
    """The dotted path (``containers.view_1.``) of every mapping node under ``node``."""
    if isinstance(node, yaml.MappingNode):
        paths.setdefault(id(node), prefix)
        for key_node, value in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            _key_paths(value, f"{prefix}{name}.", paths)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _key_paths(item, f"{prefix}{i}.", paths)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's error on one line: what, and the line and column where."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())
    parts = [error.context, error.problem]
    mark = error.problem_mark or error.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return " ".join(" ".join(p for p in parts if p).split()) + where


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = SHOWN_CHARS
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 5, 5


def _shown(value: Any) -> str:
    """A value or key as an error message quotes it: its repr, cut to ``SHOWN_CHARS``
    (reprlib reads only what it shows of a big value)."""
    text = _REPR.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _describe(path: Path, error: ValidationError) -> str:
    problems = []
    for err in error.errors():
        key = _shown(".".join(str(part) for part in err["loc"]) or "(top level)")
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key}")
        elif err["type"] == "missing":
            problems.append(f"missing key {key}")
        else:
            problems.append(f"{key}: {err['msg']} (got {_shown(err.get('input'))})")
    return f"{path}: " + "; ".join(problems)


# --- environment -----------------------------------------------------------------------


def knack_api_url() -> str:
    return (os.environ.get("KNACK_API_URL") or DEFAULT_KNACK_API_URL).rstrip("/")


def knack_api_key() -> str | None:
    """The Knack REST API key, or None (public views only)."""
    return os.environ.get("KNACK_API_KEY") or None


def knack_api_key_variable(app_name: str) -> str:
    """The variable of one app's REST API key: ``KNACK_API_KEY_<APP>`` (the params name
    upper-cased, ``-`` as ``_``)."""
    return "KNACK_API_KEY_" + app_name.upper().replace("-", "_")


def knack_api_key_of(app_name: str) -> str | None:
    """App ``app_name``'s REST API key: ``KNACK_API_KEY_<APP>``, else ``KNACK_API_KEY``."""
    return os.environ.get(knack_api_key_variable(app_name)) or knack_api_key()


def bucket() -> str:
    return os.environ.get("KNACK_SERVICES_BUCKET") or DEFAULT_BUCKET


def socrata_url() -> str:
    return (os.environ.get("SOCRATA_URL") or DEFAULT_SOCRATA_URL).rstrip("/")


def agol_url() -> str:
    return (os.environ.get("AGOL_URL") or DEFAULT_AGOL_URL).rstrip("/")


def agol_ca_bundle() -> str | None:
    """A CA file for a portal with a private certificate (``AGOL_CA_BUNDLE``), or None."""
    path = os.environ.get("AGOL_CA_BUNDLE") or None
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"AGOL_CA_BUNDLE is {path!r}, which is not a file")
    return path


def require_env(*names: str, purpose: str) -> dict[str, str]:
    """Return the values of environment variables that must be set (credentials)."""
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        raise MissingCredentialError(*missing, purpose=purpose)
    return {n: os.environ[n] for n in names}
