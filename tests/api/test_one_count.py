"""The batch accumulator is the one count of files and rows (issue 12 item 4): what
``tallyclerk.load(progress=...)`` receives, the report's totals, the batch row, the manifest and
the Prometheus metrics all agree, also when an attempt is rolled back and retried, when a file
fails and is rolled back, and when rows are rejected.

Faults come from :mod:`tallyclerk.faults` (``TALLYCLERK_FAULT``, read when the module is first
imported), so each load runs in a child Python process of its own that prints what it saw.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import SCHEMA, write_csv
from tests.clirun import env_for

PROBE = r"""
import json, sys
import tallyclerk
from tallyclerk.metrics import load_metrics

paths, db, schema = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
metrics = load_metrics()
KEYS = ("files_loaded", "files_failed", "files_skipped", "file_attempts", "rows_read",
        "rows_written", "rows_rejected", "rows_rolled_back", "live_rows_read", "rows_sent")
seen = []

def progress(p):
    snap = {k: getattr(p.metrics, k) for k in KEYS}
    seen.append({"files_done": p.files_done, "rows_read": p.rows_read, "snap": snap})

report = tallyclerk.load(paths, table="t", into=db, schema=schema, progress=progress,
                         settings={"batch_rows": 50, "backoff_initial_ms": 1,
                                   "backoff_max_ms": 2, "breaker_threshold": 100})

def get(name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0

prom = {
    "rows_read": get("tallyclerk_rows_read_total"),
    "rows_written": get("tallyclerk_rows_written_total"),
    "rows_rejected": get("tallyclerk_rows_rejected_total"),
    "rows_rolled_back": get("tallyclerk_rows_rolled_back_total"),
    "rows_sent": get("tallyclerk_rows_sent_total"),
    "file_attempts": get("tallyclerk_file_attempts_total"),
    "loaded": get("tallyclerk_files_total", status="loaded"),
    "failed": get("tallyclerk_files_total", status="failed"),
    "skipped": get("tallyclerk_files_total", status="skipped"),
}
print(json.dumps({"report": report.to_dict(), "progress": seen, "prom": prom}))
"""


def _load(work: Path, paths: list[Path], fault: str | None) -> dict[str, Any]:
    extra = {"TALLYCLERK_FAULT": fault} if fault else {}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([str(p) for p in paths]),
         f"sqlite:///{work / 't.db'}", json.dumps(SCHEMA)],
        cwd=work, env=env_for(**extra), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return out


def _batch_row(db: Path, batch_id: str) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        row = con.execute(
            "SELECT rows_read, rows_written, rows_rejected, rows_rolled_back, files_loaded, "
            "files_failed, files_skipped FROM tallyclerk_batches WHERE id = ?", (batch_id,)
        ).fetchone()
    finally:
        con.close()
    keys = ("rows_read", "rows_written", "rows_rejected", "rows_rolled_back", "files_loaded",
            "files_failed", "files_skipped")
    return dict(zip(keys, row, strict=True))


def _data(work: Path) -> list[Path]:
    good = write_csv(work / "a.csv", [(i, f"a{i}", i) for i in range(1, 121)])
    # every 10th amount negative (minimum 0), every 25th id not a number: 12 + 4 rejected
    bad = write_csv(work / "b.csv", [
        ("x" if i % 25 == 0 else i, f"b{i}", -1 if i % 10 == 3 else i) for i in range(1, 101)])
    small = write_csv(work / "c.csv", [(i, f"c{i}", i) for i in range(1, 61)])
    return [good, bad, small]


TOTALS = ("rows_read", "rows_written", "rows_rejected", "rows_rolled_back")


@pytest.mark.parametrize("fault", [
    None,
    "batch-written:transient@3",  # a.csv's first attempt rolled back after 3 batches; retried
    "batch-written:transient@5",  # b.csv's first attempt rolled back mid-file; retried
    "before-data-commit:raise@2",  # b.csv fails at its commit: read, rejected, rolled back
    "batch-written:raise@1",  # a.csv fails after its first batch
])
def test_progress_report_batch_row_manifest_and_metrics_agree(
        work: Path, fault: str | None) -> None:
    paths = _data(work)
    seen = _load(work, paths, fault)
    report, progress, prom = seen["report"], seen["progress"], seen["prom"]
    files = report["files"]

    # the manifest (each file's entry): read = written + rejected + rolled back
    for f in files:
        assert f["rows_read"] == f["rows_written"] + f["rows_rejected"] + f["rows_rolled_back"], f
    for f, size in zip(files, (120, 100, 60), strict=True):
        # a loaded file was read whole (a retried one again, from its start); a failed one
        # up to where it failed
        assert f["rows_read"] == size if f["status"] == "loaded" else f["rows_read"] <= size, f
    # the report's totals (the accumulator's) are the sums of the manifest's entries
    for key in TOTALS:
        assert report[key] == sum(f[key] for f in files), key
    failed = sum(f["status"] == "failed" for f in files)
    assert failed == (1 if fault and ":raise" in fault else 0)
    # the batch row is the accumulator's final snapshot
    row = _batch_row(work / "t.db", report["batch_id"])
    assert {k: row[k] for k in TOTALS} == {k: report[k] for k in TOTALS}
    assert (row["files_loaded"], row["files_failed"]) == (3 - failed, failed)
    # the metrics read the same snapshots
    assert {k: prom[k] for k in TOTALS} == {k: float(report[k]) for k in TOTALS}
    assert (prom["loaded"], prom["failed"], prom["skipped"]) == (3 - failed, failed, 0)
    retried = 1 if fault and "transient" in fault else 0
    assert prom["file_attempts"] == 3 + retried
    assert prom["rows_sent"] >= report["rows_written"]
    if retried:
        assert prom["rows_sent"] > report["rows_written"]  # the rolled-back attempt's writes

    # progress: every snapshot's settled totals add up (one event per settled attempt), the
    # files done never go back, and the last one is the report
    assert progress
    for p in progress:
        s = p["snap"]
        assert s["rows_read"] == s["rows_written"] + s["rows_rejected"] + s["rows_rolled_back"]
        assert p["rows_read"] == s["rows_read"] + s["live_rows_read"]
    done = [p["files_done"] for p in progress]
    assert done == sorted(done)
    last = progress[-1]
    assert (last["files_done"], last["rows_read"], last["snap"]["live_rows_read"]) == (
        3, report["rows_read"], 0)
    # progress was shown within files, not only at their ends
    assert any(p["snap"]["live_rows_read"] > 0 for p in progress)


def test_a_skipped_file_counts_once_and_no_rows(work: Path) -> None:
    paths = _data(work)
    _load(work, paths, None)
    again = _load(work, paths, None)
    report, prom = again["report"], again["prom"]
    assert [f["status"] for f in report["files"]] == ["skipped"] * 3
    assert all(report[k] == 0 for k in TOTALS)
    assert (prom["skipped"], prom["loaded"], prom["file_attempts"]) == (3, 0, 0)
    assert again["progress"][-1]["files_done"] == 3
