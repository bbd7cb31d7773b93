"""Worker processes of the audit tests (run with the multiprocessing ``spawn`` context).

Each loads files the way the loader does when data and audit share one SQLite file: claim,
then one ``SqliteWriter`` transaction holding the rows and the fenced manifest update.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from tallyclerk import SqliteWriter
from tallyclerk.audit import AuditService, FileClaim, FileResult
from tallyclerk.settings import Settings

TARGET = "target"


def read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def load_in_writer(
    svc: AuditService, writer: SqliteWriter, claim: FileClaim, *, commit: bool = True
) -> int:
    """Write one claimed file's lines as rows, with the manifest, in one transaction."""
    lines = read_lines(claim.path)
    writer.begin()
    svc.ledger.prepare_file_in(writer, claim, TARGET)
    writer.executemany(
        f'INSERT INTO "{TARGET}" (v, _tc_file_id) VALUES (?, ?)',
        [(line, claim.file_id) for line in lines],
    )
    svc.ledger.commit_file_in(writer, claim, FileResult(len(lines), len(lines), 0, 0))
    if commit:
        writer.commit()
    return len(lines)


def race_worker(db_path: str, paths: Sequence[str], go: Any, results: Any) -> None:
    """Claim and load every path (same order as the rival process); report outcomes."""
    url = f"sqlite:///{db_path}"
    loaded = skipped = 0
    with AuditService(url, settings=Settings(busy_timeout_ms=30_000)) as svc:
        writer = SqliteWriter(db_path, busy_timeout_ms=30_000)
        batch = svc.start_batch(TARGET, {"worker": os.getpid()})
        go.wait(60)
        for path in paths:
            claim = svc.ledger.claim_file(batch, path, TARGET)
            if isinstance(claim, FileClaim):
                load_in_writer(svc, writer, claim)
                loaded += 1
            else:
                skipped += 1
        svc.finish_batch(batch)
        writer.close()
    results.put((os.getpid(), loaded, skipped))


def crash_worker(db_path: str, data_path: str | None, path: str, after_data_commit: bool) -> None:
    """Claim ``path``, write its rows, and die by SIGKILL before the load is recorded.

    Same database (``data_path`` None): killed inside the open transaction. Separate data
    database: killed after the data commit (``after_data_commit``) or before it.
    """
    svc = AuditService(f"sqlite:///{db_path}", settings=Settings())
    batch = svc.start_batch(TARGET, {})
    claim = svc.ledger.claim_file(batch, path, TARGET)
    assert isinstance(claim, FileClaim)
    lines = read_lines(path)
    writer = SqliteWriter(data_path or db_path)
    writer.begin()
    svc.ledger.prepare_file_in(writer, claim, TARGET)
    writer.executemany(
        f'INSERT INTO "{TARGET}" (v, _tc_file_id) VALUES (?, ?)',
        [(line, claim.file_id) for line in lines],
    )
    if data_path is None:
        svc.ledger.commit_file_in(writer, claim, FileResult(len(lines), len(lines), 0, 0))
    elif after_data_commit:
        writer.commit()
    os.kill(os.getpid(), signal.SIGKILL)
