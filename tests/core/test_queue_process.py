"""WriteBehindQueue across process boundaries: exit with items queued, a stuck sink at exit,
and use after ``os.fork()``. Each case runs a real Python subprocess."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, str(path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_exit_without_close_flushes_every_queued_item(tmp_path: Path) -> None:
    proc = run(
        """
        import sys, threading, time
        from pathlib import Path
        from tallyclerk import WriteBehindQueue

        out = open(Path(sys.argv[1]) / "out.txt", "w")
        release = threading.Event()

        def sink(batch):
            release.wait()          # hold the writer until everything is queued
            time.sleep(0.001)       # slow-ish
            out.write("".join(f"{i}\\n" for i in batch))
            out.flush()

        q = WriteBehindQueue(sink, max_items=1000, max_batch=10, linger_ms=5)
        for i in range(500):
            q.put(i)
        assert q.stats().written == 0
        release.set()
        # no close(), no flush(): the exit hook must deliver everything
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "out.txt").read_text().split()
    assert lines == [str(i) for i in range(500)]


def test_exit_with_a_stuck_sink_is_bounded_and_reported(tmp_path: Path) -> None:
    proc = run(
        """
        import threading
        from tallyclerk import WriteBehindQueue

        never = threading.Event()
        q = WriteBehindQueue(lambda batch: never.wait(), exit_timeout_s=0.2, name="stuck-writer")
        for i in range(5):
            q.put(i)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stuck-writer" in proc.stderr
    assert "not delivered" in proc.stderr


def test_exit_interrupts_a_sink_still_busy_in_python(tmp_path: Path) -> None:
    proc = run(
        """
        import sys
        from pathlib import Path
        from tallyclerk import WriteBehindQueue

        out = Path(sys.argv[1]) / "dead.txt"

        def busy(batch):
            while True:             # pure Python, never returns by itself
                pass

        def dead_letter(batch, exc):
            out.write_text(f"{batch} {type(exc).__name__} {type(exc.__cause__).__name__}")

        q = WriteBehindQueue(busy, exit_timeout_s=0.1, dead_letter=dead_letter, name="busy")
        q.put(1)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dead.txt").read_text() == "[1] FlushTimeout FlushTimeout"
    assert "dead-lettered 1 item(s)" in proc.stderr


def test_exit_without_flush_at_exit_dead_letters_visibly(tmp_path: Path) -> None:
    proc = run(
        """
        import sys
        from pathlib import Path
        from tallyclerk import WriteBehindQueue

        out = Path(sys.argv[1]) / "dead.txt"

        def dead_letter(batch, exc):
            out.write_text(f"{batch} {type(exc).__name__}")

        q = WriteBehindQueue(
            print, linger_ms=3_600_000, flush_at_exit=False, dead_letter=dead_letter, name="lazy"
        )
        q.put_many([1, 2, 3])
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dead.txt").read_text() == "[1, 2, 3] FlushTimeout"
    assert "dead-lettered 3 item(s)" in proc.stderr


def test_exit_dead_letters_the_items_queued_behind_a_sink_that_never_returns(
    tmp_path: Path,
) -> None:
    # The writer sits in a GIL-free wait inside the sink for good: it can never dead-letter
    # anything. The exit hook takes the queued items itself and hands them over before it
    # returns; only the batch inside the sink is abandoned, and that is logged with its count.
    proc = run(
        """
        import sys, threading
        from pathlib import Path
        from tallyclerk import WriteBehindQueue

        out = open(Path(sys.argv[1]) / "dead.txt", "w")
        entered, never = threading.Event(), threading.Event()

        def sink(batch):
            entered.set()
            never.wait()

        def dead_letter(batch, exc):
            out.write(f"{batch} {type(exc).__name__}\\n")
            out.flush()

        q = WriteBehindQueue(
            sink, max_batch=1, linger_ms=0, exit_timeout_s=0.1, dead_letter=dead_letter,
            name="stuck",
        )
        q.put(0)
        entered.wait()
        for i in range(1, 5):
            q.put(i)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    dead = (tmp_path / "dead.txt").read_text().splitlines()
    assert dead == [f"[{i}] FlushTimeout" for i in range(1, 5)]
    assert proc.stderr.count("dead-lettered 1 item(s)") == 4
    assert "'stuck' did not return; its batch of 1 item(s) is abandoned" in proc.stderr


@pytest.mark.parametrize("flush_at_exit", [True, False])
def test_exit_dead_letters_a_batch_in_backoff_then_the_queue_behind_it_in_order(
    tmp_path: Path, flush_at_exit: bool
) -> None:
    # The batch in flight waits out a one-hour backoff (GIL-free) when the interpreter exits:
    # the writer dead-letters it (with the sink's error as cause), then the exit hook the
    # items queued behind it, all before the process ends.
    proc = run(
        f"""
        import sys, threading
        from pathlib import Path
        from tallyclerk import WriteBehindQueue

        out = open(Path(sys.argv[1]) / "dead.txt", "w")
        failed = threading.Event()

        def sink(batch):
            failed.set()
            raise OSError("down")

        def dead_letter(batch, exc):
            cause = type(exc.__cause__).__name__
            out.write(f"{{batch}} {{type(exc).__name__}} {{cause}}\\n")
            out.flush()

        q = WriteBehindQueue(
            sink, max_batch=1, linger_ms=0, backoff_initial_ms=3_600_000,
            backoff_max_ms=3_600_000, flush_at_exit={flush_at_exit}, exit_timeout_s=0.1,
            dead_letter=dead_letter,
        )
        q.put(0)
        failed.wait()
        q.put(1)
        q.put(2)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dead.txt").read_text().splitlines() == [
        "[0] FlushTimeout OSError",
        "[1] FlushTimeout NoneType",
        "[2] FlushTimeout NoneType",
    ]
    assert "abandoned" not in proc.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_cannot_use_the_parents_queue(tmp_path: Path) -> None:
    proc = run(
        """
        import os, sys
        from tallyclerk import WriteBehindQueue
        from tallyclerk.errors import ForkedError

        got = []
        q = WriteBehindQueue(got.extend, linger_ms=0)
        q.put("before")
        q.flush()
        pid = os.fork()
        if pid == 0:
            refused = []
            for name, call in [
                ("put", lambda: q.put("child")),
                ("put_many", lambda: q.put_many(["child"])),
                ("flush", q.flush),
                ("close", q.close),
                ("stats", q.stats),
                ("len", lambda: len(q)),
            ]:
                try:
                    call()
                except ForkedError:
                    refused.append(name)
            # A child may still make its own queue; it exits normally (atexit runs).
            mine = []
            q2 = WriteBehindQueue(mine.extend)
            q2.put("child-own")
            q2.close()
            ok = len(refused) == 6 and mine == ["child-own"]
            sys.exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        q.put("after")
        q.close()
        print(os.waitstatus_to_exitcode(status), got)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0 ['before', 'after']"
