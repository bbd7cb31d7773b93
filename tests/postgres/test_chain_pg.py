"""The hash chain with many workers on one PostgreSQL server: one serialised append.

Three ``tallyclerk load`` processes start at once against one audit store (each seals at its
batch's start and end, and at close); the chain they build together is whole, has every row,
and an edit by another connection is named by ``tallyclerk verify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}
    return {**base, "PYTHONPATH": str(REPO / "python") + os.pathsep + str(REPO)}


def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tallyclerk.cli", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_loads_build_one_whole_chain(tmp_path: Path, pg_url: str) -> None:
    procs = []
    for w in range(3):
        paths = []
        for i in range(4):
            p = tmp_path / f"w{w}_{i}.csv"
            p.write_text("id,name\n" + "".join(f"{w * 1000 + i * 10 + k},x\n" for k in range(5)),
                         encoding="utf-8")
            paths.append(str(p))
        procs.append(_cli("load", *paths, "--table", "t", "--into", pg_url, cwd=tmp_path))
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    verify = _cli("verify", "--json", "--into", pg_url, cwd=tmp_path)
    out, err = verify.communicate(timeout=120)
    assert verify.returncode == 0, (out, err)
    rep = json.loads(out)
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            total = sum(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                        for t in ("tallyclerk_batches", "tallyclerk_files",
                                  "tallyclerk_rejects", "tallyclerk_events",
                                  "tallyclerk_schemas"))
        assert rep["ok"] and rep["links"] == total == rep["head"]["chain_seq"]
        with engine.connect() as conn:  # every row joins to its load through the lineage view
            joined = conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT l.batch_id) FROM t "
                "JOIN tallyclerk_lineage l ON l.file_id = t._tc_file_id").one()
        assert tuple(joined) == (60, 3)
        with engine.begin() as conn:
            fid = conn.exec_driver_sql("SELECT min(id) FROM tallyclerk_files").scalar_one()
            conn.exec_driver_sql(f"UPDATE tallyclerk_files SET rows_read = 7 WHERE id = {fid}")
    finally:
        engine.dispose()
    verify = _cli("verify", "--json", "--into", pg_url, cwd=tmp_path)
    out, _ = verify.communicate(timeout=120)
    broken = json.loads(out)["broken"]
    assert verify.returncode == 1 and (broken["table"], broken["row"]) == ("tallyclerk_files", fid)
