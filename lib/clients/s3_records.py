"""What a record object in S3 is, for the doorway (``lib.clients.s3``) and its readers.

A record of a container is ``<app>-<env>/<container>/<24 lower-case hex>.json``, written as
stable JSON (:func:`dumps_stable`: equal records give equal bytes, so S3's ETag, the MD5,
tells an unchanged record without reading it) and holding that record (its ``id`` is the
key's: :func:`check_record`). Any other object under a container is a stray: counted and
named in reports (:class:`Strays`), never deleted, published or put in the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lib.errors import CorruptObjectError

if TYPE_CHECKING:
    from lib.clients.s3 import Bucket

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

    def __init__(self, store: Bucket, container: str, found: Mapping[str, str]) -> None:
        self.keys = sorted(found)
        shown = "; ".join(f"{store.url(k)} holds {found[k]}" for k in self.keys[:SHOWN_KEYS])
        more = f" (and {len(found) - SHOWN_KEYS} more)" if len(found) > SHOWN_KEYS else ""
        one = len(found) == 1
        super().__init__(
            f"{len(found)} object{'' if one else 's'} named as a record of {container} "
            f'hold{"s" if one else ""} another record (the "id" inside is not the key\'s), '
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
        return (
            f"{self.count} object{'s' if self.count > 1 else ''} under {self.prefix_url} "
            f"{'are' if self.count > 1 else 'is'} not records (a record is "
            "`<24 lower-case hex>.json` directly under it), so left as they are: not "
            f"deleted, not published, not in the snapshot: {names}{more}. Delete them "
            "if they are not needed"
        )


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
    foreign[key] = (
        "a record without id"
        if inner is None
        else f"the record {escape_surrogates(str(inner))[:40]!r}"
    )
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
