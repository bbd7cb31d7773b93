"""One file's stream: reader -> validation -> bounded queue -> writer thread.

The source's record batches go through the validate and transform hooks in this (the
reader) thread and into a :class:`tallyclerk.WriteBehindQueue` (a few batches deep, so memory
stays bounded) whose writer thread writes them with ``FileWrite.write`` -- reading and
validating overlap with writing. When the audit store is the sink's database, each batch's
rejects are written by the writer thread in the file's transaction.

The queue is a bounded channel here, and is configured as one (issue 12 item 4): its own
retry and dead-letter semantics are the audit event log's (:mod:`tallyclerk.audit.eventlog`),
not this stream's, so they are off:

* bounded by ``_QUEUE_ITEMS`` record batches and ``_QUEUE_BYTES``: the reader waits for room
  (polling its stop checks), so memory stays bounded while the sink is slow; ``max_batch=1``,
  no linger: each record batch is written as soon as the writer is free;
* ``max_retries=0``: a failed write leaves the file's transaction unusable, so the unit of
  retry is the whole file (the file policy rolls the attempt back, settles its tally
  ``retried`` and loads the file again), never a record batch;
* no dead letters: a batch not written must fail its file, not be set aside while the file
  commits (rows lost). ``drain`` never raises: it hands the error to the reader thread
  (``st.writer_error``), which fails and rolls back the file with one log line; the
  ``dead_letter`` callback is only the backstop for what the queue itself gives up on (a sink
  call that panicked, the interpreter exiting, ``close`` running out of time), and fails the
  file the same way;
* close: ``flush`` before the commit (every batch written); on failure ``st.abandon`` makes
  ``drain`` skip what is still queued and ``close(timeout=1)`` stops the writer, while a
  write already in flight holds ``st.writing``, which the rollback takes first;
  ``flush_at_exit=False``: at interpreter exit an uncommitted file is lost anyway.

The stop and timeout checks run between record batches, while waiting on the source
(:mod:`tallyclerk.pipeline.reader`: a source that stops producing cannot hold the file) and
while waiting on the queue; a failed check (or the writer's error) ends the stream with an
exception and the caller rolls the file back.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tallyclerk import TableSchema, WriteBehindQueue, faults, modes
from tallyclerk._core import KeyCheck, RecordBatch
from tallyclerk.audit import FileClaim
from tallyclerk.errors import FlushTimeout, QueueFull, SinkError
from tallyclerk.pipeline.filestate import FileState
from tallyclerk.pipeline.reader import BatchReader
from tallyclerk.pipeline.rejects import KEEP_REJECTS, reject_row
from tallyclerk.pipeline.run import BatchRun, sensitive_columns
from tallyclerk.protocols import BatchContext, FileWrite, Source, SqlExecutor

if TYPE_CHECKING:
    from tallyclerk.audit.types import RejectRow

__all__ = ["stream_file"]

_POLL_S = 0.05


def stream_file(
    run: BatchRun,
    source: Source,
    fw: FileWrite,
    claim: FileClaim,
    ctx: BatchContext,
    st: FileState,
    shared: SqlExecutor | None,
) -> None:
    """Read, check and write every record batch of ``source``; counts into ``st.tally``."""
    audit, sizer, hook = run.audit, run.sizer, run.hook
    keys = _key_check(run.mode, ctx.schema)

    def check() -> None:
        if st.writer_error is not None:
            raise st.writer_error
        run.raise_if_stopped()

    def write(batch: RecordBatch, rejects: list[RejectRow]) -> None:
        """One record batch, on the writer thread."""
        if st.writer_error is not None:
            return
        with st.writing:
            if st.abandon:
                return
            started = time.perf_counter()
            try:
                known = len(rejects)
                written = fw.write(batch)
                elapsed = time.perf_counter() - started
                late = (_late_rejects(batch, rejects)
                        if batch.num_rejected > known else [])
                if late:
                    _count_rejects(run, st, late, ctx, shared)
                    rejects = [*rejects, *late]
                if rejects and shared is not None:
                    audit.ledger.add_rejects_in(shared, claim, rejects)
                faults.point("batch-written")
            except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                # handed to the reader thread, which fails the file with it (logged
                # once, there); not through the queue's dead-letter path, which would
                # log it again with a traceback on the user's terminal
                st.writer_error = exc
                return
        sizer.observe(batch.num_rows, elapsed, batch.bytes)
        st.tally.add(rows_written=written)
        hook.tallyclerk_rows_written(context=ctx, rows=written, seconds=elapsed)

    queue = run.writers.take()
    reader = BatchReader(source, check, _POLL_S, run.readers)
    done = False
    try:
        # the sensitive fields of the schema the file is checked against (a table's
        # remembered schema keeps its "sensitive": true fields)
        sensitive = (run.sensitive if st.plan is None
                     else sensitive_columns(st.plan.schema, run.settings))
        for batch in reader:
            check()
            if sensitive:
                batch.set_sensitive(sensitive)
            hook.tallyclerk_validate_batch(batch=batch, context=ctx)
            hook.tallyclerk_transform_batch(batch=batch, context=ctx)
            if keys is not None:
                keys.check(batch)
            rejects = [reject_row(r) for r in batch.rejects()] if batch.num_rejected else []
            _count_read(st, batch.num_rows, source)
            if rejects:
                _count_rejects(run, st, rejects, ctx, shared)
            _put(queue, (st, functools.partial(write, batch, rejects)), batch.bytes, check)
            run.sample(queue)
            with contextlib.suppress(AttributeError):  # a source may keep its own size
                source.batch_rows = sizer.rows
            run.acc.touch()
            run.tick()
        _count_read(st, 0, source)
        _flush(queue, check)
        check()
        done = True
    finally:
        reader.close()
        if not done:
            st.abandon = True  # the pending batches are not written: the file rolls back
            run.writers.close()  # the next file gets a new queue and writer thread
    valid = st.rows_read - st.rows_rejected
    if st.rows_written != valid:
        raise SinkError(f"the sink wrote {st.rows_written} of {valid} valid rows")


def _count_read(st: FileState, rows: int, source: Source) -> None:
    """Count rows read and the source's bytes read since the last count."""
    grown = max(0, int(source.bytes_read) - st.tally.bytes_read)
    if rows or grown:
        st.tally.add(rows_read=rows, bytes_read=grown)


def _count_rejects(run: BatchRun, st: FileState, rejects: list[RejectRow], ctx: BatchContext,
                   shared: SqlExecutor | None) -> None:
    """Count and keep rejected rows (validation's, in the reader thread; a sink's, found
    while writing, in the writer thread), tell the hooks, apply ``--on-error``."""
    with st.counting:
        st.tally.add(rows_rejected=len(rejects))
        if st.first_error_line is None:
            st.first_error_line = rejects[0].line
        if shared is None or len(st.rejects) < KEEP_REJECTS:
            st.rejects.extend(rejects)
        rows_rejected = st.rows_rejected
    run.hook.tallyclerk_rows_rejected(context=ctx, rejects=rejects)
    run.policy.check(rows_rejected, rejects[0])


def _key_check(mode: modes.WriteMode, schema: TableSchema | None) -> KeyCheck | None:
    """The file's uniqueness check (in Rust): the schema's ``primaryKey`` and ``unique``
    fields; under ``--mode merge`` the merge key instead of the schema's primary key."""
    specs = [(list(cols), rule) for cols, rule in schema.keys] if schema is not None else []
    if mode.merge:
        key = list(mode.primary_key)
        specs = [(key, modes.PRIMARY_KEY_RULE)] + [
            s for s in specs if s[1] == modes.UNIQUE_RULE and s[0] != key]
    return KeyCheck(specs) if specs else None


def _late_rejects(batch: RecordBatch, earlier: Sequence[RejectRow]) -> list[RejectRow]:
    """The rows of ``batch`` the sink rejected while writing it (not among ``earlier``)."""
    seen = {r.record_number for r in earlier}
    return [reject_row(r) for r in batch.rejects() if r.record_number not in seen]


def _put(queue: WriteBehindQueue, item: Any, size: int, check: Callable[[], None]) -> None:
    while True:
        try:
            queue.put(item, size=max(1, size), timeout=_POLL_S)
            return
        except QueueFull:
            check()


def _flush(queue: WriteBehindQueue, check: Callable[[], None]) -> None:
    while True:
        try:
            queue.flush(timeout=_POLL_S)
            return
        except FlushTimeout:
            check()
