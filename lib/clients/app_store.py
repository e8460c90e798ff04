"""One app-env's part of the bucket (:class:`AppStore`): the layout of DESIGN.md and its records.

```
s3://<bucket>/<app-name>-<env>/<app-id>.json
s3://<bucket>/<app-name>-<env>/<container>/<record-id>.json
s3://<bucket>/_state/<app-name>-<env>/...          what runs remember (lib.state)
```
A record is read, listed, written and deleted by the rules of a record object
(``lib.clients.s3_records``); every request goes through the doorway (``lib.clients.s3``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lib import config
from lib.clients.s3 import STATE_PREFIX, UPLOAD_WORKERS, Bucket, translate_s3_error
from lib.clients.s3_records import (
    RECORD_ID,
    RECORD_NAME,
    ForeignRecordError,
    Strays,
    WriteResult,
    check_record,
    dumps_stable,
    md5_hex,
)
from lib.errors import StoreError
from lib.ids import RecordIndex

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONTAINER = re.compile(r"^(object|view)_\d+$")


class AppStore(Bucket):
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
                name = obj["Key"][len(prefix) :]
                if RECORD_NAME.match(name):
                    yield name.removesuffix(".json"), obj["ETag"].strip('"')
                elif strays is not None:
                    strays.add(name)

        return RecordIndex(pairs())

    def read_records(
        self,
        container: str,
        *,
        since: dt.datetime | None = None,
        progress: Callable[[int], None] | None = None,
        strays: Strays | None = None,
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
            name = obj["Key"][len(prefix) :]
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
            current = (
                known_etags.get(rid)
                if known_etags is not None
                else self.etag(self.record_key(container, rid))
            )
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
            raise StoreError(f"S3 refused to delete {len(refused)} records, e.g. {key}: {message}")
        return [k.rsplit("/", 1)[1].removesuffix(".json") for k in keys]
