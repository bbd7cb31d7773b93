"""BatchAccumulator: counting, consistent snapshots under concurrency, cancellation, expiry."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk import BatchAccumulator, BatchTimeout, FileEvent, MetricsSnapshot
from tallyclerk.errors import BatchCancelled, TallyclerkError

COUNTERS = (
    "files_started",
    "files_loaded",
    "files_skipped",
    "files_failed",
    "rows_read",
    "rows_written",
    "rows_rejected",
    "bytes_read",
)
ROW_FIELDS = ("rows_read", "rows_written", "rows_rejected", "bytes_read")
FILE_FIELD = {
    FileEvent.STARTED: "files_started",
    FileEvent.LOADED: "files_loaded",
    FileEvent.SKIPPED: "files_skipped",
    FileEvent.FAILED: "files_failed",
}


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Make the interpreter switch threads very often, so concurrency tests interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def counters(s: MetricsSnapshot) -> dict[str, int]:
    return {name: getattr(s, name) for name in COUNTERS}


# --- counting --------------------------------------------------------------------------------


def test_new_accumulator_is_empty_with_default_timeouts() -> None:
    acc = BatchAccumulator("b-1")
    s = acc.snapshot()
    assert acc.batch_id == s.batch_id == "b-1"
    assert counters(s) == dict.fromkeys(COUNTERS, 0)
    assert not s.cancelled and s.cancel_reason is None and s.expired is None
    assert acc.timeout.operation_timeout_s == 3600.0
    assert acc.timeout.idle_timeout_s == 1800.0
    assert acc.timeout.watchdog_interval_s == 1.0
    assert acc.is_expired() is None


def test_each_event_kind_and_rows_are_counted() -> None:
    acc = BatchAccumulator("b")
    acc.add_file_event(FileEvent.STARTED)
    acc.add_rows(10, 9, 1, 1000)
    acc.add_file_event(FileEvent.LOADED, 5, 4, 1, 500)
    acc.add_file_event(FileEvent.SKIPPED)
    acc.add_file_event(FileEvent.FAILED, rows_read=2, bytes_read=20)
    assert counters(acc.snapshot()) == {
        "files_started": 1,
        "files_loaded": 1,
        "files_skipped": 1,
        "files_failed": 1,
        "rows_read": 17,
        "rows_written": 13,
        "rows_rejected": 2,
        "bytes_read": 1520,
    }


def test_snapshot_is_immutable_and_detached_from_later_events() -> None:
    acc = BatchAccumulator("b")
    acc.add_file_event(FileEvent.LOADED, 1, 1)
    s = acc.snapshot()
    acc.add_file_event(FileEvent.LOADED, 1, 1)
    assert s.files_loaded == 1
    with pytest.raises(AttributeError):
        s.files_loaded = 5  # type: ignore[misc]
    d = s.as_dict()
    assert set(d) == {
        *COUNTERS,
        "batch_id",
        "started_at",
        "last_activity_at",
        "elapsed_s",
        "idle_s",
        "cancelled",
        "cancel_reason",
        "expired",
        "rows_rolled_back",
        "live_rows_read",
        "live_rows_written",
        "live_rows_rejected",
        "live_bytes_read",
        "rows_sent",
        "file_attempts",
    }
    assert d["files_loaded"] == 1 and d["batch_id"] == "b"
    assert "files_loaded=1" in repr(s)


def test_times_are_on_the_clock_of_time_monotonic() -> None:
    before = time.monotonic()
    acc = BatchAccumulator("b")
    after = time.monotonic()
    s = acc.snapshot()
    # same clock: the start lies between two time.monotonic() readings (calibration slack 1 ms)
    assert before - 1e-3 <= s.started_at <= after + 1e-3
    assert s.last_activity_at == s.started_at
    acc.touch()
    touched = time.monotonic()
    s2 = acc.snapshot()
    assert s.started_at <= s2.last_activity_at <= touched + 1e-3
    assert s2.elapsed_s >= 0 and s2.idle_s >= 0


def test_events_refresh_last_activity() -> None:
    acc = BatchAccumulator("b")
    first = acc.snapshot().last_activity_at
    # events record time at the coarse clock's resolution (a few ms): let it tick past `first`
    time.sleep(0.05)
    acc.add_rows(1)
    assert acc.snapshot().last_activity_at > first


def test_bad_arguments_are_refused_without_counting() -> None:
    acc = BatchAccumulator("b")
    with pytest.raises(ValueError, match="rows_read"):
        acc.add_file_event(FileEvent.LOADED, -1)
    with pytest.raises(ValueError, match="bytes_read"):
        acc.add_rows(bytes_read=-5)
    with pytest.raises(TypeError):
        acc.add_file_event("LOADED")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        acc.add_file_event(1)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        acc.add_rows(2**64)
    assert counters(acc.snapshot()) == dict.fromkeys(COUNTERS, 0)


def test_file_event_is_a_hashable_enum() -> None:
    kinds = [FileEvent.STARTED, FileEvent.LOADED, FileEvent.SKIPPED, FileEvent.FAILED]
    assert len(set(kinds)) == 4
    assert FileEvent.LOADED == FileEvent.LOADED and FileEvent.LOADED != FileEvent.FAILED
    assert repr(FileEvent.SKIPPED) == "FileEvent.SKIPPED"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"operation_timeout_s": 0},
        {"idle_timeout_s": -1},
        {"watchdog_interval_s": float("nan")},
        {"operation_timeout_s": float("inf")},
    ],
)
def test_batch_timeout_refuses_non_positive_or_non_finite(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BatchTimeout(**kwargs)


def test_batch_timeout_values_and_equality() -> None:
    t = BatchTimeout(10, 5, 0.5)
    assert (t.operation_timeout_s, t.idle_timeout_s, t.watchdog_interval_s) == (10, 5, 0.5)
    assert t == BatchTimeout(operation_timeout_s=10, idle_timeout_s=5, watchdog_interval_s=0.5)
    assert BatchAccumulator("b", t).timeout == t


# --- model-based: any event sequence gives the model's totals --------------------------------

KINDS = st.sampled_from(
    [None, FileEvent.STARTED, FileEvent.LOADED, FileEvent.SKIPPED, FileEvent.FAILED]
)
AMOUNT = st.integers(min_value=0, max_value=10**12)


@dataclass
class Event:
    kind: FileEvent | None
    rows: tuple[int, int, int, int]


EVENTS = st.lists(st.builds(Event, KINDS, st.tuples(AMOUNT, AMOUNT, AMOUNT, AMOUNT)), max_size=60)


@given(events=EVENTS, cancel_at=st.none() | st.integers(min_value=0, max_value=60))
@settings(max_examples=200, deadline=None)
def test_totals_equal_the_model(events: list[Event], cancel_at: int | None) -> None:
    acc = BatchAccumulator("model")
    model = dict.fromkeys(COUNTERS, 0)
    for i, ev in enumerate(events):
        if cancel_at == i:
            assert acc.cancel("model cancel")
        if acc.cancelled:
            with pytest.raises(BatchCancelled):
                if ev.kind is None:
                    acc.add_rows(*ev.rows)
                else:
                    acc.add_file_event(ev.kind, *ev.rows)
            continue
        if ev.kind is None:
            acc.add_rows(*ev.rows)
        else:
            acc.add_file_event(ev.kind, *ev.rows)
            model[FILE_FIELD[ev.kind]] += 1
        for name, value in zip(ROW_FIELDS, ev.rows, strict=True):
            model[name] += value
    assert counters(acc.snapshot()) == model


# --- concurrency -----------------------------------------------------------------------------

THREADS = 8
EVENTS_PER_THREAD = 10_000


def test_eight_threads_give_exact_totals_and_every_snapshot_is_consistent(
    fast_switching: None,
) -> None:
    """Each event adds 1 file, 3 rows read, 2 written, 1 rejected and 7 bytes; so in every
    consistent snapshot rows_read == 3 * files, and so on. A reader checks that throughout."""
    acc = BatchAccumulator("concurrent")
    start = threading.Barrier(THREADS + 1)
    writers_done = threading.Event()
    violations: list[dict[str, int]] = []
    snapshots_taken = 0
    kinds = [FileEvent.STARTED, FileEvent.LOADED, FileEvent.SKIPPED, FileEvent.FAILED]

    def writer(n: int) -> None:
        kind = kinds[n % 4]
        add = acc.add_file_event
        start.wait()
        for _ in range(EVENTS_PER_THREAD):
            add(kind, 3, 2, 1, 7)

    def reader() -> None:
        nonlocal snapshots_taken
        last_files = 0
        while not writers_done.is_set():
            c = counters(acc.snapshot())
            files = c["files_started"] + c["files_loaded"] + c["files_skipped"] + c["files_failed"]
            ok = (
                c["rows_read"] == 3 * files
                and c["rows_written"] == 2 * files
                and c["rows_rejected"] == files
                and c["bytes_read"] == 7 * files
                and files >= last_files
            )
            if not ok:
                violations.append(c)
            last_files = files
            snapshots_taken += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    snap_thread = threading.Thread(target=reader)
    for t in threads:
        t.start()
    snap_thread.start()
    start.wait()
    for t in threads:
        t.join()
    writers_done.set()
    snap_thread.join()

    assert violations == []
    assert snapshots_taken > 0
    total = THREADS * EVENTS_PER_THREAD
    assert counters(acc.snapshot()) == {
        "files_started": total // 4,
        "files_loaded": total // 4,
        "files_skipped": total // 4,
        "files_failed": total // 4,
        "rows_read": 3 * total,
        "rows_written": 2 * total,
        "rows_rejected": total,
        "bytes_read": 7 * total,
    }


def test_cancel_racing_writers_freezes_the_counts(fast_switching: None) -> None:
    """Writers count until refused; once cancel() returned the counts never change, and they
    equal exactly the events that were accepted."""
    acc = BatchAccumulator("race")
    accepted = [0] * 4
    refused = [0] * 4
    started = threading.Barrier(5)

    def writer(n: int) -> None:
        started.wait()
        while True:
            try:
                acc.add_file_event(FileEvent.LOADED, 2)
            except BatchCancelled:
                refused[n] += 1
                return
            accepted[n] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    started.wait()
    while acc.snapshot().files_loaded < 1000:
        pass
    assert acc.cancel("stop now")
    frozen = counters(acc.snapshot())
    for t in threads:
        t.join()
    assert counters(acc.snapshot()) == frozen
    assert frozen["files_loaded"] == sum(accepted)
    assert frozen["rows_read"] == 2 * sum(accepted)
    assert refused == [1, 1, 1, 1]


# --- cancellation ----------------------------------------------------------------------------


def test_cancel_refuses_events_visibly_and_counts_nothing() -> None:
    acc = BatchAccumulator("b")
    acc.add_file_event(FileEvent.STARTED, 1)
    assert acc.cancel("user pressed ctrl-c") is True
    assert acc.cancel("second") is False
    assert acc.cancelled
    assert acc.cancel_reason == "user pressed ctrl-c"
    with pytest.raises(BatchCancelled, match="user pressed ctrl-c") as info:
        acc.add_file_event(FileEvent.LOADED, 5)
    assert isinstance(info.value, TallyclerkError) and isinstance(info.value, RuntimeError)
    with pytest.raises(BatchCancelled):
        acc.add_rows(5)
    acc.touch()  # activity is still allowed
    s = acc.snapshot()
    assert (s.files_started, s.files_loaded, s.rows_read) == (1, 0, 1)
    assert s.cancelled and s.cancel_reason == "user pressed ctrl-c"
    assert s.expired is None


def test_is_expired_reports_idle_then_operation_without_cancelling() -> None:
    idle = BatchAccumulator("idle", BatchTimeout(3600, 0.01, 1))
    deadline = time.monotonic() + 30
    while idle.is_expired() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert idle.is_expired() == "idle"
    assert not idle.cancelled
    idle.add_rows(1)
    assert idle.is_expired() is None  # activity resets the idle clock

    op = BatchAccumulator("op", BatchTimeout(0.02, 3600, 1))
    deadline = time.monotonic() + 30
    while op.is_expired() is None and time.monotonic() < deadline:
        op.touch()  # activity does not help against the operation timeout
        time.sleep(0.005)
    assert op.is_expired() == "operation"
    assert not op.cancelled


# --- file tallies: an attempt's rows live until it settles -----------------------------------

OUTCOMES = st.sampled_from(["loaded", "failed", "retried", None])  # None: dropped unsettled


@dataclass
class Attempt:
    adds: list[tuple[int, int, int, int]]
    outcome: str | None
    cancel_before: bool


ATTEMPTS = st.lists(st.builds(
    Attempt,
    st.lists(st.tuples(AMOUNT, AMOUNT, AMOUNT, AMOUNT), max_size=5),
    OUTCOMES,
    st.booleans(),
), max_size=12)


@given(attempts=ATTEMPTS)
@settings(max_examples=200, deadline=None)
def test_settled_attempts_equal_the_model(attempts: list[Attempt]) -> None:
    """A loaded attempt's rows join the totals, a failed one's join as read, rejected and
    rolled back (nothing written), a retried or dropped one's leave; nothing stays live; a
    tally counts and settles after cancel too (it accounts for work already started)."""
    acc = BatchAccumulator("tallies")
    model = dict.fromkeys(("files_loaded", "files_failed", "rows_read", "rows_written",
                           "rows_rejected", "rows_rolled_back", "bytes_read", "rows_sent"), 0)
    for a in attempts:
        if a.cancel_before:
            acc.cancel("cancelled mid-batch")
        tally = acc.begin_file()
        for read, written, rejected, nbytes in a.adds:
            assert tally.add(read, written, rejected, nbytes)
            model["rows_sent"] += written
        read, written, rejected, nbytes = (sum(x) for x in zip(*a.adds, strict=True)) \
            if a.adds else (0, 0, 0, 0)
        assert (tally.rows_read, tally.rows_written, tally.rows_rejected,
                tally.bytes_read) == (read, written, rejected, nbytes)
        live = acc.snapshot()
        assert (live.live_rows_read, live.live_rows_written) == (read, written)
        if a.outcome is None:
            del tally
            continue
        tally.settle(a.outcome)  # type: ignore[arg-type]
        assert tally.settled == a.outcome
        assert not tally.add(1, 1, 1, 1)
        with pytest.raises(ValueError, match="already settled"):
            tally.settle("loaded")
        if a.outcome == "retried":
            continue
        model[f"files_{a.outcome}"] += 1
        model["rows_read"] += read
        model["rows_rejected"] += rejected
        model["bytes_read"] += nbytes
        if a.outcome == "loaded":
            model["rows_written"] += written
        else:
            model["rows_rolled_back"] += max(0, read - rejected)
    snap = acc.snapshot()
    assert {k: getattr(snap, k) for k in model} == model
    assert (snap.live_rows_read, snap.live_rows_written, snap.live_rows_rejected,
            snap.live_bytes_read) == (0, 0, 0, 0)
    assert snap.file_attempts == len(attempts)


def test_a_tally_rejects_a_bad_outcome_and_negative_rows() -> None:
    tally = BatchAccumulator("bad").begin_file()
    with pytest.raises(ValueError, match="outcome"):
        tally.settle("committed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows_read"):
        tally.add(rows_read=-1)
    assert tally.settled is None
