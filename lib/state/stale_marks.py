"""The snapshot's stale marks: one per sync run, so that a snapshot is never presented as
fresh when it is not, even when two syncs of one container run at the same time.

A run's mark is ``_state/<app>-<env>/<container>/snapshot-stale/<run id>.json``; only that
run writes it (no read-modify-write of a shared object, so no race, and no conditional
writes needed: S3 lists and reads what was written). Any mark there, or the single
``_state/<app>-<env>/<container>/snapshot.json`` of earlier versions, means the snapshot may
not hold every stored record (or their latest versions): explore and ``read_frame`` say so,
an incremental sync rebuilds it from the stored records instead of merging into it.

The rule a sync keeps (``RunMark``):

1. At its start, before it lists S3 or writes anything, it puts its mark (``running``), then
   lists the marks: those of other runs it sees are the snapshot's state when it started.
   While it runs, a heartbeat thread refreshes its mark's ``alive_at`` every
   ``HEARTBEAT_SECONDS``.
2. Once its snapshot is in S3 (or found exact), it lists the marks again. It overlapped
   another run when a mark is there that was not settled when it started: one it did not
   see then, one whose run was alive then (heartbeat within ``LEASE``) and still has it,
   one whose heartbeat moved since, or its own mark is gone. Its snapshot may then lack the
   other run's writes (or the other's snapshot its own), whichever landed last: it keeps its
   mark, as ``overlapped``, and its report says the snapshot stays marked stale; the next
   sync rebuilds it. Two runs whose marks' lifetimes intersect always both see each other
   (each puts its mark before its first look), so at least one keeps a mark.
3. Otherwise it ran alone, and its snapshot holds every stored record: it deletes its mark
   and the marks that were settled when it started: those of runs that had finished
   (``failed``, ``overlapped``, the old single mark) and those whose heartbeat had stopped
   for more than ``LEASE`` (a killed run). A run alive at its start whose mark is gone at its
   end finished cleanly before this run's mark was put (it would have seen it otherwise):
   not an overlap.
4. A run that fails keeps its mark as ``failed`` when it wrote or deleted a record, and
   deletes it when it changed nothing.

So a killed run's mark stops being refreshed and is cleared by the first successful sync
that starts ``LEASE`` after the kill (one started earlier cannot tell the killed run from a
slow one: it leaves the snapshot marked stale and says a run may still be writing). A run
whose heartbeat stalls for longer than ``LEASE`` while it is alive is taken for killed: if
its mark is deleted meanwhile, it finds its mark gone at its end and keeps the snapshot
marked stale then.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from lib.clients.app_store import AppStore
from lib.clients.s3 import STATE_PREFIX
from lib.errors import CorruptObjectError, StoreError

logger = logging.getLogger(__name__)

LEGACY_JOB = "snapshot"  # the single mark of earlier versions: AppStore.state_key(LEGACY_JOB, c)
MARKS_DIR = "snapshot-stale"  # _state/<app>-<env>/<container>/snapshot-stale/<run id>.json
HEARTBEAT_SECONDS = 60.0  # a running sync refreshes its mark this often
LEASE = dt.timedelta(minutes=10)  # a mark not refreshed for this long: its run was killed
RUNNING, FAILED, OVERLAPPED, LEGACY = "running", "failed", "overlapped", "legacy"
UNREADABLE = "unreadable"  # a mark whose body is not one of ours: a finished run's
STATUSES = frozenset({RUNNING, FAILED, OVERLAPPED})
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")  # RunMark.run: when it started, and a nonce


def marks_prefix(store: AppStore, container: str) -> str:
    """Where the runs' marks of ``container`` are."""
    store.container_prefix(container)  # validates the key
    return f"{STATE_PREFIX}/{store.prefix}/{container}/{MARKS_DIR}/"


def _is_mark(store: AppStore, container: str, key: str) -> bool:
    return key == store.state_key(LEGACY_JOB, container) or key.startswith(
        marks_prefix(store, container)
    )


def _listed(store: AppStore, container: str) -> list[str]:
    """The keys of the container's marks, with one listing (the legacy mark's key and the
    runs' prefix share ``.../<container>/snapshot``)."""
    prefix = f"{STATE_PREFIX}/{store.prefix}/{container}/{LEGACY_JOB}"
    return [o["Key"] for o in store.iter_objects(prefix) if _is_mark(store, container, o["Key"])]


def is_stale(store: AppStore, container: str) -> bool:
    """Whether the snapshot is marked stale: a sync is running, did not finish (failed or
    killed), or ran at the same time as another. An unreadable listing counts as marked."""
    try:
        return bool(_listed(store, container))
    except StoreError:
        return True


@dataclass(frozen=True)
class Mark:
    """One mark as a run saw it."""

    key: str
    run: str
    status: str  # RUNNING, FAILED, OVERLAPPED, LEGACY (or what an unknown body says)
    alive_at: dt.datetime | None  # the last heartbeat of a running run

    def settled(self, now: dt.datetime) -> bool:
        """Whether its run is over: it finished, or its heartbeat stopped ``LEASE`` ago."""
        if self.status != RUNNING:
            return True
        return self.alive_at is None or now - self.alive_at > LEASE

    def describe(self) -> str:
        if self.status == LEGACY:
            return "a run of an earlier version"
        when = (
            f", alive at {self.alive_at.isoformat(timespec='seconds')}"
            if (self.alive_at is not None and self.status == RUNNING)
            else ""
        )
        return f"run {self.run} ({self.status}{when})"


def read_marks(store: AppStore, container: str) -> dict[str, Mark]:
    """The container's marks, by key (one listing, then one GET each: there are few)."""
    marks: dict[str, Mark] = {}
    for key in _listed(store, container):
        if key == store.state_key(LEGACY_JOB, container):
            marks[key] = Mark(key, "", LEGACY, None)
            continue
        try:
            body = store.get_json(key)
        except CorruptObjectError:  # not JSON: a run's mark all the same, not a running one
            body = {}
        if body is None:  # deleted since the listing
            continue
        body = body if isinstance(body, dict) else {}
        status = body.get("status") if body.get("status") in STATUSES else UNREADABLE
        run = key.rsplit("/", 1)[1].removesuffix(".json")  # shown in reports: ours only
        marks[key] = Mark(
            key, run if RUN_ID.match(run) else "?", status, _time(body.get("alive_at"))
        )
    return marks


def _time(value: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when is not None and when.tzinfo is not None else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunMark:
    """One sync's mark: put when it starts, refreshed while it runs, settled at its end
    (the rule in the module's docstring)."""

    def __init__(
        self, store: AppStore, container: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self.store, self.container = store, container
        self.started = _now()
        self.run = f"{self.started:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"
        self.key = f"{marks_prefix(store, container)}{self.run}.json"
        self.at_start: dict[str, Mark] = {}  # the other marks when this run started
        self._heartbeat_seconds = heartbeat_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost = False  # the heartbeat found this run's mark deleted by another run
        self._done = False

    def body(self, status: str, why: str = "") -> dict[str, Any]:
        return {
            "run": self.run,
            "status": status,
            "started": self.started.isoformat(),
            "alive_at": _now().isoformat(),
            "why": why or "a sync is running; the snapshot follows when it succeeds",
        }

    def start(self) -> dict[str, Mark]:
        """Put this run's mark, then see the others (returned); start the heartbeat."""
        self.store.put_json(self.key, self.body(RUNNING))
        try:
            self.at_start = {
                k: m for k, m in read_marks(self.store, self.container).items() if k != self.key
            }
        except BaseException:
            self.abandon(wrote=False)
            raise
        self._thread = threading.Thread(
            target=self._beat, daemon=True, name=f"stale-mark-{self.container}"
        )
        self._thread.start()
        return self.at_start

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_seconds):
            try:
                if self.store.get_body(self.key) is None:  # deleted: taken for a killed run
                    self._lost = True
                    return
                self.store.put_json(self.key, self.body(RUNNING))
            except StoreError as e:  # the next beat tries again; the lease allows a few
                logger.warning("the heartbeat of %s failed: %s", self.key, e)

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def settle(self) -> list[str]:
        """This run's snapshot is in S3: clear the marks (its own and those settled when it
        started) when it ran alone; else keep its own as ``overlapped``. Returns notes for
        the report."""
        self.stop_heartbeat()
        now = read_marks(self.store, self.container)  # if S3 fails here: abandon() follows
        own = now.pop(self.key, None)
        clearable = {k for k, m in self.at_start.items() if m.settled(self.started)}
        others = [
            m
            for k, m in now.items()
            if k not in clearable or m.alive_at != self.at_start[k].alive_at
        ]
        if others or own is None or self._lost:
            who = "; ".join(m.describe() for m in others[:5]) or (
                "a run that took this one for killed and cleared its mark"
            )
            why = (
                f"another sync of {self.container} ran at the same time ({who}): the "
                "snapshot may lack the records one of them wrote after the other read "
                "S3, so it stays marked stale; the next sync rebuilds it from the stored "
                "records"
            )
            self.store.put_json(self.key, self.body(OVERLAPPED, why))
            self._done = True
            return [why]
        cleared = [k for k in clearable if k in now]
        self.store.delete_keys([*cleared, self.key])
        self._done = True
        if not cleared:
            return []
        return [
            f"cleared the stale marks of {len(cleared)} earlier runs that did not finish "
            "or overlapped another (" + "; ".join(now[k].describe() for k in cleared[:5]) + ")"
        ]

    def abandon(self, *, wrote: bool) -> None:
        """The run failed (or stopped) before settling: it keeps its mark as ``failed`` when
        it wrote or deleted records, else removes it. Never raises: the run's own error is
        what matters (a mark left as it was is cleared after the lease)."""
        if self._done:
            return
        self._done = True
        self.stop_heartbeat()
        try:
            if wrote:
                self.store.put_json(
                    self.key,
                    self.body(
                        FAILED, "a sync wrote records and failed before writing the snapshot"
                    ),
                )
            else:
                self.store.delete_keys([self.key])
        except StoreError as e:
            logger.warning("the stale mark %s could not be settled: %s", self.key, e)
