"""A RuleBasedStateMachine of WriteBehindQueue against a list model.

Items are ``(seq, kind, n)``: ``ok``; ``flaky`` fails the first ``n`` sink calls that carry it
(``n <= max_retries``, so alone it is always written in the end); ``poison`` always fails, so
its whole batch is dead-lettered. After ``flush`` every item put before it has been handed over
exactly once (written or dead-lettered), each stream in enqueue order, and only batches with a
poison item were dead-lettered. After ``close`` nothing more can be put.
"""

from __future__ import annotations

import logging
import threading

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tallyclerk import WriteBehindQueue
from tallyclerk.errors import QueueClosed

MAX_RETRIES = 2
Item = tuple[int, str, int]

kinds = st.one_of(
    st.just(("ok", 0)),
    st.tuples(st.just("flaky"), st.integers(1, MAX_RETRIES)),
    st.just(("poison", 0)),
)


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: list[Item] = []
        self.dead: list[list[Item]] = []
        self.failures: dict[int, int] = {}

    def __call__(self, batch: list[Item]) -> None:
        with self.lock:
            if any(kind == "poison" for _, kind, _ in batch):
                raise ValueError("poison in batch")
            pending = [
                seq for seq, kind, n in batch if kind == "flaky" and self.failures.get(seq, 0) < n
            ]
            if pending:
                for seq in pending:
                    self.failures[seq] = self.failures.get(seq, 0) + 1
                raise ConnectionError("transient")
            self.written.extend(batch)

    def dead_letter(self, batch: list[Item], exc: BaseException) -> None:
        with self.lock:
            self.dead.append(list(batch))


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sink = Sink()
        self.model: list[Item] = []
        self.closed = False
        self.q: WriteBehindQueue | None = None

    @initialize(
        max_batch=st.integers(1, 8),
        linger_ms=st.sampled_from([0.0, 0.5, 50.0]),
        max_items=st.integers(1, 64),
    )
    def start(self, max_batch: int, linger_ms: float, max_items: int) -> None:
        logging.getLogger("tallyclerk.queue").disabled = True  # dead letters are expected here
        self.q = WriteBehindQueue(
            self.sink,
            max_items=max_items,
            max_batch=max_batch,
            linger_ms=linger_ms,
            max_retries=MAX_RETRIES,
            backoff_initial_ms=0.05,
            backoff_max_ms=0.2,
            dead_letter=self.sink.dead_letter,
        )

    @property
    def queue(self) -> WriteBehindQueue:
        assert self.q is not None
        return self.q

    def _new(self, kind: tuple[str, int]) -> Item:
        return (len(self.model), kind[0], kind[1])

    @rule(kind=kinds)
    def put(self, kind: tuple[str, int]) -> None:
        item = self._new(kind)
        if self.closed:
            try:
                self.queue.put(item)
            except QueueClosed:
                return
            raise AssertionError("put after close must raise QueueClosed")
        self.queue.put(item)
        self.model.append(item)

    @rule(kinds_=st.lists(kinds, max_size=20))
    def put_many(self, kinds_: list[tuple[str, int]]) -> None:
        items = [(len(self.model) + i, k, n) for i, (k, n) in enumerate(kinds_)]
        if self.closed:
            try:
                self.queue.put_many(items)
            except QueueClosed:
                return
            raise AssertionError("put_many after close must raise QueueClosed")
        self.queue.put_many(items)
        self.model.extend(items)

    @precondition(lambda self: not self.closed)
    @rule()
    def flush(self) -> None:
        self.queue.flush(timeout=60)
        self.check_all_handed_over()

    @precondition(lambda self: self.closed)
    @rule()
    def flush_after_close(self) -> None:
        try:
            self.queue.flush()
        except QueueClosed:
            return
        raise AssertionError("flush after close must raise QueueClosed")

    @rule()
    def close(self) -> None:
        self.queue.close(timeout=60)
        self.closed = True
        self.check_all_handed_over()

    def check_all_handed_over(self) -> None:
        with self.sink.lock:
            written = list(self.sink.written)
            dead = [x for batch in self.sink.dead for x in batch]
            dead_batches = [list(b) for b in self.sink.dead]
        assert sorted(written + dead) == self.model, "each item exactly once"
        assert written == sorted(written), "written in enqueue order"
        assert dead == sorted(dead), "dead-lettered in enqueue order"
        assert all(any(k == "poison" for _, k, _ in b) for b in dead_batches)
        assert not any(k == "poison" for _, k, _ in written)
        s = self.queue.stats()
        assert (s.written, s.dead_lettered, s.depth) == (len(written), len(dead), 0)

    @invariant()
    def counts_add_up(self) -> None:
        if self.q is None:
            return
        s = self.queue.stats()
        assert s.enqueued == len(self.model)
        assert s.written + s.dead_lettered + s.depth == s.enqueued
        assert s.depth <= s.high_water

    def teardown(self) -> None:
        if self.q is not None:
            self.q.close(timeout=60)
            self.check_all_handed_over()
        logging.getLogger("tallyclerk.queue").disabled = False


QueueMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestQueueMachine = QueueMachine.TestCase
