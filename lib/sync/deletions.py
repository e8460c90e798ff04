"""A full sync's deletions: a stored record goes only when Knack confirms it is gone.

Knack pages by offset with no snapshot: a record deleted while pages were fetched shifts
the later pages, so a record missing from the listing may still be in Knack. Each one is
asked for by id: only a 404 deletes it; one Knack still has is written again (the listing
missed it), and a listing that missed records is then taken once more for new records it
may have missed too. Guarded first against mass deletion, and against a single-record
route that would answer 404 for everything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lib.clients import knack
from lib.errors import KnackNbError
from lib.progress import progress_bar
from lib.sync.pages import has_valid_id, write
from lib.sync.result import SyncRun

logger = logging.getLogger(__name__)


@dataclass
class Listed:
    """What a full run knows of the container: S3's records and Knack's listing."""

    stored: Mapping[str, str]  # S3's records: id → ETag
    listed: Set[str]  # every id Knack listed
    valid: Sequence[str]  # the listed ids that name a record, in listing order

    def missing(self) -> list[str]:
        """The stored records Knack did not list, sorted."""
        return sorted(self.stored.keys() - self.listed)


def delete_gone(sync: SyncRun, seen: Listed) -> None:
    """Delete the stored records that Knack confirms are gone (see the module's doc)."""
    result, container = sync.result, sync.container
    if result.errors:
        result.notes.append("deletions skipped: the run had errors, so Knack's list is not trusted")
        return
    gone = seen.missing()
    if not gone:
        return
    if _refuses_mass_delete(sync, seen, gone):
        return
    if seen.valid and not _confirms_present(sync, seen.valid):
        return
    confirmed, present, unsure = _confirm(sync, gone)
    if present:
        _keep_present(sync, seen, present)
    if unsure:
        first = next(iter(unsure.items()))
        result.errors.append(
            f"Knack did not confirm that {len(unsure)} stored records are gone (e.g. "
            f"{first[0]}: {first[1]}), so they were kept; rerun later"
        )
    if confirmed:
        sync.snap.mark_stale()
        sync.snap.deleting(confirmed)
        result.deleted = sync.store.delete_records(container, confirmed)
        logger.info("deleted %d records of %s that Knack confirmed gone", len(confirmed), container)


def _refuses_mass_delete(sync: SyncRun, seen: Listed, gone: list[str]) -> bool:
    """Whether the container's mass-delete guard refuses these deletions (an error says
    what to do: a rerun alone refuses again)."""
    cfg, stored, valid = sync.cfg, len(seen.stored), len(seen.valid)
    if not cfg.refuses_mass_delete(len(gone), stored, valid):
        return False
    sync.result.errors.append(
        f"refusing to delete {len(gone)} of the {stored} stored records: Knack returned "
        f"{valid}, and a full run may delete at most "
        f"{cfg.mass_delete_threshold:.0%} of them (mass_delete_threshold). Nothing was "
        "deleted. If Knack is having trouble, rerun later; if Knack really lost them, set "
        f"`allow_mass_delete: true` under containers.{sync.container} in "
        f"{sync.run.app_name}.yaml, rerun, and set it back"
    )
    sync.result.rerun_helps = False
    return True


def _keep_present(sync: SyncRun, seen: Listed, present: list[dict[str, Any]]) -> None:
    """Records missing from the listing that Knack still has: kept and written again, with
    the records a listing taken once more finds that neither S3 nor the first listing had."""
    result = sync.result
    result.recovered = sorted(r["id"] for r in present)
    result.notes.append(
        f"{len(present)} stored records missing from Knack's listing are still in Knack "
        "(records deleted while pages were fetched shift the later pages): kept and "
        "refreshed from their own route"
    )
    again = sync.client.list_records(sync.container, scene=sync.scene)  # shifted: once more
    new = [
        r
        for r in again.records
        if has_valid_id(r) and r["id"] not in seen.listed and r["id"] not in seen.stored
    ]
    if new:
        result.notes.append(f"listed again: {len(new)} records the first listing missed")
    failed = write(sync, present + new, seen.stored)
    if failed:
        result.errors.append(f"{len(failed)} records could not be written to S3")


def _confirms_present(sync: SyncRun, listed: Sequence[str]) -> bool:
    """Whether Knack's single-record route finds a record its listing holds (a route that
    answers 404 for everything must never confirm deletions). A listed record may have been
    deleted since, so up to three are asked, the most recently listed first."""
    why = ""
    for rid in dict.fromkeys([listed[-1], listed[len(listed) // 2], listed[0]]):
        sync.result.confirmations += 1
        try:
            if sync.client.get_record(sync.container, rid, scene=sync.scene) is not None:
                return True
            why = f"{rid}: 404"
        except KnackNbError as e:
            why = f"{rid}: {e}"
    sync.result.errors.append(
        f"Knack's route for one record did not find records its listing holds ({why}): it "
        "cannot confirm deletions, so none was made. Rerun later; if it persists, check "
        f"GET .../{sync.container}/records/{{id}} with Knack"
    )
    return False


def _confirm(
    sync: SyncRun, gone: list[str]
) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """Ask Knack for each record by id: (confirmed gone, still present, not confirmed)."""
    container = sync.container
    confirmed: list[str] = []
    present: list[dict[str, Any]] = []
    unsure: dict[str, str] = {}

    def ask(rid: str) -> tuple[str, dict[str, Any] | None, str | None]:
        try:
            return rid, sync.client.get_record(container, rid, scene=sync.scene), None
        except KnackNbError as e:
            return rid, None, str(e)

    with (
        progress_bar(f"confirm deletions {container}", total=len(gone), unit="rec") as bar,
        ThreadPoolExecutor(knack.PAGE_WORKERS, thread_name_prefix="knack-confirm") as pool,
    ):
        for rid, record, error in pool.map(ask, gone):
            sync.result.confirmations += 1
            if error is not None:
                unsure[rid] = error
            elif record is None:
                confirmed.append(rid)
            else:
                present.append(record)
            bar.update(1)
    logger.info(
        "%s: %d of %d records missing from the listing confirmed gone (%d requests)",
        container,
        len(confirmed),
        len(gone),
        len(gone),
    )
    return confirmed, present, unsure
