"""lib.ids: the compact id collections a full sync keeps, against plain dicts and sets."""

import random

from lib.ids import IdList, IdSet, RecordIndex


def _ids(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    # Knack-like ids, some ending in zero bytes (numpy's S scalars drop trailing NULs)
    ids = [rng.randbytes(12).hex() for _ in range(n)]
    return ids + ["5f" + "00" * 11, "00" * 12, "ab" * 11 + "00"]


def test_record_index_is_the_dict_it_replaces():
    ids = _ids(3000)
    tags = {rid: random.Random(rid).randbytes(16).hex() for rid in ids}
    tags["00" * 12] = "ab" * 15 + "00"
    odd = {
        "not-a-knack-id": "d41d8cd98f00b204e9800998ecf8427e",  # an S3 name of another kind
        "ABCDEF0123456789ABCDEF01": "c" * 32,  # upper case: kept as it is
        "aaaaaaaaaaaaaaaaaaaaaaaa": "9b2cf535f27731c974343645a3985328-2",
    }  # multipart ETag
    plain = {**tags, **odd}
    index = RecordIndex(plain.items())
    assert len(index) == len(plain)
    assert dict(index) == plain
    assert sorted(index) == sorted(plain)
    for rid in [*ids, *odd]:
        assert rid in index and index[rid] == plain[rid] and index.get(rid) == plain[rid]
    for absent in ["ff" * 12, "abcdef0123456789abcdef01", "", "x", 5, None]:
        assert absent not in index and index.get(absent) is None and index.get(absent, 7) == 7
    assert index.keys() - set(ids[:10]) == plain.keys() - set(ids[:10])
    assert dict(RecordIndex()) == {} and len(RecordIndex()) == 0


def test_id_set_is_a_set():
    ids = _ids(20_000, seed=1)  # more than one merge into the sorted array
    ids += ids[:500] + ["not-hex", "ABCDEF0123456789ABCDEF01"]  # repeats are one member
    ours, plain = IdSet(), set()
    for rid in ids:
        ours.add(rid)
        plain.add(rid)
        if rid.startswith("0"):  # members are found before and after merges
            assert rid in ours
    assert len(ours) == len(plain) and ours == plain and set(ours) == plain
    assert "ff" * 12 not in ours and "abcdef0123456789abcdef01" not in ours and 3 not in ours
    assert {"00" * 12, "nope"} - ours == {"nope"}
    assert {"00" * 12: 1, "ee" * 12: 2}.keys() - ours == {"ee" * 12}


def test_id_list_keeps_order():
    ids = _ids(100, seed=2)
    listed = IdList()
    assert not listed and len(listed) == 0
    listed.extend(ids[:50])
    listed.extend(iter(ids[50:]))
    assert list(listed) == ids and len(listed) == len(ids)
    middle = len(ids) // 2
    assert listed[0] == ids[0] and listed[-1] == ids[-1] and listed[middle] == ids[middle]
    assert listed[3:6] == ids[3:6]
    try:
        listed.extend(["ABCDEF0123456789ABCDEF01"])
    except ValueError as e:
        assert "24 lower-case hex" in str(e)
    else:
        raise AssertionError("an id that is not lower-case hex was taken")
