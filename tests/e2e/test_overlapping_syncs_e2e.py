"""Two syncs of one container at the same time (a manual run during the scheduled one): the
snapshot is never left looking fresh while it is older than S3.

The overlap is driven deterministically in process: one sync runs in a thread of its own
and is held just before it writes its snapshot (a wrapper around ``lib.snapshot.upload`` that
waits for the test, then calls it), while the other runs from start to end. The held run's
snapshot, built before the other's writes, then lands last. Whatever the order, the
snapshot is either equal to the stored records or marked stale, and the next sync (with no
other running) rebuilds it and clears the marks. explore_container (through papermill) and
``read_frame`` say when it is marked stale.

The marks a killed run leaves (a run id's mark whose heartbeat stopped, or the single mark of
earlier versions) are cleared by the next successful sync; a live run's mark is not.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import warnings
from collections.abc import Callable, Iterator

import pyarrow.parquet as pq
import pytest

from lib import reports, sync
from lib.clients.app_store import AppStore
from lib.clients.s3_records import dumps_stable
from lib.metadata import upload_metadata
from lib.snapshot import io as snapshot  # upload, read_frame, is_stale
from lib.state import stale_marks

PREFIX = "signals-dev/object_1/"
MARKS = "_state/signals-dev/object_1/snapshot"  # the legacy mark and every run's


class Held:
    """Holds the sync run by ``run_held`` just before it uploads its snapshot."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        self.result: sync.ContainerSync | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        real = snapshot.upload

        def upload(store: AppStore, container: str, path: str) -> str:
            if threading.current_thread() is self._thread:
                self.arrived.set()
                assert self.release.wait(60), "the test never released the held sync"
            return real(store, container, path)

        monkeypatch.setattr(snapshot, "upload", upload)

    def run_held(self, **kwargs) -> None:
        def target() -> None:
            try:
                self.result = sync.sync_container(
                    app_name="signals", container="object_1", env="dev", **kwargs
                )
            except BaseException as e:  # noqa: BLE001 - reported by finish()
                self.error = e
            finally:
                self.arrived.set()  # never leave the test waiting

        self._thread = threading.Thread(target=target, name="held-sync")
        self._thread.start()
        assert self.arrived.wait(60), "the held sync never reached its snapshot"
        assert self.error is None and self.result is None, self.error

    def finish(self) -> sync.ContainerSync:
        self.release.set()
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive()
        assert self.error is None, self.error
        assert self.result is not None
        return self.result


@pytest.fixture
def held(monkeypatch) -> Iterator[Held]:
    h = Held(monkeypatch)
    yield h
    h.release.set()


def snapshot_records(stack) -> dict[str, str]:
    body = (
        stack.s3()
        .get_object(Bucket=stack.bucket, Key="_snapshots/signals-dev/object_1.parquet")["Body"]
        .read()
    )
    table = pq.read_table(io.BytesIO(body), columns=["id", "record"])
    return dict(
        zip(table.column("id").to_pylist(), table.column("record").to_pylist(), strict=True)
    )


def stored_records(signals) -> dict[str, str]:
    return {rid: body.decode() for rid, body in signals.s3().items()}


def marks(stack) -> list[str]:
    return stack.s3_keys(MARKS)


def fresh_but_old(signals) -> bool:
    """Whether the snapshot is presented as fresh (no mark) while it differs from S3."""
    return not marks(signals.stack) and snapshot_records(signals.stack) != stored_records(signals)


def change(signals, rid: str, text: str) -> None:
    signals.touch(rid, dt.datetime.now(dt.UTC), change=text)


def full_sync() -> sync.ContainerSync:
    return sync.sync_container(app_name="signals", container="object_1", env="dev")


def incremental_sync() -> sync.ContainerSync:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    return sync.sync_container(app_name="signals", container="object_1", env="dev", date=since)


OTHER_RUNS: dict[str, Callable[[], sync.ContainerSync]] = {
    "full": full_sync,
    "incremental": incremental_sync,
}


@pytest.mark.parametrize("other", sorted(OTHER_RUNS))
def test_the_run_whose_snapshot_lands_last_with_old_data_leaves_it_marked_stale(
    signals, held, other
):
    assert signals.sync().ok
    rid = sorted(signals.knack())[4]
    change(signals, rid, "the held run's version")
    held.run_held()  # a full run: it wrote the record, and waits before its snapshot
    change(signals, rid, "the other run's version")  # Knack changes meanwhile
    second = OTHER_RUNS[other]()  # the manual run, start to end
    assert second.ok, second.errors
    assert not fresh_but_old(signals)
    first = held.finish()  # its snapshot, without the other run's write, lands last
    assert first.ok, first.errors
    assert '"the other run\'s version"' in stored_records(signals)[rid]
    assert '"the held run\'s version"' in snapshot_records(signals.stack)[rid]
    assert not fresh_but_old(signals)
    assert marks(signals.stack)  # so: marked stale
    notes = " ".join(first.notes + second.notes)
    assert "ran at the same time" in notes and "stays marked stale" in notes

    # the next sync, with no other running, rebuilds it and clears the marks
    later = signals.sync(date=(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat())
    assert later.ok, later.error
    assert marks(signals.stack) == []
    assert snapshot_records(signals.stack) == stored_records(signals)


def test_explore_and_read_frame_say_when_the_snapshot_is_marked_stale(signals, held):
    assert signals.sync().ok
    rid = sorted(signals.knack())[6]
    change(signals, rid, "first")
    held.run_held()
    change(signals, rid, "second")
    assert full_sync().ok
    assert held.finish().ok
    assert not fresh_but_old(signals) and marks(signals.stack)

    explored = reports.run_notebook(
        "explore_container", app_name="signals", env="dev", container="object_1"
    )
    assert explored.ok, explored.error
    assert explored.summary["stale"] is True
    assert "The snapshot is marked stale" in signals.report_text(explored)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = snapshot.read_frame(app_name="signals", container="object_1", env="dev")
    assert frame.attrs["stale"] is True
    assert any("marked stale" in str(w.message) for w in caught)

    assert signals.sync().ok  # a full run alone: fresh again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = snapshot.read_frame(app_name="signals", container="object_1", env="dev")
    assert frame.attrs["stale"] is False and not caught


def mark_of_a_killed_run(signals, *, heartbeat_age: dt.timedelta) -> str:
    """The mark a run killed ``heartbeat_age`` ago left (it never settled it)."""
    mark = stale_marks.RunMark(AppStore(app_name="signals", env="dev"), "object_1")
    mark.start()
    mark.stop_heartbeat()
    set_heartbeat(signals, mark.key, dt.datetime.now(dt.UTC) - heartbeat_age)
    return mark.key


def set_heartbeat(signals, key: str, when: dt.datetime) -> None:
    """The mark at ``key`` as its run's last heartbeat at ``when`` would have left it."""
    s3, bucket = signals.stack.s3(), signals.stack.bucket
    body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert body["status"] == "running" and "alive_at" in body
    body["alive_at"] = when.isoformat()
    s3.put_object(Bucket=bucket, Key=key, Body=dumps_stable(body))


def test_the_marks_a_killed_run_leaves_are_cleared_by_the_next_sync(signals):
    assert signals.sync().ok
    store = AppStore(app_name="signals", env="dev")
    # the single mark of earlier versions, and a run whose heartbeat stopped long ago
    store.put_json(store.state_key("snapshot", "object_1"), {"stale": True})
    dead = mark_of_a_killed_run(signals, heartbeat_age=dt.timedelta(days=1))
    assert snapshot.is_stale(store, "object_1")
    rid = sorted(signals.knack())[9]
    change(signals, rid, "after the kill")
    result = signals.run(date=(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat())
    assert result.ok, result.error
    assert "rebuilt from the stored records" in signals.report_text(result)
    assert marks(signals.stack) == [] and dead not in signals.stack.s3_keys("_state/")
    assert snapshot_records(signals.stack) == stored_records(signals)


def test_a_live_runs_mark_is_not_cleared_until_that_run_is_gone(signals):
    assert signals.sync().ok
    live = mark_of_a_killed_run(signals, heartbeat_age=dt.timedelta(seconds=0))
    again = full_sync()  # another run's heartbeat is fresh: it may still be writing
    assert again.ok, again.errors
    assert live in marks(signals.stack) and len(marks(signals.stack)) == 2
    assert any("ran at the same time" in n for n in again.notes)
    # that run's heartbeat stops (killed): after the lease, the next sync clears both
    set_heartbeat(
        signals, live, dt.datetime.now(dt.UTC) - stale_marks.LEASE - dt.timedelta(minutes=1)
    )
    final = full_sync()
    assert final.ok, final.errors
    assert marks(signals.stack) == []
    assert snapshot_records(signals.stack) == stored_records(signals)


def test_a_run_that_fails_before_writing_leaves_no_mark(signals):
    assert signals.sync().ok
    upload_metadata(app_name="signals", env="dev")  # the sync reads it from S3
    signals.stack.knack.faults.fail_next = 10_000  # then Knack is down: nothing is written
    failed = signals.sync()
    assert not failed.ok and "Knack" in failed.error
    signals.stack.knack.faults.fail_next = 0
    assert marks(signals.stack) == []
