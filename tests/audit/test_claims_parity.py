"""The claim decisions (``claims.Claims``) come out the same on both repositories: claims,
skips, dead-owner clean-ups, attempts and the claims taken ahead of ``decide_many``; the
manifest they leave is the same but for the clock and the random claim tokens."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tallyclerk.audit.claims import Claims
from tallyclerk.audit.engine import create_audit_engine, ensure_schema
from tallyclerk.dburl import parse_url
from tallyclerk.settings import Settings
from tests.audit.repos import IMPLEMENTATIONS, Repo, Store

B1, B2, B3 = "1" * 32, "2" * 32, "3" * 32
NOW = datetime(2026, 12, 7, 4, 40, tzinfo=timezone.utc)
# columns the clock or uuid4 fill
_VARYING = {"started_at", "finished_at", "lease_expires_at", "claim_token"}


def _plain(result: Any) -> Any:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        values = dataclasses.asdict(result)
        values.pop("token", None)
        return type(result).__name__, values
    if isinstance(result, list):
        return [_plain(r) for r in result]
    return result


def _raw(repo: Repo, sql: str) -> None:
    if isinstance(repo.connection, sqlite3.Connection):
        repo.connection.execute(sql)
    else:
        repo.connection.exec_driver_sql(sql)


def _scenario(repo: Repo) -> list[Any]:
    me = Claims(host="h", pid=100, lease_s=60.0)
    gone = Claims(host="other", pid=7, lease_s=-1.0)  # its leases have expired already
    for batch in (B1, B2, B3):
        repo.add_batch(batch_id=batch, target_table="t", started_at=NOW, host="h", pid=100,
                       user=None, options={})
    out: list[Any] = []

    def decide(who: Claims, batch: str, path: str, fp: str, force: bool = False) -> Any:
        return who.decide(repo, batch_id=batch, path=path, table="t", fingerprint=fp,
                          size=len(path), mtime=1.0, force=force)

    out.append(decide(gone, B1, "/a", "fa"))           # claimed by a process that dies
    out.append(decide(me, B2, "/a", "fa"))             # dead owner: cleaned up, attempt 2
    out.append(decide(me, B2, "/a2", "fa"))            # being loaded: skipped
    claim = out[1]
    repo.update_batch(B2, status="running")
    sql = ("UPDATE tallyclerk_files SET status = 'loaded', rows_read = 1, rows_written = 1 "
           f"WHERE id = {int(claim.file_id)}")
    _raw(repo, sql)  # its load finished (the fenced commit is sqlgen's, tested elsewhere)
    out.append(decide(me, B3, "/a", "fa"))             # already loaded: skipped
    out.append(decide(me, B3, "/a", "fa", force=True))  # forced: a new claim replacing it
    out.append(me.decide_many(repo, batch_id=B3, table="t", claim_new=True, files=[
        ("/b", "fb", 2, 1.0), ("/c", "fc", 2, 1.0), ("/a", "fa", 2, 1.0), ("/d", "fd", 2, 1.0),
    ]))
    out.append(me.decide_many(repo, batch_id=B3, table="t", files=[("/b", "fb", 2, 1.0)]))
    out.append(repo.count_attempts("t", "fa"))
    out.append([(b.id, b.status, b.error_class) for b in repo.list_batches()])
    return out


def _manifest(path: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute("SELECT * FROM tallyclerk_files ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [tuple(v for n, v in zip(names, row, strict=True) if n not in _VARYING)
                for row in cursor.fetchall()]
    finally:
        conn.close()


def test_claim_decisions_are_the_same_on_both_repositories(tmp_path: Path) -> None:
    results, manifests = [], []
    for kind in IMPLEMENTATIONS:
        path = tmp_path / f"{kind}.db"
        engine = create_audit_engine(parse_url(f"sqlite:///{path}"), Settings())
        ensure_schema(engine)
        store = Store(kind, engine, str(path))
        try:
            with store.begin() as repo:
                results.append(_plain(_scenario(repo)))
            manifests.append(_manifest(str(path)))
        finally:
            engine.dispose()
    assert results[0] == results[1]
    assert manifests[0] == manifests[1]
    kinds = [r[0] if isinstance(r, tuple) else None for r in results[0][:5]]
    assert kinds == ["FileClaim", "FileClaim", "FileSkip", "FileSkip", "FileClaim"]
    assert len(manifests[0]) >= 9
