"""Compact collections of Knack record ids, for what a sync keeps for every record.

A full sync keeps S3's listing (record id → ETag) and the ids Knack listed until its
deletions are decided. As Python dicts and sets of strings these cost ~200 and ~110 bytes a
record (a 24-character str is 72 bytes, an ETag's 32 characters 80, plus the tables), and
their strings, allocated among each page's records, keep the allocator's pages of those
records in use. Here an id is its 12 bytes and an ETag its 16, in numpy arrays: ~30 bytes
a record. Anything that is not lower-case hex of that length (a name S3 holds that is not
a Knack id, a multipart ETag) is kept as it is, in a plain dict or set beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from typing import Any, overload

import numpy as np

ID_BYTES = 12  # a Knack id: 24 hex characters
TAG_BYTES = 16  # an MD5 ETag: 32 hex characters
_MERGE_EVERY = 8192  # ids added to an IdSet between merges into its sorted array


def _raw(text: Any, size: int) -> bytes | None:
    """``text``'s bytes when it is exactly ``2 * size`` lower-case hex characters."""
    if not isinstance(text, str) or len(text) != 2 * size:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if len(raw) == size and raw.hex() == text else None


def _hex_rows(array: np.ndarray, size: int) -> Iterator[str]:
    text = array.tobytes().hex()
    width = 2 * size
    return (text[i : i + width] for i in range(0, len(text), width))


def _find(keys: np.ndarray, raw: bytes) -> int:
    """The index of ``raw`` in the sorted ``keys`` (dtype S12), or -1."""
    i = int(keys.searchsorted(raw))
    # compared as bytes: numpy's S scalars drop trailing NUL bytes
    if i < len(keys) and keys[i : i + 1].tobytes() == raw:
        return i
    return -1


class IdSet(Set[str]):
    """A set of record ids that grows one id at a time (``add``), ~12 bytes an id."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._sorted = np.empty(0, dtype=f"S{ID_BYTES}")
        self._recent: set[bytes] = set()
        self._other: set[str] = set()
        for rid in ids:
            self.add(rid)

    def add(self, rid: str) -> None:
        raw = _raw(rid, ID_BYTES)
        if raw is None:
            self._other.add(rid)
            return
        self._recent.add(raw)
        if len(self._recent) >= _MERGE_EVERY:
            self._merge()

    def _merge(self) -> None:
        if self._recent:
            recent = np.frombuffer(b"".join(self._recent), dtype=f"S{ID_BYTES}")
            self._sorted = np.union1d(self._sorted, recent)
            self._recent = set()

    def __contains__(self, rid: object) -> bool:
        raw = _raw(rid, ID_BYTES)
        if raw is None:
            return rid in self._other
        return raw in self._recent or _find(self._sorted, raw) >= 0

    def __len__(self) -> int:
        self._merge()
        return len(self._sorted) + len(self._other)

    def __iter__(self) -> Iterator[str]:
        self._merge()
        yield from _hex_rows(self._sorted, ID_BYTES)
        yield from self._other

    def __repr__(self) -> str:
        return f"IdSet({len(self)} ids)"


class IdList(Sequence[str]):
    """Valid record ids (24 lower-case hex characters) in the order added, 12 bytes each."""

    def __init__(self) -> None:
        self._raw = bytearray()

    def extend(self, ids: Iterable[str]) -> None:
        for rid in ids:
            raw = _raw(rid, ID_BYTES)
            if raw is None:
                raise ValueError(f"{rid!r} is not a record id (24 lower-case hex characters)")
            self._raw += raw

    def __len__(self) -> int:
        return len(self._raw) // ID_BYTES

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("IdList index out of range")
        return self._raw[index * ID_BYTES : (index + 1) * ID_BYTES].hex()

    def __repr__(self) -> str:
        return f"IdList({len(self)} ids)"


class RecordIndex(Mapping[str, str]):
    """Record id → ETag (without quotes), built once from a listing, ~28 bytes a record."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        ids, tags = bytearray(), bytearray()
        self._other: dict[str, str] = {}
        for rid, etag in pairs:
            raw, tag = _raw(rid, ID_BYTES), _raw(etag, TAG_BYTES)
            if raw is None or tag is None:
                self._other[rid] = etag
            else:
                ids += raw
                tags += tag
        keys = np.frombuffer(bytes(ids), dtype=f"S{ID_BYTES}")
        del ids
        order = np.argsort(keys, kind="stable")
        self._ids = keys[order]
        self._tags = np.frombuffer(bytes(tags), dtype=np.uint8).reshape(-1, TAG_BYTES)[order]

    def get(self, rid: str, default: Any = None) -> Any:
        raw = _raw(rid, ID_BYTES)
        i = _find(self._ids, raw) if raw is not None else -1
        if i >= 0:
            return self._tags[i].tobytes().hex()
        return self._other.get(rid, default) if self._other else default

    def __getitem__(self, rid: str) -> str:
        found = self.get(rid, self)
        if found is self:
            raise KeyError(rid)
        return found

    def __contains__(self, rid: object) -> bool:
        raw = _raw(rid, ID_BYTES)
        return (raw is not None and _find(self._ids, raw) >= 0) or rid in self._other

    def __len__(self) -> int:
        return len(self._ids) + len(self._other)

    def __iter__(self) -> Iterator[str]:
        yield from _hex_rows(self._ids, ID_BYTES)
        yield from self._other

    def __repr__(self) -> str:
        return f"RecordIndex({len(self)} records)"
