"""The file ledger: exactly-once claims, each file's outcome, replaces and schema versions.

Exactly-once, in short (the README has the full statement): a file is identified by
``(target table, content fingerprint)``. :meth:`FileLedger.claim_file` decides in one write
transaction whether a batch loads it, skips it (already loaded, or being loaded by a live
owner) or reclaims it from a dead owner; two partial unique indexes make a second
``loading`` or ``loaded`` row of one identity impossible. A claim lists in ``replaces``
every earlier attempt whose rows may still be in the target table; the loader deletes them
(:meth:`prepare_file_in`) in the transaction that writes the file, and the fenced
:meth:`commit_file_in` marks the file ``loaded`` in that same transaction when the audit
store shares the database.

The ``..._in`` methods run in the caller's (data) transaction through its
:class:`~tallyclerk.audit.executor.SqlExecutor`; the others in a transaction of their own.
One ledger per :class:`~tallyclerk.audit.service.AuditService` (``service.ledger``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tallyclerk._core import BatchAccumulator
from tallyclerk.audit import claims, schemas, sqlgen
from tallyclerk.audit.claims import Claims
from tallyclerk.audit.repo_protocol import SHADOW_LIKE, Repository
from tallyclerk.audit.types import FileClaim, FileResult, StoredSchema
from tallyclerk.errors import (
    BatchCancelled,
    DuplicateKeyError,
    InternalError,
    SourceError,
    TallyclerkError,
)
from tallyclerk.fingerprints import fingerprint as prefetched_fingerprint
from tallyclerk.protocols import SqlExecutor

if TYPE_CHECKING:
    from tallyclerk.audit import uncertain
    from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
    from tallyclerk.audit.types import FileSkip, RejectRow
    from tallyclerk.objstore import Fetched

__all__ = ["SHADOW_LIKE", "FileLedger", "RepositoryRunner"]

log = logging.getLogger("tallyclerk.audit")

_FINAL_FILE_STATUSES = ("loaded", "failed")
_CLAIM_RACE_RETRIES = 3
R = TypeVar("R")


class RepositoryRunner(Protocol):
    """Runs a unit of work in a transaction of its own, retried on transient errors:
    :class:`~tallyclerk.audit.txn.TransactionRunner` (SQLAlchemy Core) or
    :class:`~tallyclerk.audit.txn.LiteTransactionRunner` (``sqlite3``)."""

    def run(self, work: Callable[[Repository], R], *, what: str) -> R: ...


class FileLedger:
    """The manifest of files (``tallyclerk_files``), their rejects and the tables' schemas.

    Args:
        runner: runs each own transaction (retried on transient errors).
        claims: decides claims for this process (host, pid, lease).
        accumulator: the live accumulator of a running batch of this process, or None.
        check_open: raises ``QueueClosed`` once the service closed.
    """

    def __init__(
        self,
        runner: RepositoryRunner,
        claims_: Claims,
        *,
        accumulator: Callable[[str], BatchAccumulator | None],
        check_open: Callable[[], None],
    ) -> None:
        self._runner = runner
        self._claims = claims_
        self._accumulator = accumulator
        self._check_open = check_open
        self._lock = threading.Lock()
        self._claim_started: dict[int, tuple[str, float]] = {}  # file id -> (batch, start)
        # (batch, path) -> committed skip, or claim taken ahead and not started yet
        self._ahead: dict[tuple[str, str], FileSkip | FileClaim] = {}

    def forget_batch(self, batch_id: str) -> list[tuple[int, str]]:
        """The batch finished: drop the start times of its claims. Returns the claims taken
        ahead that it never started, (id, token): the caller deletes their rows
        (``AuditRepository.drop_unstarted_claims``) in the batch's finishing transaction."""
        with self._lock:
            for file_id in [f for f, (b, _) in self._claim_started.items() if b == batch_id]:
                del self._claim_started[file_id]
            unstarted = []
            for key in [k for k in self._ahead if k[0] == batch_id]:
                taken = self._ahead.pop(key)
                if isinstance(taken, FileClaim):
                    unstarted.append((taken.file_id, taken.token))
            return unstarted

    def unstarted_claims(self, batch_id: str) -> list[int]:
        """The ids of the claims taken ahead for this batch and not started yet."""
        with self._lock:
            return [t.file_id for (b, _), t in self._ahead.items()
                    if b == batch_id and isinstance(t, FileClaim)]

    # --- claims ------------------------------------------------------------------------------

    def claim_file(
        self, batch_id: str, path: str, table: str, *, force: bool = False,
        fetched: Fetched | None = None,
    ) -> FileClaim | FileSkip:
        """Decide, in one short write transaction, whether this batch loads ``path``.

        * content already ``loaded`` into ``table`` (and not ``force``): a ``skipped`` row
          naming the earlier batch, and a :class:`FileSkip`;
        * ``loading`` by a live owner: ``skipped``, ``FileSkip(reason="being loaded by
          batch X")``;
        * ``loading`` by a dead owner (same host and its pid gone, or its lease expired): that
          row becomes ``failed`` ("interrupted: cleaned up by batch X") and this batch claims;
        * otherwise a ``loading`` claim. Its ``replaces`` names every earlier attempt whose rows
          may still be in the table (interrupted or failed ones not yet cleaned, and with
          ``force`` or after an interrupted forced reload, the loaded one).

        ``fetched``: ``path`` is an object-store URL copied to ``fetched.local``: the copy is
        fingerprinted, and the object's URL, size, ETag and version are recorded.

        Raises:
            SourceError: ``path`` cannot be read.
            BatchCancelled: the batch was cancelled or timed out.
            KeyError: ``batch_id`` is not a running batch of this service.
        """
        self._check_open()
        ahead = self.skipped_ahead(batch_id, path) if fetched is None else None
        if ahead is not None:
            return ahead
        acc = self._accumulator(batch_id)
        if acc is None:
            raise KeyError(f"no running batch {batch_id!r} in this audit service")
        if acc.cancelled:
            # a claim taken ahead stays unstarted: the batch's end deletes its row
            raise BatchCancelled(f"batch {batch_id} was cancelled: {acc.cancel_reason}")
        if fetched is None:
            with self._lock:
                taken = self._ahead.pop((batch_id, path), None)
                if taken is not None:
                    assert isinstance(taken, FileClaim)  # skips were popped above
                    self._claim_started[taken.file_id] = (batch_id, time.monotonic())
            if taken is not None:
                acc.touch()
                return taken
        sqlgen.check_identifier(table)
        local = path if fetched is None else fetched.local
        try:
            st = os.stat(local)
            fingerprint = prefetched_fingerprint(local)
        except OSError as exc:
            raise SourceError(f"{path}: {exc.strerror or exc}", path=path) from None
        size, mtime = st.st_size, st.st_mtime
        obj: dict[str, Any] = {}
        if fetched is not None:
            info = fetched.info
            mtime = info.mtime or st.st_mtime
            obj = {"object_url": info.url, "object_etag": info.etag,
                   "object_version": info.version}
        acc.touch()

        def work(repo: Repository) -> FileClaim | FileSkip:
            return self._claims.decide(
                repo,
                batch_id=batch_id,
                path=path,
                table=table,
                fingerprint=fingerprint,
                size=size,
                mtime=mtime,
                force=force,
                **obj,
            )

        for _ in range(_CLAIM_RACE_RETRIES):
            try:
                result = self._runner.run(work, what=f"claim {path}")
            except DuplicateKeyError:
                # another process claimed or committed the same content between our read and
                # our insert (the partial unique index said no): read again and decide again
                log.info("claim of %s raced with another process; deciding again", path)
                continue
            if isinstance(result, FileClaim):
                with self._lock:
                    self._claim_started[result.file_id] = (batch_id, time.monotonic())
            return result
        raise InternalError(f"claim of {path} kept racing with other processes")

    def skip_ahead(self, batch_id: str, paths: Sequence[str], table: str, *,
                   claim_new: bool = False) -> int:
        """Decide, in one transaction, the longest prefix of ``paths`` (local files, in the
        order they will be claimed) whose content is already loaded into ``table`` or being
        loaded by a live owner (skipped, as :meth:`claim_file` without ``force`` would one by
        one), or, with ``claim_new``, whose content the ledger has never seen (claimed: a new
        ``loading`` row, attempt 1, nothing to replace); :meth:`claim_file` then returns
        that skip or claim with no transaction of its own. The prefix ends before the first
        file that needs :meth:`claim_file`'s own decision (cleanup of a dead owner, a failed
        attempt to replace), cannot be read, or is given twice (by path or content). Returns
        its length.

        Claims taken ahead (issue 16.4: a small file's claim transaction was most of its
        overhead). The caller passes ``claim_new`` only when the audit store is the target's
        SQLite file, where every guarantee holds as for a claim taken at the file's turn:

        * *Exactly once.* The histories are read in the transaction that inserts the claims,
          and SQLite serialises writers (``BEGIN IMMEDIATE``): no other process decides
          between the read and the insert, and the partial unique index on ``loading`` rows
          still refuses a second claim. A claim ahead is an ordinary ``loading`` row (owner,
          token, lease renewed by the batch's heartbeat); the file's rows and its ``loaded``
          row commit together in its data transaction, fenced by the token, as before.
        * *SIGKILL at any point.* A killed process leaves its unstarted claims ``loading``
          with a dead owner; the next claim of each file marks it ``failed`` (interrupted,
          rule 2) and claims again, replacing it; it wrote no rows. Exactly the state a kill
          during that file's load leaves, so re-runs load each file once.
        * *A batch that stops* (Ctrl-C, a timeout, ``--on-error abort``, an exception) does
          not start its remaining claims: :meth:`forget_batch` hands them to the batch's
          finishing transaction, which deletes their rows (fenced by id, token and
          ``loading``; never sealed into the hash chain, named by no reject or event), so the
          manifest shows them not attempted, as before. A timeout's release of the batch's
          ``loading`` rows leaves them to that deletion (:meth:`unstarted_claims`).
        * *Other processes* see a claim ahead as a file being loaded by a live owner and skip
          it, as they skip a file another process is loading; ``--workers`` processes take
          one work item at a time, so their windows hold one file.

        The PostgreSQL or other-file audit stores keep one claim transaction a file (their
        uncertain-file recovery reads each claim as a started load)."""
        self._check_open()
        acc = self._accumulator(batch_id)
        if acc is None:
            raise KeyError(f"no running batch {batch_id!r} in this audit service")
        if acc.cancelled:
            return 0
        sqlgen.check_identifier(table)
        files: list[tuple[str, str, int, float]] = []
        with self._lock:
            seen = {p for b, p in self._ahead if b == batch_id}
        for path in paths:
            if path in seen:
                break
            seen.add(path)
            try:
                st = os.stat(path)
                files.append((path, prefetched_fingerprint(path), st.st_size, st.st_mtime))
            except (OSError, TallyclerkError):
                # unreadable, a corrupt archive...: claim_file computes it again at the
                # file's turn and reports it there (fingerprint errors are never cached)
                break
        if not files:
            return 0
        try:
            decided = self._runner.run(
                lambda repo: self._claims.decide_many(repo, batch_id=batch_id, table=table,
                                                      files=files, claim_new=claim_new),
                what=f"decide {len(files)} file(s) ahead",
            )
        except DuplicateKeyError:
            # another process claimed one of them in between (not on SQLite, which
            # serialises the transaction): each file is decided at its turn instead
            return 0
        with self._lock:
            self._ahead.update(((batch_id, d.path), d) for d in decided)
        return len(decided)

    def skipped_ahead(self, batch_id: str, path: str) -> FileSkip | None:
        """The skip :meth:`skip_ahead` committed for ``path`` in this batch (once), or None
        (a claim taken ahead stays for :meth:`claim_file`, or for the batch's end)."""
        with self._lock:
            found = self._ahead.get((batch_id, path))
            if found is not None and not isinstance(found, FileClaim):  # a FileSkip
                del self._ahead[(batch_id, path)]
                return found
            return None

    def prepare_file_in(self, ex: SqlExecutor, claim: FileClaim, target_table: str) -> None:
        """In the caller's data transaction: delete the target rows of ``claim.replaces``."""
        claims.prepare_in(ex, claim, target_table)

    def add_rejects_in(
        self, ex: SqlExecutor, claim: FileClaim, rejects: Sequence[RejectRow]
    ) -> None:
        """In the caller's transaction (the audit database's): insert the file's rejects."""
        claims.add_rejects_in(ex, claim, rejects)

    # --- outcomes ----------------------------------------------------------------------------

    def commit_file_in(self, ex: SqlExecutor, claim: FileClaim, result: FileResult) -> None:
        """In the caller's data transaction: mark the claim ``loaded``, fenced by its token.

        Earlier attempts in ``claim.replaces`` are marked cleaned (``loaded`` ones become
        ``replaced``) in the same transaction.

        Raises:
            LeaseLost: the claim is no longer this caller's (taken over, or released by a
                timeout); the caller must roll back.
            InternalError: ``rows_read != rows_written + rows_rejected + rows_rolled_back``.
        """
        claims.check_counts(claim, result)
        claims.finish_in(ex, claim, "loaded", result, duration_s=self._duration(claim))

    def finish_file(
        self,
        claim: FileClaim,
        status: str,
        result: FileResult,
        rejects: Sequence[RejectRow] = (),
    ) -> None:
        """In a transaction of its own: record a ``failed`` file, or a ``loaded`` one whose
        data lives in another database (fenced like :meth:`commit_file_in`).

        A ``failed`` claim that is no longer held (a timeout released it, or another worker
        reclaimed it) keeps the state its new holder gave it; that is logged, not raised.

        Raises:
            LeaseLost: ``loaded`` for a claim that is no longer held.
        """
        if status not in _FINAL_FILE_STATUSES:
            raise ValueError(f"finish_file status must be loaded or failed, not {status!r}")
        if status == "loaded":
            claims.check_counts(claim, result)
        duration = self._duration(claim)

        def work(repo: Repository) -> bool:
            ex = repo.executor()
            held = claims.finish_in(ex, claim, status, result, duration_s=duration)
            claims.add_rejects_in(ex, claim, rejects)
            return held

        held = self._runner.run(work, what=f"record {claim.path} {status}")
        with self._lock:
            self._claim_started.pop(claim.file_id, None)
        if not held:
            log.warning(
                "file %s: claim %d was no longer held when it failed; left as its holder set it",
                claim.path,
                claim.file_id,
            )
        acc = self._accumulator(claim.batch_id)
        if acc is not None:
            acc.touch()

    def _duration(self, claim: FileClaim) -> float | None:
        with self._lock:
            started = self._claim_started.get(claim.file_id, (None, None))[1]
        return None if started is None else time.monotonic() - started

    # --- uncertain files (an audit store in another database) ---------------------------------

    def uncertain_files(
        self, *, table: str | None = None, path: str | None = None
    ) -> list[uncertain.Uncertain]:
        """Files killed between their data commit and their manifest commit (another
        database): see :mod:`tallyclerk.audit.uncertain` (imported here: a load into a
        table whose audit store is the same database never asks, issue 16.1)."""
        from tallyclerk.audit import uncertain

        return self._runner.run(
            lambda repo: uncertain.find(repo, self._claims, table=table, path=path),
            what="find uncertain files")

    def settle_uncertain(self, u: uncertain.Uncertain, status: str, result: FileResult,
                         note: str) -> bool:
        """Record how an uncertain file ended (:func:`tallyclerk.audit.uncertain.settle_in`)."""
        from tallyclerk.audit import uncertain

        return self._runner.run(lambda repo: uncertain.settle_in(repo, u, status, result, note),
                                what=f"settle {u.path}")

    # --- replaces ----------------------------------------------------------------------------

    def swap_in(self, ex: SqlExecutor, shadow: str, table: str) -> None:
        """In the transaction that swaps a replace's shadow table in: the table's ``loaded``
        files become ``replaced`` and the shadow's files name ``table``."""
        claims.swap_in(ex, shadow, table)

    def swap_done(self, shadow: str, table: str) -> None:
        """:meth:`swap_in` in a transaction of its own (an audit store in another database)."""
        self._runner.run(
            lambda repo: claims.swap_in(repo.executor(), shadow, table),
            what=f"record the replace of {table!r}",
        )

    def stale_shadows(self, table: str) -> list[str]:
        """Shadow tables of earlier ``replace`` batches into ``table`` that are no longer
        running (their process died before the swap): the caller drops them, then
        :meth:`abandon_replace` marks their files failed."""
        return self._runner.run(lambda repo: repo.stale_shadow_tables(table),
                                what=f"find interrupted replaces of {table!r}")

    def abandon_replace(self, shadow: str, reason: str) -> int:
        """A replace that will not be swapped in: the files loaded into ``shadow`` become
        ``failed`` (their written rows now ``rows_rolled_back``), with ``reason``; returns how
        many."""
        return self._runner.run(
            lambda repo: claims.abandon_in(repo.executor(), shadow, reason),
            what="abandon a replace",
        )

    # --- table schemas -----------------------------------------------------------------------

    def table_schema(self, table: str) -> StoredSchema | None:
        """The table's current schema version (``tallyclerk_schemas``), or None."""
        return self._runner.run(lambda repo: repo.latest_schema(table), what="read a schema")

    def table_schema_history(self, table: str) -> list[StoredSchema]:
        """Every stored version of the table's schema, oldest first."""
        return self._runner.run(
            lambda repo: repo.schema_history(table), what="read schema history"
        )

    def schema_version_in(self, ex: SqlExecutor, table: str, *, serialize: bool = True) -> int:
        """In the caller's data transaction: the table's highest schema version (0: none);
        with ``serialize`` (a transaction that records a version) on PostgreSQL it also
        serializes the transactions that record versions."""
        return schemas.current_version_in(ex, table, serialize=serialize)

    def record_schema_in(self, ex: SqlExecutor, schema: StoredSchema) -> None:
        """In the caller's data transaction: store a new version of a table's schema."""
        schemas.record_in(ex, schema)

    def record_schema(self, schema: StoredSchema) -> None:
        """In a transaction of its own (data in another database): store a new version."""

        def work(repo: Repository) -> None:
            ex = repo.executor()
            # the same version recorded by another worker of the load (the parent's inferred
            # schema, a text schema of the same header): already there, nothing to add; a
            # different one still breaks the unique index
            if schemas.current_version_in(ex, schema.table) >= schema.version and any(
                s.version == schema.version and s.fingerprint == schema.fingerprint
                for s in repo.schema_history(schema.table)
            ):
                return
            schemas.record_in(ex, schema)

        self._runner.run(work, what=f"record schema version {schema.version} of "
                                    f"{schema.table!r}")


if TYPE_CHECKING:

    def _both_are_runners(core: TransactionRunner, lite: LiteTransactionRunner
                          ) -> tuple[RepositoryRunner, RepositoryRunner]:
        return core, lite  # mypy (strict, in CI) checks both against the protocol
