"""Exactly-once file claims and the unit of work that commits them.

Identity: a file is ``(target table, content fingerprint)``. Rules, decided in one write
transaction by :meth:`Claims.decide`:

1. a ``loading`` row whose owner is alive -> ``skipped`` ("being loaded by batch X");
2. ``loading`` rows whose owner is dead (same host and the pid is gone, or the lease expired)
   become ``failed`` ("interrupted: cleaned up by batch X");
3. a ``loaded`` row, no ``force`` and nothing was interrupted (no dead ``loading`` row, and no
   ``failed`` row marked interrupted after the ``loaded`` one and not yet cleaned) ->
   ``skipped`` ("already loaded by batch X");
4. otherwise a new ``loading`` claim (owner, fencing token, lease). Its ``replaces`` lists every
   earlier attempt of the identity whose rows may still be in the target table: interrupted
   and failed attempts not yet cleaned, and the ``loaded`` one (with ``force``, or when an
   interrupted attempt may have been a forced reload that already deleted its rows).

The loader deletes the rows of ``replaces`` (:func:`prepare_in`) in the transaction that writes
the file's rows; :func:`finish_in` then marks the claim finished, fenced
(``WHERE id AND claim_token AND status = 'loading'``), and marks the replaced attempts cleaned
(``loaded`` ones become ``replaced``) in that same transaction.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson

from tallyclerk.audit import sqlgen
from tallyclerk.audit.repo_protocol import ClaimCandidate, Repository, is_candidate
from tallyclerk.audit.types import FileClaim, FileResult
from tallyclerk.dburl import mask_secrets
from tallyclerk.errors import InternalError, LeaseLost
from tallyclerk.protocols import SqlExecutor

if TYPE_CHECKING:
    from tallyclerk.audit.types import FileSkip, RejectRow

__all__ = [
    "Claims",
    "abandon_in",
    "add_rejects_in",
    "check_counts",
    "finish_in",
    "prepare_in",
    "swap_in",
]

log = logging.getLogger("tallyclerk.audit")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """Claim decisions for one process (``owner`` is ``host:pid``).

    A plain class (one per audit service, never compared or copied), not a ``@dataclass``:
    its generated methods cost ~0.5 ms of every start (issue 16.1)."""

    __slots__ = ("host", "lease_s", "pid")

    def __init__(self, host: str, pid: int, lease_s: float) -> None:
        self.host = host
        self.pid = pid
        self.lease_s = lease_s

    def __repr__(self) -> str:
        return f"Claims(host={self.host!r}, pid={self.pid!r}, lease_s={self.lease_s!r})"

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}"

    def owner_dead(self, row: ClaimCandidate, now: datetime) -> bool:
        """Whether a ``loading`` row's owner is gone: lease expired, or a dead pid on this host."""
        if row.lease_expires_at is not None and row.lease_expires_at <= now:
            return True
        host, _, pid_text = (row.owner or "").rpartition(":")
        if host != self.host or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == self.pid:
            return False  # this very process: alive; its lease bounds a leak
        return not pid_alive(pid)

    def skippable(
        self, rows: Sequence[ClaimCandidate], now: datetime, *, force: bool
    ) -> tuple[ClaimCandidate, str] | None:
        """The row a file with these claim candidates is skipped for, and why (rules 1 and 3);
        None when :meth:`decide` claims it instead. Reads only."""
        loading = [r for r in rows if r.status == "loading"]
        live = [r for r in loading if not self.owner_dead(r, now)]
        if live:
            return live[0], f"being loaded by batch {live[0].batch_id}"
        loaded = [r for r in rows if r.status == "loaded"]
        if loaded and not force and not loading and not _interrupted_since(rows, loaded[-1]):
            return loaded[-1], f"already loaded by batch {loaded[-1].batch_id}"
        return None

    def decide_many(
        self,
        repo: Repository,
        *,
        batch_id: str,
        table: str,
        files: Sequence[tuple[str, str, int, float]],
        claim_new: bool = False,
    ) -> list[FileClaim | FileSkip]:
        """Decide, in the caller's transaction, the longest prefix of ``files`` (path,
        fingerprint, size, mtime) whose decision needs no cleanup, as :meth:`decide` without
        ``force`` would one by one (issue 16.4: many small files, and their re-runs):

        * a file :meth:`skippable` skips gets its ``skipped`` row (rules 1 and 3);
        * with ``claim_new``, a file whose identity has no history at all (no earlier claim
          of any status but ``skipped``/``pending``) gets a new ``loading`` claim: rule 4 with
          attempt 1 and nothing to replace, exactly what :meth:`decide` gives it.

        The prefix ends before the first other file (dead owners to clean up, a failed or
        forced attempt to replace, a content given twice): :meth:`decide` takes it alone. One
        query reads the identities' histories and one insert writes every row, in the order
        of ``files``, so manifest ids keep the order the files are processed in.

        Why claims taken ahead keep every guarantee (the caller's argument in full:
        :meth:`tallyclerk.audit.ledger.FileLedger.skip_ahead`): the histories are read in the
        transaction that inserts the claims (SQLite's ``BEGIN IMMEDIATE`` write lock, so no
        other writer decides in between), and a claim taken ahead is an ordinary ``loading``
        row: a killed process leaves it with a dead owner, and the next claim of the file
        cleans it up (rule 2) as it does the claim of a file killed mid-load."""
        now = datetime.now(timezone.utc)
        by_identity: dict[str, list[ClaimCandidate]] = {}
        for row in repo.claim_history_of(table, sorted({f[1] for f in files})):
            by_identity.setdefault(row.fingerprint, []).append(row)
        chosen: list[tuple[dict[str, Any], ClaimCandidate | None, str]] = []
        seen: set[str] = set()
        for path, fingerprint, size, mtime in files:
            if fingerprint in seen:
                break  # the first one's claim decides this one: decide() after it
            seen.add(fingerprint)
            history = by_identity.get(fingerprint, [])
            base: dict[str, Any] = {
                "batch_id": batch_id, "path": path, "size": size, "mtime": mtime,
                "fingerprint": fingerprint, "target_table": table, "started_at": now,
                "object_url": None, "object_etag": None, "object_version": None,
            }
            if not history and claim_new:
                chosen.append((base, None, uuid.uuid4().hex))
                continue
            found = self.skippable([r for r in history if is_candidate(r)], now, force=False)
            if found is None:
                break
            chosen.append((base, *found))
        lease = now + timedelta(seconds=self.lease_s)
        ids = repo.add_files([
            _skip_values(b, e, r) if e is not None else _claim_values(b, r, self.owner, lease)
            for b, e, r in chosen
        ])
        return [
            _file_skip(b, i, e, r) if e is not None else _file_claim(b, i, r)
            for (b, e, r), i in zip(chosen, ids, strict=True)
        ]

    def decide(
        self,
        repo: Repository,
        *,
        batch_id: str,
        path: str,
        table: str,
        fingerprint: str,
        size: int,
        mtime: float,
        force: bool,
        object_url: str | None = None,
        object_etag: str | None = None,
        object_version: str | None = None,
    ) -> FileClaim | FileSkip:
        """Claim or skip one file (see the module docstring); runs in the caller's transaction."""
        repo.lock_identity(table, fingerprint)
        now = datetime.now(timezone.utc)
        history = repo.claim_history(table, fingerprint)
        rows = [r for r in history if is_candidate(r)]
        loading = [r for r in rows if r.status == "loading"]
        base: dict[str, Any] = {
            "batch_id": batch_id,
            "path": path,
            "size": size,
            "mtime": mtime,
            "fingerprint": fingerprint,
            "target_table": table,
            "started_at": now,
            "object_url": object_url,
            "object_etag": object_etag,
            "object_version": object_version,
        }
        found = self.skippable(rows, now, force=force)
        if found is not None:
            (file_id,) = repo.add_files([_skip_values(base, *found)])
            return _file_skip(base, file_id, *found)
        for dead in loading:  # every loading row is dead here (a live one means a skip)
            log.warning(
                "file %s: claim %d of batch %s (owner %s) is dead; cleaned up by batch %s",
                dead.path,
                dead.id,
                dead.batch_id,
                dead.owner,
                batch_id,
            )
            repo.fail_loading_file(
                dead.id,
                error=f"interrupted: cleaned up by batch {batch_id}",
                error_class="Interrupted",
                finished_at=now,
            )
            # its batch will never finish itself (killed): it must not show as running forever
            repo.update_batch(
                dead.batch_id,
                only_if_status="running",
                status="failed",
                finished_at=now,
                error_class="Interrupted",
                error_message=f"interrupted (owner {dead.owner} gone); cleaned up by batch "
                f"{batch_id}",
            )
        attempt = len(history) + 1
        token = uuid.uuid4().hex
        (file_id,) = repo.add_files([{
            **base,
            "status": "loading",
            "attempt": attempt,
            "claim_token": token,
            "owner": self.owner,
            "lease_expires_at": now + timedelta(seconds=self.lease_s),
        }])
        return FileClaim(
            file_id=file_id,
            batch_id=batch_id,
            path=path,
            table=table,
            fingerprint=fingerprint,
            size=size,
            mtime=mtime,
            attempt=attempt,
            token=token,
            replaces=tuple(r.id for r in rows),
        )


def _interrupted_since(rows: Sequence[ClaimCandidate], loaded: ClaimCandidate) -> bool:
    """Whether an attempt after the ``loaded`` one was interrupted and is not yet cleaned.

    Its owner died, and a later claim marked it failed and died too before it finished (rule
    2 ran, rule 4's claim never ended). With the data in another database it may have been a
    forced reload whose transaction committed (the loaded attempt's rows deleted, its own
    written): skipping would leave rows that belong to no ``loaded`` manifest row. Claiming
    again replaces every such attempt, so the target ends with exactly one load of the file.
    """
    return any(r.status == "failed" and r.error_class == "Interrupted" and r.cleaned_by is None
               and r.id > loaded.id for r in rows)


def _skip_values(base: dict[str, Any], earlier: ClaimCandidate, reason: str) -> dict[str, Any]:
    # every row of one insert names the same columns (skips and claims taken ahead mix)
    return {
        **base,
        "status": "skipped",
        "finished_at": base["started_at"],
        "earlier_batch_id": earlier.batch_id,
        "earlier_file_id": earlier.id,
        "error": reason,
        "attempt": 1,
        "claim_token": None,
        "owner": None,
        "lease_expires_at": None,
    }


def _claim_values(base: dict[str, Any], token: str, owner: str,
                  lease: datetime) -> dict[str, Any]:
    """A new claim's row with no history (attempt 1), in :func:`_skip_values`' columns."""
    return {
        **base,
        "status": "loading",
        "finished_at": None,
        "earlier_batch_id": None,
        "earlier_file_id": None,
        "error": None,
        "attempt": 1,
        "claim_token": token,
        "owner": owner,
        "lease_expires_at": lease,
    }


def _file_claim(base: dict[str, Any], file_id: int, token: str) -> FileClaim:
    return FileClaim(
        file_id=file_id,
        batch_id=base["batch_id"],
        path=base["path"],
        table=base["target_table"],
        fingerprint=base["fingerprint"],
        size=base["size"],
        mtime=base["mtime"],
        attempt=1,
        token=token,
        replaces=(),
    )


def _file_skip(
    base: dict[str, Any], file_id: int, earlier: ClaimCandidate, reason: str
) -> FileSkip:
    from tallyclerk.audit.skiptypes import FileSkip  # not created on a load of a new file

    return FileSkip(
        path=base["path"],
        table=base["target_table"],
        fingerprint=base["fingerprint"],
        file_id=file_id,
        earlier_batch_id=earlier.batch_id,
        reason=reason,
    )


# --- the unit of work, on the caller's executor ------------------------------------------------


def prepare_in(ex: SqlExecutor, claim: FileClaim, target_table: str) -> None:
    """Delete the target rows of ``claim.replaces`` (``_tc_file_id`` = each id)."""
    if claim.replaces:
        compiled = sqlgen.delete_rows_sql(ex.dialect_name, target_table)
        ex.executemany(compiled.sql, [(file_id,) for file_id in claim.replaces])


def add_rejects_in(ex: SqlExecutor, claim: FileClaim, rejects: Sequence[RejectRow]) -> None:
    """Insert a file's rejects (the executor must be the audit database's)."""
    if not rejects:
        return
    compiled = sqlgen.insert_rejects_sql(ex.dialect_name)
    ex.executemany(
        compiled.sql,
        [
            (claim.file_id, claim.batch_id, r.record_number, r.line, r.column, r.rule, r.reason,
             r.raw, r.masked)
            for r in rejects
        ],
    )


def check_counts(claim: FileClaim, result: FileResult) -> None:
    """Refuse a result that breaks ``rows_read == rows_written + rows_rejected +
    rows_rolled_back``, or a loaded one with rolled-back rows."""
    r = result
    if r.rows_read != r.rows_written + r.rows_rejected + r.rows_rolled_back or (
        r.rows_rolled_back and r.error is None
    ):
        raise InternalError(
            f"{claim.path}: rows_read ({r.rows_read}) != rows_written ({r.rows_written}) + "
            f"rows_rejected ({r.rows_rejected}) + rows_rolled_back ({r.rows_rolled_back})"
        )


def finish_in(
    ex: SqlExecutor,
    claim: FileClaim,
    status: str,
    result: FileResult,
    *,
    duration_s: float | None,
) -> bool:
    """Finish a claim (``loaded`` or ``failed``), fenced by its token; True if it was held.

    For ``loaded``, the attempts in ``claim.replaces`` are marked cleaned first (``loaded``
    becomes ``replaced``: at most one row of an identity may be ``loaded``).

    Raises:
        LeaseLost: ``loaded`` for a claim that is no longer held; the caller must roll back.
    """
    dialect = ex.dialect_name
    if status == "loaded" and claim.replaces:
        supersede = sqlgen.supersede_sql(dialect)
        ex.executemany(
            supersede.sql,
            [
                supersede.params(
                    {"loaded": "loaded", "replaced": "replaced", "new_id": claim.file_id,
                     "old_id": old_id}
                )
                for old_id in claim.replaces
            ],
        )
    fenced = sqlgen.fenced_commit_sql(dialect)
    changed = ex.execute(
        fenced.sql,
        fenced.params(
            {
                "status": status,
                "rows_read": result.rows_read,
                "rows_written": result.rows_written,
                "rows_rejected": result.rows_rejected,
                "rows_rolled_back": result.rows_rolled_back,
                "bytes_read": result.bytes_read,
                "first_error_line": result.first_error_line,
                "rows_inserted": result.rows_inserted if status == "loaded" else None,
                "rows_updated": result.rows_updated if status == "loaded" else None,
                "finished_at": sqlgen.ts(dialect),
                "duration_s": duration_s,
                "error": None if result.error is None else mask_secrets(result.error),
                "error_class": result.error_class,
                "schema_version": result.schema_version,
                "column_changes": _changes_json(result.column_changes),
                "file_id": claim.file_id,
                "token": claim.token,
                "from_status": "loading",
            }
        ),
    )
    if changed != 1 and status == "loaded":
        raise LeaseLost(
            f"claim of {claim.path} (file {claim.file_id}, batch {claim.batch_id}) is no "
            "longer held: its lease was taken over or released; not committed"
        )
    return changed == 1


def swap_in(ex: SqlExecutor, shadow: str, table: str) -> None:
    """A replace swapped ``shadow`` in as ``table``: the table's ``loaded`` files become
    ``replaced`` (their rows are gone), then the shadow's files name ``table``."""
    dialect = ex.dialect_name
    retire = sqlgen.retire_loaded_sql(dialect)
    ex.execute(retire.sql, retire.params({"table": table, "loaded": "loaded",
                                          "replaced": "replaced"}))
    retarget = sqlgen.retarget_sql(dialect)
    ex.execute(retarget.sql, retarget.params({"shadow": shadow, "table": table}))


def abandon_in(ex: SqlExecutor, shadow: str, reason: str) -> int:
    """The files loaded into an abandoned replace's ``shadow`` become ``failed``."""
    abandon = sqlgen.abandon_staged_sql(ex.dialect_name)
    return ex.execute(
        abandon.sql,
        abandon.params({"shadow": shadow, "loaded": "loaded", "failed": "failed", "zero": 0,
                        "error": mask_secrets(reason)[:4000], "error_class": "ReplaceAbandoned"}),
    )


def _changes_json(changes: dict[str, list[str]] | None) -> str | None:
    """``column_changes`` in storage form (JSON text); None when nothing changed."""
    if not changes or not any(changes.values()):
        return None
    return orjson.dumps({k: v for k, v in changes.items() if v}).decode()
