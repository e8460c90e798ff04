"""The one doorway to S3: every S3 call of the product goes through :class:`Bucket`.

One rule says when an object is not there (:func:`not_found`: a read then gives None), one
translation turns botocore's errors into ours (:func:`translate_s3_error`: a StoreError that
says what to do). One app-env's part of the bucket, the layout of DESIGN.md with its
records, is ``lib.clients.app_store.AppStore``, a Bucket. Snapshots (``lib.snapshot``),
backups (``lib.backup``) and the reports index (``lib.reports``) keep their own keys and
reach S3 through these calls too; only papermill writes the executed notebooks with its own
S3 handler. Anything else the project keeps lives
under a ``_``-prefixed key. The endpoint comes from ``AWS_ENDPOINT_URL`` (boto3 honours it);
credentials from boto3's usual chain.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lib import config
from lib.clients.s3_records import dumps_stable, md5_hex
from lib.errors import CorruptObjectError, MissingCredentialError, StoreError

__all__ = [
    "S3_ERRORS",
    "STATE_PREFIX",
    "UPLOAD_WORKERS",
    "Bucket",
    "not_found",
    "s3_client",
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

    def iter_objects(self, prefix: str, *, start_after: str = "") -> Iterator[dict[str, Any]]:
        """:meth:`list_objects` page by page: one page of 1,000 parsed objects (~1.2 KB
        each) is alive at a time, not the whole listing. ``start_after``: only the keys
        after it (S3 lists keys in order), e.g. the reports after a time."""
        extra = {"StartAfter": start_after} if start_after else {}
        with self._translated("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, **extra
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
