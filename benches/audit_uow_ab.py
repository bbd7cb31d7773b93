"""CPU of audit units of work on SQLite, SQLAlchemy Core against the DB-API path (branch nosqla,
issue 16.1/16.4): each unit is a claim transaction (``Claims.decide`` and a batch counter
update) and a read transaction (``files_of_identity``), through ``TransactionRunner`` and
``LiteTransactionRunner`` with the file gate, in one process, alternating rounds, medians.

    PYTHONPATH=python python3 benches/audit_uow_ab.py [units per round, default 200]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from tallyclerk.audit.claims import Claims
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.audit.txn import LiteTransactionRunner, TransactionRunner
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tallyclerk.sqlitegate import gate_for

BATCH = "b" * 32
SETTINGS = Settings(synchronous="OFF")  # CPU, not the disk's syncs
ME = Claims(host="h", pid=1, lease_s=60)


def _runner(kind: str, folder: str) -> Any:
    path = f"{folder}/{kind}.db"
    url = parse_url(f"sqlite:///{path}")
    if kind == "core":
        engine = create_audit_engine(url, SETTINGS)
        ensure_schema(engine)
        return TransactionRunner(engine, SETTINGS, label=kind, gate=gate_for(path))
    lite = LiteEngine(url, SETTINGS)
    ensure_schema_lite(lite)
    return LiteTransactionRunner(lite, SETTINGS, label=kind, gate=gate_for(path))


def _unit(runner: Any, i: int) -> None:
    def claim(repo: Any) -> Any:
        found = ME.decide(repo, batch_id=BATCH, path=f"/f{i}", table="t",
                          fingerprint=f"fp{i}", size=1, mtime=1.0, force=False)
        repo.update_batch(BATCH, files_started=i)
        return found

    runner.run(claim, what="claim")
    runner.run(lambda repo: repo.files_of_identity("t", f"fp{i}"), what="read")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    now = datetime.now(timezone.utc)
    folder = tempfile.mkdtemp(prefix="tc-uow-")
    runners = {kind: _runner(kind, folder) for kind in ("core", "dbapi")}
    for runner in runners.values():
        runner.run(lambda repo: repo.add_batch(batch_id=BATCH, target_table="t",
                                               started_at=now, host="h", pid=1, user=None,
                                               options={}), what="batch")
        _unit(runner, -1)  # warm: statement caches
    cpu: dict[str, list[float]] = {kind: [] for kind in runners}
    for rnd in range(5):
        for kind, runner in runners.items():
            start = time.process_time()
            for i in range(n):
                _unit(runner, rnd * n + i)
            cpu[kind].append((time.process_time() - start) / n * 1e6)
    for kind, values in cpu.items():
        print(f"{kind}: {statistics.median(values):.0f} us CPU a unit (claim + read "
              f"transactions), median of 5 rounds of {n}")


if __name__ == "__main__":
    main()
