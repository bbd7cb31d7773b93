"""The write-behind queue between a batch's loading thread and its sink writer thread.

Each item is one record batch of the file being loaded with the function that writes it
(``FileWrite.write``, its rejects, the ``tallyclerk_rows_written`` hook, on the writer
thread). The files of a batch take turns on one queue and one writer thread (issue 16.4:
starting a writer thread for each small file cost more than writing it); the loading thread
flushes the queue at each file's end, so a file's batches are written before its
transaction commits and the next file's come after them. A file that ends any other way
(failed, stopped, timed out) closes the queue as before (its pending batches are not
written) and the next file gets a new one. :meth:`SinkQueues.close` closes the last one when
the batch ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tallyclerk import WriteBehindQueue
from tallyclerk.errors import FlushTimeout
from tallyclerk.pipeline.filestate import FileState

__all__ = ["SinkQueues", "Write"]

# batches between the reader and the writer: bounds memory with the batch size's byte cap.
# Two (was three): the writer is the slower side of a CSV load into SQLite, so the queue
# stays full and one batch fewer in it is ~1 MB less peak RSS at the same speed
# (benches/README.md, "Whole-process CSV, round two").
_QUEUE_ITEMS = 2
_QUEUE_BYTES = 64 * 1024 * 1024

# one queued record batch: the file's state, and the call that writes it
Write = tuple[FileState, Callable[[], None]]


def _drain(items: list[Write]) -> None:
    for _st, write in items:
        write()


def _dead_letter(items: list[Any], exc: BaseException) -> None:
    for st, _write in items:
        if st.writer_error is None:
            st.writer_error = exc


class SinkQueues:
    """The batch's current write-behind queue (made on first use)."""

    def __init__(self, retired: Callable[[WriteBehindQueue], None]) -> None:
        self._queue: WriteBehindQueue | None = None
        self._retired = retired  # counts a closed queue's figures in the batch's totals

    @property
    def current(self) -> WriteBehindQueue | None:
        """The open queue, if any (its figures are not yet in the batch's totals)."""
        return self._queue

    def take(self) -> WriteBehindQueue:
        if self._queue is None:
            self._queue = WriteBehindQueue(
                _drain,
                max_items=_QUEUE_ITEMS,
                max_bytes=_QUEUE_BYTES,
                max_batch=1,
                linger_ms=0.0,
                max_retries=0,
                dead_letter=_dead_letter,
                flush_at_exit=False,
                name="tallyclerk-sink",
            )
        return self._queue

    def close(self) -> None:
        """Close the current queue (a file that did not end loaded, or the batch's end): its
        pending batches are not written (their file rolls back); waits at most a second for
        a write in progress."""
        queue, self._queue = self._queue, None
        if queue is None:
            return
        with contextlib.suppress(FlushTimeout):
            queue.close(timeout=1.0)
        self._retired(queue)
