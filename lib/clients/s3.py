"""The one doorway to S3: every S3 call of the product goes through :class:`Bucket`.

One rule says when an object is not there (:func:`not_found`: a read then gives None), one
translation turns botocore's errors into ours (:func:`translate_s3_error`: a StoreError that
says what to do). :class:`Store` is one app-env's part of the bucket, the layout of
DESIGN.md, with JSON in and out of it and the rules of a record object:

```
s3://<bucket>/<app-name>-<env>/<app-id>.json
s3://<bucket>/<app-name>-<env>/<container>/<record-id>.json
s3://<bucket>/_state/<app-name>-<env>/...          what runs remember (lib.state)
```
Snapshots (``lib.snapshot``), backups (``lib.backup``) and the reports index
(``lib.reports``) keep their own keys and reach S3 through these calls too; only papermill
writes the executed notebooks with its own S3 handler. Anything else the project keeps lives
under a ``_``-prefixed key. The endpoint comes from ``AWS_ENDPOINT_URL`` (boto3 honours it);
credentials from boto3's usual chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lib import config
from lib.clients.s3_records import (
    RECORD_ID,
    RECORD_NAME,
    ForeignRecordError,
    Strays,
    WriteResult,
    check_record,
    dumps_stable,
    escape_surrogates,
    md5_hex,
    shown_key,
)
from lib.errors import CorruptObjectError, MissingCredentialError, StoreError
from lib.ids import RecordIndex

__all__ = [  # with the record objects' rules (lib.clients.s3_records), which Store keeps
    "RECORD_ID", "RECORD_NAME", "S3_ERRORS", "STATE_PREFIX", "UPLOAD_WORKERS", "Bucket",
    "ForeignRecordError", "Store", "Strays", "WriteResult", "check_record", "dumps_stable",
    "escape_surrogates", "md5_hex", "not_found", "s3_client", "shown_key",
    "translate_s3_error",
]

logger = logging.getLogger(__name__)

MAX_POOL_CONNECTIONS = 32  # one shared client serves this many concurrent requests
UPLOAD_WORKERS = 16  # concurrent PUTs through that client
DELETE_BATCH = 1000  # the most keys S3's DeleteObjects takes at once
STATE_PREFIX = "_state"  # never mistaken for a container: containers don't start with _
DOWNLOAD_CHUNK = 1 << 20  # bytes of a streamed download held at once
# what S3 answers for a key with no object: a GET NoSuchKey, a HEAD a bare 404 (botocore
# names it "404"; some S3-compatible stores "NotFound")
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# what boto3 raises for a request S3 refused or that did not reach it (papermill's S3
# handler raises the same)
S3_ERRORS = (ClientError, BotoCoreError)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONTAINER = re.compile(r"^(object|view)_\d+$")


def s3_client() -> Any:
    """One boto3 S3 client, sized for concurrent use by many threads."""
    return boto3.client(
        "s3",
        config=Config(
            max_pool_connections=MAX_POOL_CONNECTIONS,
            retries={"max_attempts": 8, "mode": "adaptive"},
        ),
    )


def not_found(e: BaseException) -> bool:
    """The one rule of a missing object: whether S3's error says there is no object at the
    key (a missing bucket is not that: it is an error to report)."""
    return isinstance(e, ClientError) and e.response.get("Error", {}).get("Code") in (
        NOT_FOUND_CODES
    )


def translate_s3_error(e: Exception, what: str) -> Exception:
    """A botocore error as one of ours, with what to do about it."""
    if isinstance(e, NoCredentialsError):
        return MissingCredentialError(
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            purpose=f"{what}: S3 needs AWS credentials (or a profile or role)",
        )
    if isinstance(e, ClientError):
        code = e.response.get("Error", {}).get("Code")
        if code == "NoSuchBucket":
            return StoreError(
                f"{what}: the bucket does not exist; create it or set KNACK_SERVICES_BUCKET"
            )
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StoreError(f"{what}: access denied ({code}); check the AWS credentials")
    return StoreError(f"{what}: {e}")


class Bucket:
    """One S3 bucket and the calls the product makes to it. Each turns botocore's errors
    into a StoreError naming the object (:func:`translate_s3_error`); a read of a key with no
    object gives None (:func:`not_found`). One client serves many threads."""

    def __init__(self, bucket: str | None = None, *, client: Any = None) -> None:
        self.bucket = bucket or config.bucket()  # its name
        self.client = client or s3_client()

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextlib.contextmanager
    def _translated(self, verb: str, key: str) -> Iterator[None]:
        try:
            yield
        except S3_ERRORS as e:
            raise translate_s3_error(e, f"cannot {verb} {self.url(key)}") from None

    # --- reading -----------------------------------------------------------------------

    def open(self, key: str) -> Any | None:
        """The object at ``key`` as a stream to read (``read``, ``iter_chunks``), or None
        if there is none."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except S3_ERRORS as e:
            if not_found(e):
                return None
            raise translate_s3_error(e, f"cannot read {self.url(key)}") from None

    def get_body(self, key: str) -> bytes | None:
        """The bytes of the object at ``key``, or None if there is none."""
        body = self.open(key)
        if body is None:
            return None
        with self._translated("read", key):
            return body.read()

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

    def download(self, key: str, out: IO[bytes], *, chunk: int = DOWNLOAD_CHUNK) -> bool:
        """Stream the object at ``key`` into ``out``, ``chunk`` bytes at a time (one GET:
        boto3's download_fileobj would hold up to 10 ranged parts of 8 MiB at once, memory
        that grows with the object); False if there is none."""
        body = self.open(key)
        if body is None:
            return False
        with self._translated("read", key):
            for part in body.iter_chunks(chunk):
                out.write(part)
        return True

    def head(self, key: str) -> dict[str, Any] | None:
        """S3's HEAD of ``key`` (``ETag``, ``ContentLength``, ...), or None if there is no
        such object."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except S3_ERRORS as e:
            if not_found(e):
                return None
            raise translate_s3_error(e, f"cannot read {self.url(key)}") from None

    def etag(self, key: str) -> str | None:
        """The ETag of ``key`` (without quotes), or None when there is no such object."""
        head = self.head(key)
        return head["ETag"].strip('"') if head is not None else None

    # --- writing -------------------------------------------------------------------------

    def _put(self, key: str, body: Any, content_type: str) -> None:
        """One PUT, botocore's errors untranslated (for callers that report them per key)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def put_body(self, key: str, body: bytes | IO[bytes], content_type: str) -> None:
        """Write ``body`` (bytes or a binary file) as the object at ``key``, with one PUT:
        a reader sees the whole object or the previous one, never half of it."""
        with self._translated("write", key):
            self._put(key, body, content_type)

    def put_json(self, key: str, obj: Any) -> str:
        """Write ``obj`` as stable JSON; returns its MD5 (the S3 ETag of a simple upload)."""
        body = dumps_stable(obj)
        self.put_body(key, body, "application/json")
        return md5_hex(body)

    def put_file(self, key: str, path: str, content_type: str) -> None:
        """Write the local file at ``path`` as the object at ``key``, with one PUT."""
        with open(path, "rb") as body:
            self.put_body(key, body, content_type)

    def upload(self, key: str, fileobj: IO[bytes], content_type: str) -> int:
        """Upload a binary file from where it stands as the object at ``key`` (boto3's
        managed upload: in parts when it is large; S3 shows the object once all of it is
        there); returns the size S3 then holds."""
        with self._translated("write", key):
            self.client.upload_fileobj(
                fileobj, self.bucket, key, ExtraArgs={"ContentType": content_type}
            )
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    # --- listing and deleting ------------------------------------------------------------

    def list_objects(self, prefix: str) -> list[dict[str, Any]]:
        """Every object under ``prefix``, as S3's listing gives it (``Key``, ``Size``,
        ``ETag``, ``LastModified``)."""
        return list(self.iter_objects(prefix))

    def iter_objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """:meth:`list_objects` page by page: one page of 1,000 parsed objects (~1.2 KB
        each) is alive at a time, not the whole listing."""
        with self._translated("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                yield from page.get("Contents", [])

    def delete_keys(self, keys: list[str]) -> dict[str, str]:
        """Delete objects, ``DELETE_BATCH`` per request; returns the keys S3 refused, with
        its message (empty: all deleted). A request that fails as a whole raises."""
        refused: dict[str, str] = {}
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            with self._translated("delete in", batch[0]):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
                )
            refused.update((e.get("Key"), e.get("Message")) for e in answer.get("Errors", []))
        return refused


class Store(Bucket):
    """Where one app-env's data lives in S3: its keys, and its records."""

    def __init__(self, *, app_name: str, env: str, bucket: str | None = None, client: Any = None):
        if not _SAFE_NAME.match(app_name):
            raise ValueError(f"app name {app_name!r} cannot be part of an S3 key")
        self.app_name = app_name
        self.env = config.check_env(env)
        super().__init__(bucket, client=client)

    @property
    def prefix(self) -> str:
        return f"{self.app_name}-{self.env}"

    def metadata_key(self, app_id: str) -> str:
        return f"{self.prefix}/{app_id}.json"

    def state_key(self, job: str, container: str) -> str:
        """Where a job's state for a container is kept (what it means: ``lib.state``)."""
        self.container_prefix(container)  # validates the key
        return f"{STATE_PREFIX}/{self.prefix}/{container}/{job}.json"

    # --- records -----------------------------------------------------------------------

    def container_prefix(self, container: str) -> str:
        if not _CONTAINER.match(container):
            raise ValueError(f"{container!r} is not a container key (object_N or view_N)")
        return f"{self.prefix}/{container}/"

    def record_key(self, container: str, record_id: str) -> str:
        if not isinstance(record_id, str) or not RECORD_ID.match(record_id):
            raise ValueError(f"record id {record_id!r} is not 24 hex characters")
        return f"{self.container_prefix(container)}{record_id}.json"

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
        for obj in self.iter_objects(prefix):
            name = obj["Key"][len(prefix):]
            if not RECORD_NAME.match(name):
                if strays is not None:
                    strays.add(name)
            elif floor is None or obj["LastModified"] >= floor:
                keys.append(obj["Key"])
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
                self._put(key, body, "application/json")
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
