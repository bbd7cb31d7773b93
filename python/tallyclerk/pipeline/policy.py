"""The file policy: claim each path, retry a file after transient failures, keep the circuit
breaker, and record each file's outcome (manifest, accumulator, events, hooks).

For each path:

1. A missing path, a directory or an unreadable file fails (the other files still load); an
   object URL is first copied to a private spool (:mod:`tallyclerk.objstore`).
2. ``audit.claim_file``: a file whose content is already loaded into the table is *skipped*
   (naming the earlier batch) unless ``force``.
3. Attempts (:func:`tallyclerk.pipeline.attempt.attempt`): a transient sink or audit error
   retries the whole file with exponential backoff and jitter (``settings.max_retries``); a
   circuit breaker opens after ``settings.breaker_threshold`` consecutive failures and fails
   the following files fast until ``settings.breaker_cooldown_s`` has passed.
4. When the audit store is not the sink's database the data has committed first and
   ``audit.finish_file`` records it (a crash in between is repaired by the next run: the
   file's claim is found dead and its rows are deleted before it is loaded again).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tallyclerk import faults
from tallyclerk._core import FileEvent
from tallyclerk.audit import FileClaim
from tallyclerk.errors import (
    BatchCancelled,
    BatchTimedOut,
    ConfigError,
    Interrupted,
    LeaseLost,
    RejectLimit,
    SinkError,
    SourceError,
    TallyclerkError,
)
from tallyclerk.logs import bind
from tallyclerk.pipeline.attempt import attempt
from tallyclerk.pipeline.entries import failed_entry, message, not_attempted, unreadable
from tallyclerk.pipeline.filestate import FileState
from tallyclerk.pipeline.rejects import KEEP_REJECTS
from tallyclerk.pipeline.run import BatchRun
from tallyclerk.protocols import BatchContext
from tallyclerk.remote import FetchStopped, is_remote
from tallyclerk.retry import Backoff, CircuitBreaker, CircuitOpen, is_transient

if TYPE_CHECKING:
    from tallyclerk.audit.types import FileSkip

__all__ = ["SKIP_AHEAD", "FilePolicy", "Outcome"]

log = logging.getLogger("tallyclerk.pipeline")

SKIP_AHEAD = 64  # files decided (skips, new claims) in one audit transaction (issue 16.4)


class Outcome:
    __slots__ = ("status", "stop_batch")

    def __init__(self, status: str, stop_batch: bool = False) -> None:
        self.status = status  # loaded | skipped | failed
        self.stop_batch = stop_batch


class FilePolicy:
    """Loads one path at a time for a batch (``run``), with the pipeline's breaker and
    backoff (they outlive the batch: a watcher keeps one breaker over its batches)."""

    def __init__(self, run: BatchRun, breaker: CircuitBreaker, backoff: Backoff) -> None:
        self.run = run
        self.breaker = breaker
        self.backoff = backoff

    def skipped(self, path: str, claim: FileSkip) -> Outcome:
        run = self.run
        log.info("file %s skipped: %s", path, claim.reason)
        run.count(FileEvent.SKIPPED)
        run.hook.tallyclerk_file_skipped(
            context=run.context(path, claim.file_id, 0), skip=claim)
        run.record("file_skipped", batch_id=run.batch_id, file_id=claim.file_id,
                   payload={"path": path, "reason": claim.reason})
        return Outcome("skipped")

    def unstarted(self, rest: Sequence[str], why: str, unclaimed: list[dict[str, Any]]) -> None:
        """The files a stopping batch does not reach: not attempted, except those
        ``skip_ahead`` already skipped (their rows are committed: reported as skipped)."""
        for p in rest:
            skip = self.run.audit.ledger.skipped_ahead(self.run.batch_id, p)
            if skip is None:
                unclaimed.append(not_attempted(p, why))
            else:
                self.skipped(p, skip)

    def skip_ahead(self, paths: Sequence[str], index: int, ahead_at: int) -> int:
        """Decide the skips of up to ``SKIP_AHEAD`` files from ``index`` in one audit
        transaction (issue 16.4); returns the next index to skip ahead from."""
        run = self.run
        if index < ahead_at or run.force or run.mode.replace:
            return ahead_at
        local = list(itertools.takewhile(lambda p: not is_remote(p),
                                         paths[index:index + SKIP_AHEAD]))
        # claims too when the audit store is the target's SQLite file (the argument:
        # FileLedger.skip_ahead); elsewhere each new file is claimed at its turn
        claim_new = run.shared and run.audit.dialect == "sqlite"
        n = run.audit.ledger.skip_ahead(run.batch_id, local, run.target, claim_new=claim_new)
        # the whole chunk decided: on from its end; cut short by a file claim_file decides:
        # right after that file; none: (skips only) a chunk later, so that a load of new
        # files pays one lookup per chunk, or (claims too) right after the first file
        if n == len(local) and n:
            return index + n
        return index + (n + 1 if n or claim_new else SKIP_AHEAD)

    def load_path(self, path: str, unclaimed: list[dict[str, Any]]) -> Outcome:
        run = self.run
        claim: FileClaim | FileSkip
        with contextlib.ExitStack() as stack:
            try:
                if is_remote(path):
                    # copied to a private spool first (see tallyclerk.objstore): claimed by the
                    # spool's fingerprint, loaded from it, removed when the file is done
                    from tallyclerk import objstore

                    fetched = stack.enter_context(objstore.fetch(
                        path, run.settings, should_stop=run.why_stop, sleep=run.wait))
                    claim = run.audit.ledger.claim_file(run.batch_id, path, run.target,
                                                 force=run.force, fetched=fetched)
                    run.local[path] = fetched.local
                    stack.callback(run.local.pop, path, None)
                else:
                    problem = unreadable(path)
                    if problem is not None:
                        raise SourceError(f"{path}: {problem}", path=path)
                    claim = run.audit.ledger.claim_file(run.batch_id, path, run.target,
                                                 force=run.force)
            except (BatchCancelled, FetchStopped):
                why = run.why_stop() or "batch cancelled"
                unclaimed.append(not_attempted(path, why))
                return Outcome("failed", stop_batch=True)
            except SourceError as exc:
                log.error("file %s failed (%s): %s", path, type(exc).__name__, message(exc),
                          extra={"error_class": type(exc).__name__})
                unclaimed.append(failed_entry(path, exc))
                run.count(FileEvent.FAILED)
                run.record("file_failed", batch_id=run.batch_id,
                           payload={"path": path, "error": message(exc)})
                return Outcome("failed", stop_batch=run.policy.aborts)
            if not isinstance(claim, FileClaim):  # a FileSkip
                return self.skipped(path, claim)
            with bind(file_id=claim.file_id):
                return self._load_claimed(claim)
        raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow

    def _load_claimed(self, claim: FileClaim) -> Outcome:
        run = self.run
        path = claim.path
        run.count(FileEvent.STARTED)
        tries = 0
        last: BaseException | None = None  # the transient failure this file is retrying after
        while True:
            tries += 1
            st = run.begin_file()
            ctx = run.context(path, claim.file_id, tries)
            try:
                self.breaker.check()
                run.record("file_started", batch_id=run.batch_id, file_id=claim.file_id,
                           payload={"path": path, "attempt": tries})
                run.sample(None)  # the attempt, counted by the accumulator, in the metrics
                run.hook.tallyclerk_file_start(context=ctx)
                attempt(run, claim, st, ctx)
            except ConfigError as exc:
                # a configuration problem (bad option for a loader): fail, stop, exit 2
                self._fail(claim, st, exc, ctx)
                raise
            except (TallyclerkError, OSError) as exc:
                if is_transient(exc):
                    self.breaker.record_failure()
                    if self.backoff.should_retry(tries) and not run.stop.stopped:
                        delay = self.backoff.delay_s(tries)
                        log.warning("file %s: transient failure (%s); retry %d in %.2f s",
                                    path, message(exc), tries, delay)
                        run.stats.file_retries += 1
                        last = exc
                        if not run.wait(delay):  # True: a stop request ended the wait
                            run.settle(st, "retried")  # rolled back; read again next
                            continue
                        exc = Interrupted(run.stop.reason or "interrupted")
                elif isinstance(exc, CircuitOpen) and last is not None:
                    # the breaker opened while this file was retrying: keep the cause in sight
                    exc = CircuitOpen(f"{exc}; last error: {message(last)}")
                elif not isinstance(exc, (CircuitOpen, RejectLimit, Interrupted, BatchTimedOut)):
                    if isinstance(exc, SinkError):
                        self.breaker.record_failure()
                return self._fail(claim, st, exc, ctx)
            except BaseException as exc:
                # a bug in a plugin or in tallyclerk: record the file as failed, then let the
                # exception reach the CLI (exit 70 with one line, the traceback in the log)
                self._fail(claim, st, exc, ctx)
                raise
            self.breaker.record_success()
            return self._loaded(claim, st, ctx)

    def _loaded(self, claim: FileClaim, st: FileState, ctx: BatchContext) -> Outcome:
        run = self.run
        result = st.result()
        if not run.shared:
            faults.point("after-data-commit-before-manifest")
            if st.plan is not None and st.plan.new_version is not None:
                run.audit.ledger.record_schema(st.plan.new_version)
            run.audit.ledger.finish_file(claim, "loaded", result, st.rejects)
        faults.point("after-commit-before-event")
        run.settle(st, "loaded")
        run.record("file_loaded", batch_id=run.batch_id, file_id=claim.file_id,
                   payload={"path": claim.path, "rows_read": st.rows_read,
                            "rows_written": st.rows_written,
                            "rows_rejected": st.rows_rejected,
                            "rows_rolled_back": 0})
        log.info("file %s loaded: %d read, %d written, %d rejected", claim.path,
                 st.rows_read, st.rows_written, st.rows_rejected)
        run.hook.tallyclerk_file_finish(context=ctx, status="loaded", result=result)
        return Outcome("loaded")

    def _fail(
        self, claim: FileClaim, st: FileState, exc: BaseException, ctx: BatchContext
    ) -> Outcome:
        run = self.run
        run.any_failed = True
        if isinstance(exc, BatchTimedOut):
            run.fire_timeout(run.timed_out() or "operation", ctx)
        result = st.result(exc)
        local = run.local.get(claim.path)
        if local is not None and result.error:  # name the object, not its temporary copy
            result = dataclasses.replace(result, error=result.error.replace(local, claim.path))
        # a ConfigError ends the command with exit 2 and that one message: log it quietly
        level = logging.INFO if isinstance(exc, ConfigError) else logging.ERROR
        log.log(level, "file %s failed (%s): %s", claim.path, type(exc).__name__, result.error,
                extra={"error_class": type(exc).__name__})
        try:
            run.audit.ledger.finish_file(claim, "failed", result, st.rejects[:KEEP_REJECTS])
        except LeaseLost:
            log.error("file %s: claim taken over by another worker", claim.path)
        run.settle(st, "failed")
        run.record("file_failed", batch_id=run.batch_id, file_id=claim.file_id,
                   payload={"path": claim.path, "error": result.error,
                            "error_class": result.error_class,
                            "rows_read": result.rows_read,
                            "rows_rejected": result.rows_rejected,
                            "rows_rolled_back": result.rows_rolled_back})
        run.hook.tallyclerk_file_finish(context=ctx, status="failed", result=result)
        stop = (
            isinstance(exc, (Interrupted, BatchTimedOut))
            or (isinstance(exc, RejectLimit) and exc.stop_batch)
            or run.policy.aborts
        )
        return Outcome("failed", stop_batch=stop)
