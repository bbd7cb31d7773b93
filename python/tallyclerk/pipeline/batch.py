"""The load pipeline's batch loop: start a batch, load each path through the file policy,
finish the batch and merge the report.

Layout of :mod:`tallyclerk.pipeline` (data flows down):

* ``batch`` (this module): :class:`Pipeline`, one batch per :meth:`Pipeline.run`;
* ``run``: the batch's shared state and its stop/timeout checks, progress, events, counts;
* ``policy``: claims, retries, circuit breaker, each file's outcome;
* ``attempt``: one attempt at one file, one transaction;
* ``stream``: one file's reader -> validation -> bounded queue -> writer thread;
* ``rejects``, ``replace``, ``entries``, ``filestate``, ``stats``, ``stop``:
  the reject policy, ``--mode replace``, the report entries of
  unclaimed files, one attempt's state, the pipeline-stats hook, the stop token.

Counting: the batch's :class:`~tallyclerk.BatchAccumulator` (Rust) is the one place files and
rows are counted. Each attempt at a file counts into its ``FileTally`` (live in the batch until
the attempt settles loaded, failed or retried); progress callbacks, the report's totals, the
batch row and the Prometheus metrics all read its snapshots.

Stopping: :class:`StopToken` (set by the CLI's SIGINT/SIGTERM handlers) and the watchdog's
batch timeout are checked between record batches and while waiting on the queue; the current
file is rolled back and marked failed (``interrupted`` / ``batch timed out``), and the batch
ends ``cancelled`` / ``timed_out``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from tallyclerk import TableSchema, modes
from tallyclerk._core import MetricsSnapshot
from tallyclerk.audit import AuditService
from tallyclerk.batch_size import AdaptiveBatchSize, FixedBatchSize
from tallyclerk.contract import COLUMN_MODES, check_given
from tallyclerk.errors import ConfigError
from tallyclerk.logs import bind, current_context
from tallyclerk.names import check_table_name
from tallyclerk.pipeline.entries import merge_unclaimed, message
from tallyclerk.pipeline.policy import FilePolicy
from tallyclerk.pipeline.rejects import RejectPolicy
from tallyclerk.pipeline.replace import Replace, check_mode
from tallyclerk.pipeline.run import BatchRun, options_for_audit, sensitive_columns
from tallyclerk.pipeline.stats import PipelineStats
from tallyclerk.pipeline.stop import StopToken
from tallyclerk.protocols import Sink
from tallyclerk.retry import Backoff, CircuitBreaker
from tallyclerk.settings import Settings
from tallyclerk.settle import DATA_TARGET, data_target, settle_before_load

if TYPE_CHECKING:
    from tallyclerk.progress import LoadProgress

__all__ = ["Pipeline", "with_totals"]

log = logging.getLogger("tallyclerk.pipeline")


def with_totals(report: dict[str, Any], snap: MetricsSnapshot) -> dict[str, Any]:
    """The batch report with its totals from the accumulator's final snapshot (the one count
    of rows; its files' entries are the manifest's, which their attempts' tallies wrote)."""
    if not report:
        return report
    out = dict(report)
    out.update(rows_read=snap.rows_read, rows_written=snap.rows_written,
               rows_rejected=snap.rows_rejected, rows_rolled_back=snap.rows_rolled_back)
    return out


class Pipeline:
    """Loads files into one table through one sink, recording everything in the audit store.

    :param settings: a :class:`tallyclerk.settings.Settings`.
    :param pm: the plugin manager (loaders, validators, transforms, event hooks).
    :param audit: the audit service.
    :param sink: the opened sink (``tallyclerk_open_sink``'s result).
    :param into_url: the sink's URL (to learn whether the audit store shares its database).
    :param stop: a stop token the caller sets to interrupt the load.
    :param progress: called with a :class:`~tallyclerk.report.LoadProgress` after each
        record batch and each file (on the reader thread).
    """

    def __init__(
        self,
        settings: Settings,
        pm: pluggy.PluginManager,
        audit: AuditService,
        sink: Sink,
        *,
        into_url: str,
        stop: StopToken | None = None,
        progress: Callable[[LoadProgress], None] | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.pm = pm
        self.hook = pm.hook
        self.audit = audit
        self.sink = sink
        self.stop = stop or StopToken()
        self.progress = progress
        self._shared = audit.shares_database_with(into_url)
        # another database: its files get a load marker, and uncertain ones are settled first
        self._into_url = into_url
        self._data_target = None if self._shared else data_target(into_url)
        self._wait = sleep or self.stop.wait
        self.breaker = CircuitBreaker(
            threshold=settings.breaker_threshold,
            cooldown_s=settings.breaker_cooldown_s,
        )
        self.backoff = Backoff(
            initial_ms=settings.backoff_initial_ms,
            max_ms=settings.backoff_max_ms,
            max_retries=settings.max_retries,
        )
        rows = settings.batch_rows
        self.sizer: AdaptiveBatchSize | FixedBatchSize = (
            FixedBatchSize(rows) if rows > 0 else AdaptiveBatchSize()
        )

    def run(
        self,
        paths: Sequence[str],
        table: str,
        schema: TableSchema | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        on_error: str = "continue",
        max_rejects: int | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Load ``paths`` into ``table``; returns the batch report (the CLI's ``--json``)."""
        check_table_name(table)
        policy = RejectPolicy(on_error, max_rejects)
        opts: dict[str, Any] = dict(options or {})
        opts.setdefault("settings", self.settings)
        columns = str(opts.get("columns") or self.settings.columns)
        if columns not in COLUMN_MODES:
            raise ConfigError(
                f"--columns must be one of {', '.join(COLUMN_MODES)}, got {columns!r}")
        opts["columns"] = columns
        # a --schema that conflicts with the table's remembered one: exit 2 before any file
        revise = bool(opts.get("revise_schema"))
        stored = self.audit.ledger.table_schema(table)
        check_given(table, stored, schema, columns, str(opts.get("schema_path") or ""),
                    revise=revise)
        opts["schema"] = schema
        mode = check_mode(self.sink, modes.resolve(opts, schema))

        audit_options = options_for_audit(opts)
        audit_options.update(on_error=on_error, max_rejects=max_rejects, force=force)
        if self._data_target is not None:
            audit_options[DATA_TARGET] = self._data_target
        batch_id = self.audit.start_batch(table, audit_options)
        # one correlation id per run: the caller's (CLI --correlation-id) or a new one
        cid = str(current_context().get("correlation_id") or uuid.uuid4().hex)
        run = BatchRun(
            settings=self.settings, hook=self.hook, audit=self.audit, sink=self.sink,
            stop=self.stop, wait=self._wait, shared=self._shared, progress=self.progress,
            sizer=self.sizer, stats=PipelineStats(self.hook, self.audit, self.breaker),
            batch_id=batch_id, table=table,
            # replace: every file loads into a shadow table, swapped in at the end
            target=modes.shadow_table(batch_id) if mode.replace else table,
            schema=schema, options=opts, columns=columns, revise=revise, policy=policy,
            force=force,
            # masked in every reject's raw text and reason, by the Rust batch that makes them
            sensitive=sensitive_columns(schema, self.settings),
            mode=mode, acc=self.audit.accumulator(batch_id), correlation_id=cid,
            files_total=len(paths), events=self.settings.audit_events,
            data_target=self._data_target,
        )
        run.remember_schema(stored)  # read before the batch started: checked by each file
        with bind(batch_id=batch_id, correlation_id=cid):
            return self._run(run, paths)

    def _run(self, run: BatchRun, paths: Sequence[str]) -> dict[str, Any]:
        files = FilePolicy(run, self.breaker, self.backoff)
        replace = Replace(run) if run.mode.replace else None
        unclaimed: list[dict[str, Any]] = []
        status: str | None = None
        error: BaseException | None = None
        log.info("batch %s: loading %d file(s) into %r", run.batch_id, len(paths), run.table)
        run.record("batch_started", batch_id=run.batch_id,
                   payload={"table": run.table, "files": len(paths)})
        self.hook.tallyclerk_batch_start(batch_id=run.batch_id, table=run.table,
                                         paths=list(paths))
        try:
            if run.data_target is not None:
                settle_before_load(self.audit, self._into_url, run.table, run.batch_id)
            if replace is not None:
                replace.drop_stale_shadows()
            ahead_at = 0  # the next index to skip ahead from
            for index, path in enumerate(paths):
                why = run.why_stop()
                if why is not None:
                    status = run.stop_status()
                    files.unstarted(paths[index:], why, unclaimed)
                    break
                ahead_at = files.skip_ahead(paths, index, ahead_at)
                outcome = files.load_path(path, unclaimed)
                run.tick()
                run.sample(None)
                if outcome.stop_batch:
                    status = run.stop_status()
                    why = run.why_stop() or f"--on-error {run.policy.on_error}"
                    files.unstarted(paths[index + 1 :], why, unclaimed)
                    break
            if replace is not None:
                replace.finish(status, unclaimed)
        except BaseException as exc:
            error = exc
            if replace is not None:
                replace.abandon(f"{type(exc).__name__}: {message(exc)}")
            raise
        finally:
            run.readers.close()
            run.writers.close()
            if self.stop.stopped:
                status = "cancelled"
            kind = run.timed_out()
            if kind is not None and status != "cancelled":
                status = "timed_out"
            if kind is not None:
                run.fire_timeout(kind, None)  # between files: no file was in flight
            run.sample(None)  # the final counts, for the metrics
            report = self.audit.finish_batch(run.batch_id, error=error, status=status)
            report = with_totals(merge_unclaimed(report, unclaimed, paths), run.acc.snapshot())
            run.record("batch_finished", batch_id=run.batch_id,
                       payload={"status": report.get("status")})
            self.hook.tallyclerk_batch_finish(batch_id=run.batch_id, report=report)
        return report
