"""WriteBehindQueue through its public interface: order, batching, back-pressure, retries and
dead letters, flush and close semantics, re-entrancy, concurrency."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import pytest

from tallyclerk import WriteBehindQueue
from tallyclerk.errors import FlushTimeout, QueueClosed, QueueFull, ReentrantFlush

LONG = 30.0  # generous bound for waits that must succeed; never a timing assertion


class GatedSink:
    """Records batches; blocks while the gate is closed (to fill the queue)."""

    def __init__(self, *, open_: bool = True) -> None:
        self.gate = threading.Event()
        if open_:
            self.gate.set()
        self.entered = threading.Event()
        self.batches: list[list[Any]] = []

    def __call__(self, batch: list[Any]) -> None:
        self.entered.set()
        assert self.gate.wait(LONG)
        self.batches.append(list(batch))

    @property
    def items(self) -> list[Any]:
        return [x for b in self.batches for x in b]


class FlakySink(GatedSink):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def __call__(self, batch: list[Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"transient failure {self.calls}")
        super().__call__(batch)


def test_delivers_in_order_in_bounded_batches_and_counts() -> None:
    sink = GatedSink()
    with WriteBehindQueue(sink, max_items=50, max_batch=7, linger_ms=1) as q:
        for i in range(500):
            q.put(i)
        q.put_many(range(500, 600))
        q.flush()
        assert sink.items == list(range(600))
        assert all(1 <= len(b) <= 7 for b in sink.batches)
        s = q.stats()
        assert (s.enqueued, s.written, s.dead_lettered, s.depth, len(q)) == (600, 600, 0, 0, 0)
        assert s.batches == len(sink.batches)
        assert 1 <= s.high_water <= 50
        assert s.as_dict()["written"] == 600
        assert "written=600" in repr(s)
    assert q.closed


def test_flush_keeps_the_writer_running_and_cuts_a_long_linger_short() -> None:
    sink = GatedSink()
    q = WriteBehindQueue(sink, linger_ms=3_600_000)
    q.put("a")
    q.flush(timeout=LONG)
    assert sink.items == ["a"]
    q.put("b")
    q.flush(timeout=LONG)
    assert sink.items == ["a", "b"]
    assert not q.closed
    q.close(timeout=LONG)


def test_close_wakes_a_lingering_writer_drains_and_is_idempotent() -> None:
    sink = GatedSink()
    q = WriteBehindQueue(sink, linger_ms=3_600_000)
    q.put(1)
    q.put(2)
    q.close(timeout=LONG)
    assert sink.items == [1, 2]
    q.close()
    q.close(timeout=0)
    with pytest.raises(QueueClosed):
        q.put(3)
    with pytest.raises(QueueClosed):
        q.put_many([3])
    with pytest.raises(QueueClosed):
        q.flush()
    assert q.stats().enqueued == 2


def test_raise_policy_refuses_when_full_by_items_and_by_bytes() -> None:
    sink = GatedSink(open_=False)
    q = WriteBehindQueue(sink, max_items=3, max_bytes=100, on_full="raise", linger_ms=0)
    q.put("x", size=60)
    with pytest.raises(QueueFull):
        q.put("y", size=50)
    with pytest.raises(ValueError, match="exceeds max_bytes"):
        q.put("huge", size=101)
    q.put("y", size=40)
    q.put("z")
    with pytest.raises(QueueFull):
        q.put("w")
    with pytest.raises(QueueFull):
        q.put_many(["w", "v"])
    s = q.stats()
    assert (s.depth, s.bytes_queued, s.high_water) == (3, 100, 3)
    sink.gate.set()
    q.flush(timeout=LONG)
    q.put_many(["w", "v"])
    q.close(timeout=LONG)
    assert sink.items == ["x", "y", "z", "w", "v"]
    assert q.stats().bytes_queued == 0


def test_block_policy_waits_for_room_or_times_out() -> None:
    sink = GatedSink(open_=False)
    q = WriteBehindQueue(sink, max_items=2, on_full="block", linger_ms=0)
    q.put(1)
    q.put(2)
    with pytest.raises(QueueFull):
        q.put(3, timeout=0.01)
    results: list[str] = []
    producer = threading.Thread(target=lambda: (q.put(3), results.append("put")))
    producer.start()
    producer.join(0.05)
    assert producer.is_alive(), "a put into a full queue must wait"
    sink.gate.set()
    producer.join(LONG)
    assert results == ["put"]
    q.close(timeout=LONG)
    assert sink.items == [1, 2, 3]


def test_put_timeout_default_applies_and_close_releases_blocked_producers() -> None:
    sink = GatedSink(open_=False)
    q = WriteBehindQueue(sink, max_items=1, put_timeout=0.01, linger_ms=0)
    q.put(1)
    with pytest.raises(QueueFull):
        q.put(2)
    errors: list[BaseException] = []

    def blocked_put() -> None:
        try:
            q.put(2, timeout=LONG)
        except QueueClosed as exc:
            errors.append(exc)

    producer = threading.Thread(target=blocked_put)
    producer.start()
    closer = threading.Thread(target=q.close)
    closer.start()
    producer.join(LONG)
    assert len(errors) == 1
    sink.gate.set()
    closer.join(LONG)
    assert sink.items == [1]


def test_transient_failures_are_retried_then_written() -> None:
    sink = FlakySink(failures=2)
    q = WriteBehindQueue(sink, max_retries=3, backoff_initial_ms=0.1, backoff_max_ms=1)
    q.put("a")
    q.flush(timeout=LONG)
    s = q.stats()
    assert (s.written, s.retried, s.dead_lettered) == (1, 2, 0)
    assert s.last_error == "ConnectionError: transient failure 2"
    assert sink.items == ["a"]
    q.close()


def test_permanent_failures_are_dead_lettered_logged_and_never_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead: list[tuple[list[Any], BaseException]] = []
    sink = FlakySink(failures=10**9)
    q = WriteBehindQueue(
        sink,
        max_retries=2,
        backoff_initial_ms=0.1,
        backoff_max_ms=1,
        dead_letter=lambda batch, exc: dead.append((batch, exc)),
        name="orders-writer",
    )
    with caplog.at_level(logging.ERROR, logger="tallyclerk.queue"):
        q.put_many(["a", "b", "c"])
        q.flush(timeout=LONG)
    s = q.stats()
    assert (s.written, s.dead_lettered, s.depth) == (0, 3, 0)
    assert [x for batch, _ in dead for x in batch] == ["a", "b", "c"]
    assert all(isinstance(exc, ConnectionError) for _, exc in dead)
    errors = [r for r in caplog.records if r.name == "tallyclerk.queue"]
    assert errors and all(r.levelno == logging.ERROR for r in errors)
    assert "orders-writer" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert sink.items == []
    q.close()


def test_retry_if_dead_letters_what_retrying_cannot_fix_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``retry_if(exc)`` False: dead-lettered without retries (a minute's backoff would
    otherwise hold the batches behind it); True: retried as usual; raising: retried, and
    reported to the unraisable hook."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    asked: list[BaseException] = []
    dead: list[Any] = []

    def retry_if(exc: BaseException) -> bool:
        asked.append(exc)
        if isinstance(exc, KeyError):
            raise RuntimeError("predicate broken")
        return isinstance(exc, ConnectionError)

    calls: list[str] = []

    def sink(batch: list[Any]) -> None:
        item = batch[0]
        calls.append(item)
        if item == "bad" or (item in ("flaky", "odd") and calls.count(item) == 1):
            raise {"bad": ValueError, "flaky": ConnectionError, "odd": KeyError}[item](item)

    q = WriteBehindQueue(sink, max_batch=1, max_retries=3, backoff_initial_ms=60_000,
                         backoff_max_ms=60_000, dead_letter=lambda b, e: dead.extend(b),
                         retry_if=retry_if)
    q.put("bad")
    q.put("good")
    q.flush(timeout=LONG)  # no minute-long backoff: "bad" was dead-lettered at once
    s = q.stats()
    assert (s.written, s.retried, s.dead_lettered) == (1, 0, 1)
    assert dead == ["bad"] and calls == ["bad", "good"]
    assert [type(e) for e in asked] == [ValueError]
    q.close(timeout=0.5)
    q2 = WriteBehindQueue(sink, max_batch=1, max_retries=3, backoff_initial_ms=0.1,
                          backoff_max_ms=1, retry_if=retry_if)
    q2.put("flaky")
    q2.put("odd")
    q2.flush(timeout=LONG)
    s = q2.stats()
    assert (s.written, s.retried, s.dead_lettered) == (2, 2, 0)
    assert [type(u.exc_value) for u in seen] == [RuntimeError]
    q2.close()
    with pytest.raises(TypeError, match="retry_if"):
        WriteBehindQueue(sink, retry_if=3)  # type: ignore[arg-type]


def test_dead_letter_that_raises_goes_to_unraisablehook_and_is_still_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def broken_dead_letter(batch: list[Any], exc: BaseException) -> None:
        raise RuntimeError("dead letter office closed")

    def sink(batch: list[Any]) -> None:
        raise ValueError("bad rows")

    q = WriteBehindQueue(sink, max_retries=0, dead_letter=broken_dead_letter)
    q.put(1)
    q.flush(timeout=LONG)
    q.close()
    assert q.stats().dead_lettered == 1
    assert [type(u.exc_value) for u in seen] == [RuntimeError]


def test_close_with_timeout_does_not_wait_out_a_long_backoff() -> None:
    dead: list[tuple[list[Any], BaseException]] = []
    failed_once = threading.Event()

    def sink(batch: list[Any]) -> None:
        failed_once.set()
        raise ConnectionError("database down")

    q = WriteBehindQueue(
        sink,
        max_batch=2,
        backoff_initial_ms=3_600_000,
        backoff_max_ms=3_600_000,
        dead_letter=lambda batch, exc: dead.append((batch, exc)),
    )
    q.put_many([1, 2, 3])
    assert failed_once.wait(LONG)
    while q.stats().retried == 0:  # counted once the call returned: the writer now sleeps
        time.sleep(0.001)  # in a one-hour backoff (no event marks that moment)
    with pytest.raises(FlushTimeout, match="3 item"):
        q.close(timeout=0.05)
    assert [x for batch, _ in dead for x in batch] == [1, 2, 3]
    assert all(isinstance(exc, FlushTimeout) for _, exc in dead)
    assert isinstance(dead[0][1].__cause__, ConnectionError)
    s = q.stats()
    assert (s.written, s.dead_lettered, s.depth) == (0, 3, 0)


def test_flush_times_out_while_the_sink_is_stuck() -> None:
    sink = GatedSink(open_=False)
    q = WriteBehindQueue(sink, linger_ms=0)
    q.put(1)
    with pytest.raises(FlushTimeout, match="1 item"):
        q.flush(timeout=0.01)
    sink.gate.set()
    q.flush(timeout=LONG)
    q.close()
    assert sink.items == [1]


def test_flush_and_close_from_inside_the_sink_raise_instead_of_deadlocking() -> None:
    raised: list[BaseException] = []
    holder: list[WriteBehindQueue] = []

    def sink(batch: list[Any]) -> None:
        for call in (holder[0].flush, holder[0].close):
            try:
                call()
            except ReentrantFlush as exc:
                raised.append(exc)

    q = WriteBehindQueue(sink)
    holder.append(q)
    q.put(1)
    q.flush(timeout=LONG)
    q.close(timeout=LONG)
    assert [type(e) for e in raised] == [ReentrantFlush, ReentrantFlush]
    assert q.stats().written == 1


def test_many_producer_threads_keep_their_order_and_exact_totals() -> None:
    sink = GatedSink()
    q = WriteBehindQueue(sink, max_items=256, max_batch=64, linger_ms=1)
    n_threads, per_thread = 8, 5_000

    def produce(t: int) -> None:
        for i in range(per_thread):
            q.put((t, i))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    q.close(timeout=LONG)
    items = sink.items
    assert len(items) == n_threads * per_thread
    for t in range(n_threads):
        assert [i for (tt, i) in items if tt == t] == list(range(per_thread))
    s = q.stats()
    assert (s.enqueued, s.written, s.depth) == (n_threads * per_thread,) * 2 + (0,)
    assert s.high_water <= 256


def test_a_sink_that_needs_the_interpreter_does_not_deadlock_with_waiting_callers() -> None:
    # The sink takes a Python lock the main thread also uses; every wait must be detached.
    lock = threading.Lock()
    got: list[int] = []

    def sink(batch: list[int]) -> None:
        with lock:
            got.extend(batch)

    q = WriteBehindQueue(sink, max_items=10, max_batch=3, linger_ms=0)
    for i in range(1_000):
        with lock:
            pass
        q.put(i)
    q.close(timeout=LONG)
    assert got == list(range(1_000))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_items": 0}, ValueError),
        ({"max_batch": 0}, ValueError),
        ({"max_bytes": 0}, ValueError),
        ({"linger_ms": -1.0}, ValueError),
        ({"linger_ms": float("nan")}, ValueError),
        ({"on_full": "drop"}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"backoff_initial_ms": 10.0, "backoff_max_ms": 1.0}, ValueError),
        ({"put_timeout": -1.0}, ValueError),
        ({"dead_letter": 42}, TypeError),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        WriteBehindQueue(print, **kwargs)


def test_sink_must_be_callable_and_sizes_non_negative() -> None:
    with pytest.raises(TypeError):
        WriteBehindQueue(42)  # type: ignore[arg-type]
    q = WriteBehindQueue(lambda batch: None)
    with pytest.raises(ValueError):
        q.put(1, size=-1)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1.0)
    with pytest.raises(ValueError):
        q.flush(timeout=-1)
    q.close()


def test_an_unreferenced_queue_still_delivers_its_items() -> None:
    delivered = threading.Event()
    got: list[int] = []

    def sink(batch: list[int]) -> None:
        got.extend(batch)
        delivered.set()

    q = WriteBehindQueue(sink, linger_ms=3_600_000)
    q.put(1)
    del q  # dropping the last reference closes it; the writer drains in the background
    assert delivered.wait(LONG)
    assert got == [1]


def test_a_blocked_flush_can_be_interrupted_with_ctrl_c() -> None:
    import _thread

    sink = GatedSink(open_=False)
    q = WriteBehindQueue(sink, linger_ms=0)
    q.put(1)
    assert sink.entered.wait(LONG)
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        q.flush()
    timer.join()
    sink.gate.set()
    q.close(timeout=LONG)
    assert sink.items == [1]


class FinalizedSink(GatedSink):
    """A sink whose finalizer runs Python code, as real sinks' do (closing a connection)."""

    def __del__(self) -> None:
        self.gate.set()  # releases what it holds


@pytest.mark.parametrize("call", ["flush", "put", "close"])
def test_ctrl_c_interrupts_a_blocked_call_while_another_writer_drops_its_sink(call: str) -> None:
    """Another queue's writer ends as Ctrl-C arrives, dropping the last reference to its sink
    (released later, by a thread attached to the interpreter). The blocked call must check for
    the signal before any such release runs Python code on its thread: in a finalizer, the
    KeyboardInterrupt would be swallowed ("Exception ignored in ...") and the call go on
    waiting (here until the rescue timer opens the gate: then it returns and this fails)."""
    import _thread

    blocked = GatedSink(open_=False)
    q = WriteBehindQueue(blocked, linger_ms=0, max_items=1)
    q.put(1)
    assert blocked.entered.wait(LONG)
    other = FinalizedSink(open_=False)
    entered, release = other.entered, other.gate
    q2 = WriteBehindQueue(other, linger_ms=0)
    q2.put(0)
    assert entered.wait(LONG)
    del other, q2  # its writer holds the last reference to `other`, until its batch is done

    def ctrl_c() -> None:
        _thread.interrupt_main()
        release.set()

    timer = threading.Timer(0.05, ctrl_c)
    rescue = threading.Timer(LONG, blocked.gate.set)
    rescue.start()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            if call == "flush":
                q.flush()
            elif call == "put":
                q.put(2)  # full: 1 item in flight, max_items=1
            else:
                q.close()
    finally:
        timer.join()
        rescue.cancel()
        blocked.gate.set()
    q.close(timeout=LONG)
    assert blocked.items == [1]


def test_put_from_inside_the_sink_into_a_full_queue_raises_instead_of_deadlocking() -> None:
    raised: list[BaseException] = []
    holder: list[WriteBehindQueue] = []

    def sink(batch: list[Any]) -> None:
        if batch != ["first"]:
            return
        try:
            while True:  # re-enqueue until full: only this thread could make room
                holder[0].put("again")
        except QueueFull as exc:
            raised.append(exc)

    q = WriteBehindQueue(sink, max_items=4, on_full="block", max_batch=1, linger_ms=0)
    holder.append(q)
    q.put("first")
    q.flush(timeout=LONG)
    q.close(timeout=LONG)
    assert len(raised) == 1
    assert q.stats().written == 1 + 3  # "first" (1 in flight + 3 queued = max_items 4)
