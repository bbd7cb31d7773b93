"""Reads a source's record batches on a thread of their own, one batch on request.

A source may stop producing (a pipe whose writer went quiet, a plugin waiting on a network):
the loading thread must still see a stop request or the watchdog's timeout within a poll
interval, roll the file back and go on. So ``next(source)`` runs on a ``tallyclerk-reader``
thread and the loading thread waits for its answer in short slices, running ``check``
between them.

One batch is read per request, never ahead: while the loading thread works on a batch the
reader thread is idle, so the source is never used from two threads at once (``bytes_read``
and ``batch_rows`` are read and set between batches, as before). A reader still blocked when
the file is abandoned is left to finish on its own (a daemon thread; it exits as soon as the
source returns).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tallyclerk._core import RecordBatch
from tallyclerk.protocols import Source

__all__ = ["BatchReader"]

_END = object()


class BatchReader:
    """``for batch in BatchReader(source, check, poll_s): ...``; ``close()`` when done."""

    def __init__(self, source: Source, check: Callable[[], None], poll_s: float) -> None:
        self._check = check
        self._poll_s = poll_s
        self._requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
        self._pending = False  # a request the reader thread has not answered yet
        it = iter(source)
        ctx = contextvars.copy_context()  # the loader's log context (batch and file ids)
        self._thread = threading.Thread(target=ctx.run, args=(self._serve, it),
                                        name="tallyclerk-reader", daemon=True)
        self._thread.start()

    def _serve(self, it: Iterator[RecordBatch]) -> None:
        while self._requests.get():
            try:
                batch: Any = next(it, _END)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the loading thread
                self._answers.put((None, exc))
                return
            self._answers.put((batch, None))
            if batch is _END:
                return

    def __iter__(self) -> Iterator[RecordBatch]:
        while True:
            self._requests.put(True)
            self._pending = True
            while True:
                try:
                    batch, exc = self._answers.get(timeout=self._poll_s)
                    break
                except queue.Empty:
                    self._check()
            self._pending = False
            if exc is not None:
                raise exc
            if batch is _END:
                return
            yield batch

    def close(self) -> None:
        """Stop the reader thread: joined when idle; a thread still blocked in the source
        ends when its read returns (its answer is dropped)."""
        self._requests.put(False)
        if not self._pending:
            self._thread.join()
