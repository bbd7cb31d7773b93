"""Uncertain files: killed between the data commit (target) and the manifest commit (audit store).

A batch whose audit store is another database than its target records ``data_target`` (the
target's identity, no credentials) in its options. A manifest row of such a batch that is still
``loading`` while its owner is dead (its lease expired, or its pid is gone on this host) is
*uncertain*: its rows may be in the target or not. ``tallyclerk status`` shows it as
``uncertain``; ``tallyclerk repair`` (and any load into its table, before it claims anything)
settles it from the target's load marker (:mod:`tallyclerk.audit.marker`) with
:func:`settle_in`, which finishes the row fenced like a normal commit (``WHERE id AND
claim_token AND status = 'loading'``), so two settlers, or a settler and a new claim, cannot
both finish it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tallyclerk.audit import claims
from tallyclerk.audit.claims import Claims
from tallyclerk.audit.datatarget import OPTION, target_key
from tallyclerk.audit.repo_protocol import Repository
from tallyclerk.audit.types import FileClaim, FileResult

__all__ = ["OPTION", "Uncertain", "find", "settle_in", "target_key"]



@dataclass(frozen=True, kw_only=True)
class Uncertain(FileClaim):
    """One uncertain manifest row: the claim its dead owner held, and what is needed to
    settle it (who held it, since when, and which target database it was loading into)."""

    owner: str | None
    started_at: datetime
    target: str

    def as_dict(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "batch_id": self.batch_id, "path": self.path,
                "table": self.table, "owner": self.owner, "target": self.target,
                "started_at": self.started_at.isoformat()}


def find(repo: Repository, who: Claims, *, table: str | None = None,
         path: str | None = None) -> list[Uncertain]:
    """The uncertain files (optionally of one batch table and/or path), oldest first.

    ``repo.loading_files`` reads with the literal ``status = 'loading'``, which lets the
    planner use the partial unique index of ``loading`` rows, so this stays cheap however long
    the ledger grows.
    """
    now = datetime.now(timezone.utc)
    found: list[Uncertain] = []
    for row, options in repo.loading_files(table=table, path=path):
        target = (options or {}).get(OPTION)
        if not target or row.claim_token is None or not who.owner_dead(row, now):
            continue
        found.append(Uncertain(
            file_id=row.id, batch_id=row.batch_id, path=row.path, table=row.target_table,
            fingerprint=row.fingerprint, size=row.size, mtime=row.mtime, attempt=row.attempt,
            token=row.claim_token, owner=row.owner, started_at=row.started_at,
            target=str(target),
        ))
    return sorted(found, key=lambda u: u.file_id)


def settle_in(repo: Repository, u: Uncertain, status: str, result: FileResult,
              note: str) -> bool:
    """Finish an uncertain row ``loaded`` (its data committed) or ``failed`` (not committed,
    or rolled back by the settler), fenced by its claim token; its dead batch stops showing
    ``running``. False when the row is no longer this uncertain claim (settled elsewhere)."""
    ex = repo.executor()
    replaces: tuple[int, ...] = ()
    if status == "loaded":
        # the attempts its claim replaced (their rows were deleted in its data transaction):
        # every earlier row of the identity a claim considers (locked, as a claim locks them)
        rows = repo.claim_candidates(u.table, u.fingerprint)
        if not any(r.id == u.file_id and r.status == "loading" for r in rows):
            return False
        replaces = tuple(r.id for r in rows if r.id < u.file_id and r.status != "loading")
    claim = dataclasses.replace(u, replaces=replaces)
    if status == "loaded":
        claims.check_counts(claim, result)
    held = claims.finish_in(ex, claim, status, result, duration_s=None)
    if held:
        repo.update_batch(
            u.batch_id, only_if_status="running", status="failed",
            finished_at=datetime.now(timezone.utc), error_class="Interrupted",
            error_message=f"interrupted (owner {u.owner} gone); {note}",
        )
    return held


def annotate(report: dict[str, Any], found: list[Uncertain]) -> dict[str, Any]:
    """A batch report (``tallyclerk status``) with ``uncertain`` (how many files are uncertain,
    in any batch), ``uncertain_files`` and, in its own files, ``status`` ``uncertain``."""
    mine = {u.path for u in found if u.batch_id == report.get("batch_id")}
    for f in report.get("files", ()):
        if f.get("status") == "loading" and f.get("path") in mine:
            f["status"] = "uncertain"
    report["uncertain"] = len(found)
    report["uncertain_files"] = [u.as_dict() for u in found]
    return report


def mark_history(history: list[dict[str, Any]], found: list[Uncertain]) -> list[dict[str, Any]]:
    """A file's history (``status --file``) with its uncertain rows' status ``uncertain``."""
    ids = {u.file_id for u in found}
    for h in history:
        if h.get("status") == "loading" and h.get("file_id") in ids:
            h["status"] = "uncertain"
    return history
