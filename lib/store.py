"""The S3 record store: the layout of DESIGN.md and JSON in and out of it.

```
s3://<bucket>/<app-name>-<env>/<app-id>.json
s3://<bucket>/<app-name>-<env>/<container>/<record-id>.json
```
Anything else the project keeps lives under a ``_``-prefixed key. The endpoint comes from
``AWS_ENDPOINT_URL`` (boto3 honours it); credentials from boto3's usual chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from lib import config
from lib.errors import MissingCredentialError, StoreError

logger = logging.getLogger(__name__)

MAX_POOL_CONNECTIONS = 32  # one shared client serves this many concurrent requests
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def dumps_stable(obj: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal data gives equal bytes (and equal MD5)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


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

    def get_json(self, key: str) -> Any | None:
        """The JSON object at ``key``, or None if there is none."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error("read", key, e) from None
        except botocore.exceptions.BotoCoreError as e:
            raise self._error("read", key, e) from None
        return json.loads(body)

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
