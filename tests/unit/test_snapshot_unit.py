"""Small unit tests of lib.snapshot's helpers (the end-to-end ones are in test_snapshot_e2e)."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from lib.snapshot import record_md5s


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_record_md5s_hashes_each_cell_as_its_utf8_bytes(kind):
    texts = ['{"id": "a"}', None, "é\u00e9 ünïcode \U0001f6a6", "", "x" * 5000]
    column = pa.array(texts, kind)

    def expected(cells):
        return [None if t is None else hashlib.md5(t.encode()).hexdigest() for t in cells]

    assert record_md5s(column) == expected(texts)
    # a slice shares its parent's buffers: the offsets start past the slice's own offset
    for start, length in [(1, 4), (2, 2), (4, 1), (3, 0)]:
        part = column.slice(start, length)
        assert record_md5s(part) == expected(texts[start : start + length])
