"""Reads a source's record batches on a thread of their own, one batch on request.

A source may stop producing (a pipe whose writer went quiet, a plugin waiting on a network):
the loading thread must still see a stop request or the watchdog's timeout within a poll
interval, roll the file back and go on. So ``next(source)`` runs on a ``tallyclerk-reader``
thread and the loading thread waits for its answer in short slices, running ``check``
between them.

One batch is read per request, never ahead: while the loading thread works on a batch the
reader thread is idle, so the source is never used from two threads at once (``bytes_read``
and ``batch_rows`` are read and set between batches, as before). Each read runs in the
loading thread's context (its log context: batch and file ids).

The reader threads of a batch are kept in a :class:`ReaderPool` and serve its files in turn
(issue 16.4: starting a thread for each small file cost more than reading it). A reader
still blocked when its file is abandoned is not given another file: it is left to finish on
its own (a daemon thread; it exits as soon as the source returns), and the next file gets a
new one. :meth:`ReaderPool.close` ends the idle ones when the batch ends.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tallyclerk._core import RecordBatch
from tallyclerk.protocols import Source

__all__ = ["BatchReader", "ReaderPool"]

_END = object()

_Answer = tuple[Any, BaseException | None]


class _Reader:
    """One ``tallyclerk-reader`` thread: reads ``next(it)`` for each request until told to
    stop (a None request)."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue[tuple[Iterator[RecordBatch],
                                               contextvars.Context] | None] = (
            queue.SimpleQueue())
        self.answers: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="tallyclerk-reader",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            request = self.requests.get()
            if request is None:
                return
            it, ctx = request
            try:
                batch: Any = ctx.run(next, it, _END)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the loading thread
                self.answers.put((None, exc))
                continue
            self.answers.put((batch, None))

    def stop(self) -> None:
        """Exit after the request in progress, if any (its answer is dropped)."""
        self.requests.put(None)


class ReaderPool:
    """The idle reader threads of one batch."""

    def __init__(self) -> None:
        self._idle: list[_Reader] = []
        self._lock = threading.Lock()

    def take(self) -> _Reader:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Reader()

    def give_back(self, reader: _Reader) -> None:
        with self._lock:
            self._idle.append(reader)

    def close(self) -> None:
        """End the idle readers (joined: each is waiting for a request)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for reader in idle:
            reader.stop()
        for reader in idle:
            reader.thread.join()


class BatchReader:
    """``for batch in BatchReader(source, check, poll_s, pool): ...``; ``close()`` when done."""

    def __init__(self, source: Source, check: Callable[[], None], poll_s: float,
                 pool: ReaderPool) -> None:
        self._check = check
        self._poll_s = poll_s
        self._pool = pool
        self._pending = False  # a request the reader thread has not answered yet
        self._it = iter(source)
        self._reader: _Reader | None = pool.take()

    def __iter__(self) -> Iterator[RecordBatch]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("BatchReader used after close()")
        ctx = contextvars.copy_context()  # the loader's log context (batch and file ids)
        while True:
            reader.requests.put((self._it, ctx))
            self._pending = True
            while True:
                try:
                    batch, exc = reader.answers.get(timeout=self._poll_s)
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
        """Give the reader thread back to the pool when idle; a thread still blocked in the
        source is told to exit when its read returns (its answer is dropped)."""
        reader, self._reader = self._reader, None
        if reader is None:
            return
        if self._pending:
            reader.stop()
        else:
            self._pool.give_back(reader)
