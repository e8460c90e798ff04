"""The S3 record store: the layout of DESIGN.md and JSON in and out of it.

```
s3://<bucket>/<app-name>-<env>/<app-id>.json
s3://<bucket>/<app-name>-<env>/<container>/<record-id>.json
```
Anything else the project keeps lives under a ``_``-prefixed key. The endpoint comes from
``AWS_ENDPOINT_URL`` (boto3 honours it); credentials from boto3's usual chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from lib import config
from lib.errors import CorruptObjectError, MissingCredentialError, StoreError
from lib.ids import RecordIndex

logger = logging.getLogger(__name__)

MAX_POOL_CONNECTIONS = 32  # one shared client serves this many concurrent requests
UPLOAD_WORKERS = 16  # concurrent PUTs through that client
DELETE_BATCH = 1000  # the most keys S3's DeleteObjects takes at once
STATE_PREFIX = "_state"  # never mistaken for a container: containers don't start with _
METADATA_FETCH = "upload_metadata"  # _state/<app>-<env>/upload_metadata.json
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONTAINER = re.compile(r"^(object|view)_\d+$")
RECORD_ID = re.compile(r"^[0-9a-f]{24}$")
RECORD_NAME = re.compile(r"^[0-9a-f]{24}\.json$")  # a record's object, under its container
SHOWN_KEYS = 5  # keys of objects that are not records a report names (the count: all)


@dataclass
class WriteResult:
    """What a batch of record writes did."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # record id -> error
    bodies: dict[str, bytes] = field(default_factory=dict)  # with keep_bodies: id -> object


class ForeignRecordError(CorruptObjectError):
    """Record objects (``<id>.json``) whose JSON is not that record: its ``id`` differs.

    Never published nor put in the snapshot; a full sync rewrites such an object from Knack,
    or deletes it once Knack confirms there is no record of that id."""

    def __init__(self, store: Store, container: str, found: Mapping[str, str]) -> None:
        self.keys = sorted(found)
        shown = "; ".join(f"{store.url(k)} holds {found[k]}" for k in self.keys[:SHOWN_KEYS])
        more = f" (and {len(found) - SHOWN_KEYS} more)" if len(found) > SHOWN_KEYS else ""
        one = len(found) == 1
        super().__init__(
            f"{len(found)} object{'' if one else 's'} named as a record of {container} "
            f"hold{'s' if one else ''} another record (the \"id\" inside is not the key's), "
            f"so {'it was' if one else 'they were'} refused: never published nor put in the "
            f"snapshot: {shown}{more}; run a full knack_container_to_s3 of {container} (date "
            "None), which rewrites such an object from Knack, or deletes it once Knack "
            "confirms there is no record of that id; or delete it (aws s3 rm) if it is not "
            "needed"
        )


@dataclass
class Strays:
    """The objects under a container's prefix that are not its records (only
    ``<24 lower-case hex>.json`` directly under it is one): how many, and the first few keys.
    They are never deleted, published or put in the snapshot; a report lists them."""

    prefix_url: str = ""
    count: int = 0
    keys: list[str] = field(default_factory=list)  # the first SHOWN_KEYS, without the prefix

    def add(self, name: str) -> None:
        self.count += 1
        if len(self.keys) < SHOWN_KEYS:
            self.keys.append(name)

    def note(self) -> str | None:
        """A line for the report, or None when every object is a record."""
        if not self.count:
            return None
        names = ", ".join(shown_key(k) for k in self.keys)
        more = f" and {self.count - len(self.keys)} more" if self.count > len(self.keys) else ""
        return (f"{self.count} object{'s' if self.count > 1 else ''} under {self.prefix_url} "
                f"{'are' if self.count > 1 else 'is'} not records (a record is "
                "`<24 lower-case hex>.json` directly under it), so left as they are: not "
                f"deleted, not published, not in the snapshot: {names}{more}. Delete them "
                "if they are not needed")


def shown_key(name: str, width: int = 80) -> str:
    """An S3 key (any text whoever can write to the bucket chose) as a Markdown code span a
    report can show: no backtick, control character or lone surrogate left, at most
    ``width`` characters."""
    text = "".join("?" if ord(c) < 32 or c in "`\x7f" else c for c in escape_surrogates(name))
    return f"`{text if len(text) <= width else text[: width - 1] + '…'}`"


def check_record(key: str, record: Any, foreign: dict[str, str]) -> bool:
    """Whether ``record`` (the JSON of the record object at ``key``) is that record: its
    ``id`` is the key's. If not, ``foreign[key]`` says what it holds instead (for
    :class:`ForeignRecordError`)."""
    if not isinstance(record, dict):
        foreign[key] = f"a JSON {type(record).__name__}, not a record"
        return False
    inner = record.get("id")
    if inner == key.rsplit("/", 1)[1].removesuffix(".json"):
        return True
    foreign[key] = ("a record without id" if inner is None else
                    f"the record {escape_surrogates(str(inner))[:40]!r}")
    return False


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (valid in JSON, not in UTF-8) as its escape
    ``\\udXXX``; any other text unchanged."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dumps_stable(obj: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal data gives equal bytes (and equal MD5).

    UTF-8, except a lone surrogate (JSON allows ``"\\ud800"``, UTF-8 cannot hold it),
    which stays the JSON escape Knack sent (surrogates occur only inside strings): the
    object parses back to the same data.
    """
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return escape_surrogates(text).encode()


def md5_hex(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def s3_client() -> Any:
    """One boto3 S3 client, sized for concurrent use by many threads."""
    return boto3.client(
        "s3",
        config=Config(
            max_pool_connections=MAX_POOL_CONNECTIONS,
            retries={"max_attempts": 8, "mode": "adaptive"},
        ),
    )


class Store:
    """Where one app-env's data lives in S3."""

    def __init__(self, *, app_name: str, env: str, bucket: str | None = None, client: Any = None):
        if not _SAFE_NAME.match(app_name):
            raise ValueError(f"app name {app_name!r} cannot be part of an S3 key")
        self.app_name = app_name
        self.env = config.check_env(env)
        self.bucket = bucket or config.bucket()
        self.client = client or s3_client()

    @property
    def prefix(self) -> str:
        return f"{self.app_name}-{self.env}"

    def metadata_key(self, app_id: str) -> str:
        return f"{self.prefix}/{app_id}.json"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def get_json(self, key: str, *, fix: str | None = None) -> Any | None:
        """The JSON object at ``key``, or None if there is none.

        An object that is not JSON raises StoreError naming its S3 URL and ``fix``, what to
        do about it (by default: delete it or restore a good version, then rerun).
        """
        body = self.get_body(key)
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
            why = " ".join(str(e).split())[:200]
            raise CorruptObjectError(
                f"{self.url(key)} is not JSON ({why}): "
                + (fix or "delete it (or restore a good version of it) and rerun")
            ) from None

    def get_body(self, key: str) -> bytes | None:
        """The bytes of the object at ``key``, or None if there is none."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error("read", key, e) from None
        except botocore.exceptions.BotoCoreError as e:
            raise self._error("read", key, e) from None

    def put_json(self, key: str, obj: Any) -> str:
        """Write ``obj`` as stable JSON; returns its MD5 (the S3 ETag of a simple upload)."""
        body = dumps_stable(obj)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise self._error("write", key, e) from None
        return md5_hex(body)

    # --- records -----------------------------------------------------------------------

    def container_prefix(self, container: str) -> str:
        if not _CONTAINER.match(container):
            raise ValueError(f"{container!r} is not a container key (object_N or view_N)")
        return f"{self.prefix}/{container}/"

    def record_key(self, container: str, record_id: str) -> str:
        if not isinstance(record_id, str) or not RECORD_ID.match(record_id):
            raise ValueError(f"record id {record_id!r} is not 24 hex characters")
        return f"{self.container_prefix(container)}{record_id}.json"

    def list_objects(self, prefix: str) -> list[dict[str, Any]]:
        """Every object under ``prefix``, as S3's listing gives it (``Key``, ``Size``,
        ``ETag``, ``LastModified``)."""
        return list(self.iter_objects(prefix))

    def iter_objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """:meth:`list_objects` page by page: one page of 1,000 parsed objects (~1.2 KB
        each) is alive at a time, not the whole listing."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise translate_s3_error(e, f"cannot list {self.url(prefix)}") from None

    def list_records(self, container: str, *, strays: Strays | None = None) -> RecordIndex:
        """Record id → ETag (without quotes) of every record stored for ``container``
        (a compact mapping: ~30 bytes a record, as a full sync holds it to the end).

        Only ``<24 lower-case hex>.json`` directly under the container's prefix is a record;
        any other object there is left out (``strays``, when given, counts them)."""
        prefix = self.container_prefix(container)
        if strays is not None:
            strays.prefix_url = self.url(prefix)

        def pairs() -> Iterator[tuple[str, str]]:
            for obj in self.iter_objects(prefix):
                name = obj["Key"][len(prefix):]
                if RECORD_NAME.match(name):
                    yield name.removesuffix(".json"), obj["ETag"].strip('"')
                elif strays is not None:
                    strays.add(name)

        return RecordIndex(pairs())

    def read_records(
        self, container: str, *, since: dt.datetime | None = None,
        progress: Callable[[int], None] | None = None, strays: Strays | None = None,
    ) -> list[dict[str, Any]]:
        """The stored records of ``container``: all, or those written at or after ``since``.

        One listing gives each object's LastModified; the records are then read
        concurrently through the shared client. Objects that are not records are left out
        (``strays`` counts them); a record object holding another record (its ``id`` is not
        the key's) raises :class:`ForeignRecordError` once all are read, naming each.
        """
        prefix = self.container_prefix(container)
        if strays is not None:
            strays.prefix_url = self.url(prefix)
        # S3 lists LastModified to the whole second: compare with since's second, so a
        # record written later within that second is not missed (a re-read is harmless)
        floor = since.replace(microsecond=0) if since is not None else None
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    if not RECORD_NAME.match(obj["Key"][len(prefix):]):
                        if strays is not None:
                            strays.add(obj["Key"][len(prefix):])
                    elif floor is None or obj["LastModified"] >= floor:
                        keys.append(obj["Key"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise translate_s3_error(e, f"cannot list {self.url(prefix)}") from None
        foreign: dict[str, str] = {}

        def read(key: str) -> dict[str, Any]:
            record = self.get_json(key)
            if progress is not None:
                progress(1)
            if record is None:  # deleted between the listing and the read
                return {}
            return record if check_record(key, record, foreign) else {}

        with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="s3-get") as pool:
            records = [r for r in pool.map(read, keys) if r]
        if foreign:
            raise ForeignRecordError(self, container, foreign)
        return records

    def etag(self, key: str) -> str | None:
        """The ETag of ``key`` (without quotes), or None when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error("read", key, e) from None

    def put_records(
        self,
        container: str,
        records: Iterable[dict[str, Any]],
        *,
        known_etags: Mapping[str, str] | None = None,
        progress: Callable[[int], None] | None = None,
        before_write: Callable[[], None] | None = None,
        keep_bodies: bool = False,
    ) -> WriteResult:
        """Write each record as stable JSON, concurrently, skipping those S3 already holds.

        With ``known_etags`` (from ``list_records``) a record is compared with that listing;
        without, each record's own ETag is asked for (an incremental run touches only the
        records it was given). Every record must have a valid id (see ``record_key``).
        ``before_write`` is called before each PUT (from the writing threads): the snapshot
        is marked stale before the store changes. ``keep_bodies``: the result also holds
        the stable JSON of each record now stored (written or unchanged), so that a caller
        needing it does not serialize the record again.
        """
        result = WriteResult()

        def compare(record: dict[str, Any]) -> tuple[bytes, bool]:
            """The record's stable JSON, and whether S3 holds it already."""
            body = dumps_stable(record)  # a record that can't be written fails alone
            rid = record["id"]
            current = known_etags.get(rid) if known_etags is not None else \
                self.etag(self.record_key(container, rid))
            return body, current == md5_hex(body)

        def write(record: dict[str, Any], body: bytes | None) -> tuple[str, str, bytes, str | None]:
            rid = record["id"]
            key = self.record_key(container, rid)
            try:
                if body is None:
                    body, same = compare(record)
                    if same:
                        return rid, "unchanged", body, None
                if before_write is not None:
                    before_write()
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
                )
            except Exception as e:  # noqa: BLE001 - reported per record, the run fails later
                error = str(translate_s3_error(e, f"cannot write {self.url(key)}"))
                return rid, "failed", body or b"", error
            return rid, "written", body, None

        def settle(rid: str, outcome: str, body: bytes, error: str | None) -> None:
            if outcome == "written":
                result.written.append(rid)
            elif outcome == "unchanged":
                result.unchanged.append(rid)
            else:
                result.failed[rid] = error or "unknown error"
            if keep_bodies and outcome != "failed":
                result.bodies[rid] = body
            if progress is not None:
                progress(1)

        to_write: list[dict[str, Any]] = []
        bodies: list[bytes | None] = []
        for r in records:
            body = None
            if known_etags is not None:
                # compared with S3's listing: no request, so settled here; only the records
                # to write go to the writing threads (an unchanged re-run starts none)
                try:
                    body, same = compare(r)
                except Exception:  # noqa: BLE001 - write() reports it, from the thread
                    body, same = None, False
                if same:
                    settle(r["id"], "unchanged", body, None)
                    continue
            to_write.append(r)
            bodies.append(body)
        if to_write:
            with ThreadPoolExecutor(UPLOAD_WORKERS, thread_name_prefix="s3-put") as pool:
                for outcome in pool.map(write, to_write, bodies):
                    settle(*outcome)
        return result

    def delete_keys(self, keys: list[str]) -> dict[str, str]:
        """Delete objects, ``DELETE_BATCH`` per request; returns the keys S3 refused, with
        its message (empty: all deleted). A request that fails as a whole raises."""
        refused: dict[str, str] = {}
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
                )
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                raise translate_s3_error(e, f"cannot delete in {self.url(batch[0])}") from None
            refused.update((e.get("Key"), e.get("Message")) for e in answer.get("Errors", []))
        return refused

    def delete_records(self, container: str, record_ids: Iterable[str]) -> list[str]:
        """Delete records by id; returns the ids deleted."""
        keys = [self.record_key(container, rid) for rid in record_ids]
        refused = self.delete_keys(keys)
        if refused:
            key, message = next(iter(refused.items()))
            raise StoreError(
                f"S3 refused to delete {len(refused)} records, e.g. {key}: {message}"
            )
        return [k.rsplit("/", 1)[1].removesuffix(".json") for k in keys]

    # --- state ---------------------------------------------------------------------------

    def state_key(self, job: str, container: str) -> str:
        self.container_prefix(container)  # validates the key
        return f"{STATE_PREFIX}/{self.prefix}/{container}/{job}.json"

    # The one rule of the ``auto`` state: its point is a time up to which every change is
    # known to be in S3 (for a publisher: at its destination). A run moves it to the run's
    # start only if the run looked at every change since the point: a full run (``since``
    # None; ``auto`` with no point yet is one), an ``auto`` run (``since`` is the point) or
    # a run from an explicit date at or before the point. A later date never moves it.

    def resume_point(self, job: str, container: str) -> tuple[dt.datetime | None, str]:
        """For ``date="auto"``: the start of the last successful run of ``job`` on
        ``container`` (None: none yet, so a full run), and a note saying which.

        A corrupt state object raises StoreError naming its key and what to do."""
        since = self._state_point(self.state_key(job, container))
        if since is None:
            return None, 'date "auto": no successful run recorded yet, so a full run'
        return since, f'date "auto": resuming from the last successful run, {since.isoformat()}'

    def record_success(
        self, job: str, container: str, started: dt.datetime, *, since: dt.datetime | None,
        **info: Any,
    ) -> str | None:
        """Record that a run of ``job`` on ``container`` which started at ``started`` and
        took the changes since ``since`` (None: a full run) succeeded: call only on success.

        Advances the ``auto`` state to ``started`` by the rule above (never back); returns
        None, or a note for the report saying why the state was left as it is.
        """
        key = self.state_key(job, container)
        try:
            point = self._state_point(key)
        except StoreError as e:
            if since is not None:
                return f"{e} (this run left it as it is)"
            point = None  # a full run replaces a corrupt state
        if since is not None:
            if point is None:
                return (
                    f'the "auto" state was not started: this run took the changes since '
                    f"{since.isoformat()} only, so it does not know that every earlier change "
                    'is in S3; a full run (date None) or an "auto" run starts it'
                )
            if since > point:
                return (
                    f'the "auto" state was left at {point.isoformat()}: this run took the '
                    f"changes since {since.isoformat()}, which is later, so it did not look "
                    "at what changed in between"
                )
        if point is not None and point > started:  # a run that started later recorded it
            return None
        self.put_json(key, {"job": job, "last_success_start": started.isoformat(), **info})
        return None

    def _state_point(self, key: str) -> dt.datetime | None:
        """The ``last_success_start`` of the state at ``key`` (None: no state)."""
        fix = f'delete it (aws s3 rm {self.url(key)}); the next "auto" run is then a full run'
        state = self.get_json(key, fix=fix)
        if state is None:
            return None
        if not isinstance(state, dict):
            why = f"a JSON {type(state).__name__}, not a JSON object"
        elif "last_success_start" not in state:
            why = "no last_success_start"
        else:
            value = state["last_success_start"]
            try:
                point = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                point = None
            if point is not None and point.tzinfo is not None:
                return point.astimezone(dt.UTC)
            why = (f"last_success_start {value!r} has no UTC offset" if point is not None
                   else f"last_success_start {value!r} is not an ISO-8601 time")
        raise StoreError(f'the "auto" state {self.url(key)} is corrupt ({why}): {fix}')

    # --- when the metadata was last fetched ------------------------------------------------
    # Airflow's container DAGs of one app fetch the metadata once per schedule tick: the
    # first run of a tick fetches it and records when it started; the others find that
    # record at or after their tick and use the stored metadata (dags/knack_dags.py).

    def metadata_fetch_key(self) -> str:
        return f"{STATE_PREFIX}/{self.prefix}/{METADATA_FETCH}.json"

    def metadata_fetched(self, app_id: str) -> dt.datetime | None:
        """The start of the last successful metadata upload of ``app_id`` recorded by
        :meth:`record_metadata_fetch`; None when there is none, it is of another app id,
        or it cannot be read (the caller then fetches, which replaces it)."""
        key = self.metadata_fetch_key()
        try:
            state = self.get_json(key)
            if state is None:
                return None
            started = dt.datetime.fromisoformat(state["started"])
            if state["app_id"] != app_id or started.tzinfo is None:
                return None
        except (StoreError, TypeError, KeyError, ValueError) as e:
            logger.warning("%s cannot be read (%s): the metadata is fetched again", key, e)
            return None
        return started.astimezone(dt.UTC)

    def record_metadata_fetch(self, app_id: str, started: dt.datetime) -> None:
        """Record that an upload of ``app_id``'s metadata that started at ``started``
        (aware) succeeded: the stored metadata is at least that fresh. Never moves back."""
        known = self.metadata_fetched(app_id)
        if known is None or known < started:
            self.put_json(
                self.metadata_fetch_key(),
                {"app_id": app_id, "started": started.astimezone(dt.UTC).isoformat()},
            )

    def _error(self, verb: str, key: str, e: Exception) -> Exception:
        return translate_s3_error(e, f"cannot {verb} {self.url(key)}")


def translate_s3_error(e: Exception, what: str) -> Exception:
    """A botocore error as one of ours, with what to do about it."""
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return MissingCredentialError(
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            purpose=f"{what}: S3 needs AWS credentials (or a profile or role)",
        )
    if isinstance(e, botocore.exceptions.ClientError):
        code = e.response.get("Error", {}).get("Code")
        if code == "NoSuchBucket":
            return StoreError(
                f"{what}: the bucket does not exist; create it or set KNACK_SERVICES_BUCKET"
            )
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StoreError(f"{what}: access denied ({code}); check the AWS credentials")
    return StoreError(f"{what}: {e}")
