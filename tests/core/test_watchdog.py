"""Watchdog: fires each timeout exactly once, heartbeats, callback errors, stop, exit, fork."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tallyclerk import BatchAccumulator, BatchTimeout, FileEvent, Watchdog
from tallyclerk.errors import BatchCancelled, WatchdogStopped

WAIT = 30.0  # generous bound for every wait on an event; tests never assert durations


class Recorder:
    """on_timeout callback that records calls and signals each one."""

    def __init__(self) -> None:
        self.calls: list[tuple[BatchAccumulator, str]] = []
        self.fired = threading.Event()

    def __call__(self, acc: BatchAccumulator, kind: str) -> None:
        self.calls.append((acc, kind))
        self.fired.set()


class Beats:
    """Heartbeat callback that counts calls; `wait(n)` waits for n more."""

    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait_more(self, n: int) -> None:
        with self.cond:
            target = self.count + n
            assert self.cond.wait_for(lambda: self.count >= target, timeout=WAIT)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def dog(recorder: Recorder) -> Iterator[Watchdog]:
    with Watchdog(recorder, tick_s=0.005) as wd:
        yield wd


def tiny(op: float = 3600.0, idle: float = 3600.0) -> BatchTimeout:
    return BatchTimeout(operation_timeout_s=op, idle_timeout_s=idle, watchdog_interval_s=0.005)


def let_it_run(dog: Watchdog, rounds: int = 5) -> None:
    """Wait for several more watchdog rounds (heartbeats share the thread with the checks)."""
    beats = Beats()
    dog.add_heartbeat("test-rounds", 0.005, beats)
    beats.wait_more(rounds)
    dog.remove_heartbeat("test-rounds")


# --- timeouts --------------------------------------------------------------------------------


def test_idle_timeout_fires_once_and_cancels(dog: Watchdog, recorder: Recorder) -> None:
    acc = BatchAccumulator("idle", tiny(idle=0.05))
    dog.watch(acc)
    assert recorder.fired.wait(WAIT)
    let_it_run(dog)
    assert len(recorder.calls) == 1
    got, kind = recorder.calls[0]
    assert got is acc and kind == "idle"
    assert acc.cancelled and acc.cancel_reason == "idle timeout"
    s = acc.snapshot()
    assert s.expired == "idle" and s.cancelled and s.cancel_reason == "idle timeout"
    assert dog.fired == 1
    with pytest.raises(BatchCancelled, match="idle timeout"):
        acc.add_file_event(FileEvent.LOADED, 1)


def test_operation_timeout_fires_once_despite_activity(dog: Watchdog, recorder: Recorder) -> None:
    acc = BatchAccumulator("op", tiny(op=0.05))
    dog.watch(acc)
    # keep the batch busy: only the operation timeout can fire
    while not recorder.fired.is_set():
        try:
            acc.add_rows(1)
        except BatchCancelled:
            break
        recorder.fired.wait(0.001)
    assert recorder.fired.wait(WAIT)
    let_it_run(dog)
    assert [kind for _, kind in recorder.calls] == ["operation"]
    assert acc.snapshot().expired == "operation"
    assert acc.cancel_reason == "operation timeout"


def test_two_watchdogs_on_one_batch_fire_once_in_total(recorder: Recorder) -> None:
    acc = BatchAccumulator("shared", tiny(idle=0.02))
    with Watchdog(recorder, tick_s=0.005) as a, Watchdog(recorder, tick_s=0.005) as b:
        a.watch(acc)
        b.watch(acc)
        assert recorder.fired.wait(WAIT)
        let_it_run(a)
        let_it_run(b)
        assert len(recorder.calls) == 1
        assert a.fired + b.fired == 1


def test_watch_is_idempotent(dog: Watchdog, recorder: Recorder) -> None:
    acc = BatchAccumulator("twice", tiny(idle=0.02))
    dog.watch(acc)
    dog.watch(acc)
    assert recorder.fired.wait(WAIT)
    let_it_run(dog)
    assert len(recorder.calls) == 1


def test_unwatch_prevents_firing(dog: Watchdog, recorder: Recorder) -> None:
    quiet = BatchAccumulator("unwatched", tiny(idle=0.02))
    loud = BatchAccumulator("watched", tiny(idle=0.1))  # times out after `quiet` would have
    dog.watch(quiet)
    assert dog.unwatch(quiet) is True
    assert dog.unwatch(quiet) is False
    dog.watch(loud)
    assert recorder.fired.wait(WAIT)
    let_it_run(dog)
    assert [acc for acc, _ in recorder.calls] == [loud]
    assert not quiet.cancelled
    assert quiet.is_expired() == "idle"  # it did pass its timeout: only unwatch saved it


def test_batch_cancelled_by_the_user_never_fires(dog: Watchdog, recorder: Recorder) -> None:
    user = BatchAccumulator("user", tiny(idle=0.02))
    user.cancel("user")
    dog.watch(user)
    loud = BatchAccumulator("loud", tiny(idle=0.1))
    dog.watch(loud)
    assert recorder.fired.wait(WAIT)
    let_it_run(dog)
    assert [acc for acc, _ in recorder.calls] == [loud]
    assert user.cancel_reason == "user" and user.snapshot().expired is None


def test_without_on_timeout_it_still_cancels() -> None:
    acc = BatchAccumulator("silent", tiny(idle=0.02))
    with Watchdog(None, tick_s=0.005) as dog:
        dog.watch(acc)
        beats = Beats()
        dog.add_heartbeat("poll", 0.005, beats)
        while dog.fired == 0:
            beats.wait_more(1)
    assert acc.snapshot().expired == "idle"


# --- heartbeats and callback errors ----------------------------------------------------------


def test_heartbeats_run_until_removed(dog: Watchdog) -> None:
    beats = Beats()
    dog.add_heartbeat("lease", 0.005, beats)
    beats.wait_more(3)
    assert dog.remove_heartbeat("lease") is True
    assert dog.remove_heartbeat("lease") is False
    after_removal = beats.count
    let_it_run(dog)
    assert beats.count <= after_removal + 1  # at most one call already in flight


def test_heartbeat_with_the_same_name_is_replaced(dog: Watchdog) -> None:
    old, new = Beats(), Beats()
    dog.add_heartbeat("lease", 3600, old)
    dog.add_heartbeat("lease", 0.005, new)
    new.wait_more(3)
    assert old.count == 0


def test_callback_errors_go_to_unraisablehook_and_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def bad_on_timeout(acc: BatchAccumulator, kind: str) -> None:
        raise ValueError(f"on_timeout broke for {acc.batch_id}")

    failing_beats = 0

    def bad_heartbeat() -> None:
        nonlocal failing_beats
        failing_beats += 1
        raise KeyError("heartbeat broke")

    acc = BatchAccumulator("err", tiny(idle=0.02))
    with Watchdog(bad_on_timeout, tick_s=0.005) as dog:
        dog.add_heartbeat("bad", 0.005, bad_heartbeat)
        dog.watch(acc)
        good = Beats()
        dog.add_heartbeat("good", 0.005, good)
        while dog.fired == 0 or failing_beats < 3:
            good.wait_more(1)
        good.wait_more(2)  # the thread survived the errors
        assert dog.running
        errors = dog.callback_errors
    assert errors >= 4
    kinds = {type(u.exc_value) for u in seen}
    assert kinds == {ValueError, KeyError}
    assert any(u.object is bad_on_timeout for u in seen)
    assert any(u.object is bad_heartbeat for u in seen)
    assert acc.snapshot().expired == "idle"


# --- lifecycle -------------------------------------------------------------------------------


def test_stop_is_idempotent_and_refuses_new_work() -> None:
    dog = Watchdog()
    running = [dog.running]
    dog.stop()
    running.append(dog.running)
    dog.stop()
    running.append(dog.running)
    assert running == [True, False, False]
    with pytest.raises(WatchdogStopped):
        dog.watch(BatchAccumulator("late"))
    with pytest.raises(WatchdogStopped):
        dog.add_heartbeat("late", 1, lambda: None)
    assert dog.unwatch(BatchAccumulator("never")) is False


def test_context_manager_stops_on_exit_even_on_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), Watchdog() as dog:
        assert dog.running
        raise RuntimeError("boom")
    assert not dog.running


def test_stop_returns_while_a_callback_is_blocked() -> None:
    """A heartbeat blocked in Python must not keep stop() from returning (it waits detached
    from the interpreter and gives up after under a second)."""
    entered, release = threading.Event(), threading.Event()

    def blocking() -> None:
        entered.set()
        release.wait(WAIT)

    dog = Watchdog(tick_s=0.005)
    dog.add_heartbeat("block", 0.005, blocking)
    assert entered.wait(WAIT)
    stopper = threading.Thread(target=dog.stop)
    stopper.start()
    stopper.join(WAIT)
    stopped_while_blocked = not stopper.is_alive() and not release.is_set()
    release.set()
    assert stopped_while_blocked
    assert not dog.running


def test_stop_from_inside_a_callback_does_not_deadlock() -> None:
    done = threading.Event()
    holder: list[Watchdog] = []

    def stop_self() -> None:
        holder[0].stop()
        done.set()

    dog = Watchdog(tick_s=0.005)
    holder.append(dog)
    dog.add_heartbeat("self-stop", 0.005, stop_self)
    assert done.wait(WAIT)
    assert not dog.running


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        Watchdog(on_timeout=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tick_s"):
        Watchdog(tick_s=0)
    with Watchdog() as dog:
        with pytest.raises(ValueError, match="interval_s"):
            dog.add_heartbeat("x", -1, lambda: None)
        with pytest.raises(TypeError):
            dog.add_heartbeat("x", 1, "not callable")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            dog.watch("not an accumulator")  # type: ignore[arg-type]


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_exit_with_a_running_watchdog_does_not_hang() -> None:
    proc = run_script(
        """
        import threading, time
        from tallyclerk import BatchAccumulator, BatchTimeout, Watchdog
        beat = threading.Event()
        def heartbeat():
            beat.set()
            time.sleep(0.01)  # often inside a callback when the interpreter exits
        wd = Watchdog(lambda acc, kind: None, tick_s=0.001)
        wd.add_heartbeat("hb", 0.001, heartbeat)
        wd.watch(BatchAccumulator("b", BatchTimeout(3600, 0.001, 0.001)))
        wd.watch(BatchAccumulator("c", BatchTimeout(3600, 3600, 0.001)))
        assert beat.wait(30)
        print("exiting", wd.running)
        # never stopped: the atexit hook stops it, interpreter exit must not wait or crash
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "exiting True"


def test_exit_while_the_watchdog_object_was_dropped_does_not_hang() -> None:
    proc = run_script(
        """
        import threading
        from tallyclerk import Watchdog
        beat = threading.Event()
        wd = Watchdog(tick_s=0.001)
        wd.add_heartbeat("hb", 0.001, beat.set)
        assert beat.wait(30)
        del wd
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_cannot_use_the_parents_watchdog() -> None:
    proc = run_script(
        """
        import os, sys
        from tallyclerk import BatchAccumulator, Watchdog
        from tallyclerk.errors import ForkedError
        wd = Watchdog(tick_s=0.01)
        wd.add_heartbeat("hb", 0.01, lambda: None)
        pid = os.fork()
        if pid == 0:
            code = 0
            if wd.running:
                code = 10
            try:
                wd.watch(BatchAccumulator("child"))
                code = 11
            except ForkedError as e:
                if "fork" not in str(e):
                    code = 12
            try:
                wd.add_heartbeat("x", 1, lambda: None)
                code = 13
            except ForkedError:
                pass
            wd.stop()  # a no-op in the child, must not hang
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), wd.running)
        wd.stop()
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0 True"
