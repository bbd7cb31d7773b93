"""A batch whose process was killed while it held no claim does not stay `running` forever."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from tallyclerk.audit import AuditService
from tallyclerk.settings import Settings


def _status(db: Path, batch_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(db) as con:
        row = con.execute(
            "select status, error_message from tallyclerk_batches where id = ?", (batch_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_killed_batch_is_closed_by_the_next_batch_on_this_host(tmp_path: Path) -> None:
    db = tmp_path / "tc.db"
    # A real process starts a batch and dies (SIGKILL) without finishing it or claiming a file.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from tallyclerk.audit import AuditService
        svc = AuditService("sqlite:///{db}")
        print(svc.start_batch("orders", {{}}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr
    dead_batch = proc.stdout.strip()
    assert _status(db, dead_batch)[0] == "running"

    with AuditService(f"sqlite:///{db}", settings=Settings()) as svc:
        mine = svc.start_batch("orders", {})
        status, message = _status(db, dead_batch)
        assert status == "failed"
        assert message is not None and mine in message and "interrupted" in message
        assert _status(db, mine)[0] == "running"
        svc.finish_batch(mine)


def test_live_batches_and_other_hosts_are_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "tc.db"
    with AuditService(f"sqlite:///{db}", settings=Settings()) as first:
        live = first.start_batch("orders", {})
        with sqlite3.connect(db) as con:  # a batch of another host whose pid means nothing here
            con.execute(
                "update tallyclerk_batches set host = ? where id = ?",
                (socket.gethostname() + "-elsewhere", live),
            )
        with AuditService(f"sqlite:///{db}", settings=Settings()) as second:
            own = second.start_batch("orders", {})  # same process: alive
            assert _status(db, live)[0] == "running"
            assert _status(db, own)[0] == "running"
            second.finish_batch(own)
        first.finish_batch(live)
