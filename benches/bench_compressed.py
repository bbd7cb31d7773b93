"""Compressed input: a ``.csv.gz`` loaded end to end against the same file uncompressed.

Both sides are ``python3 -m tallyclerk.cli load FILE --table orders --schema schema.json --into
sqlite:///DB`` in a child process (``loadrun.tallyclerk_load``), round after round in rotating
order; the gzip file is the generated CSV compressed at level 6 (gzip's default), cached next
to it. The gzip side pays two decompressions: the content fingerprint at claim time (the
fingerprint of a compressed file is its decompressed text's, see README "Compressed files") and
the load itself.

Target (issue 14): the ``.csv.gz`` at least 0.8x the uncompressed file's speed (rows/s). Quick
mode (100,000 rows) compares the best run net of the best one-row run (start-up is most of a
small load), as ``bench_e2e.py`` does; full mode (``TALLYCLERK_BENCH=full``, 1,000,000 rows)
compares whole-process medians.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conftest as harness
import loadrun

ROWS = harness.size(100_000, 1_000_000)
ROUNDS = 3
PLAIN = "tallyclerk csv"
GZ = "tallyclerk csv.gz"


def gzipped(src: Path) -> Path:
    """``src`` compressed with gzip level 6 (cached beside it)."""
    out = src.with_name(src.name + ".gz")
    if not out.exists():
        tmp = out.with_name(out.name + ".tmp")
        with src.open("rb") as fin, gzip.open(tmp, "wb", compresslevel=6) as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        tmp.replace(out)
    return out


def seconds(runs: dict[str, list], startup: dict[str, list] | None, name: str) -> float:
    if startup is None:
        return loadrun.median_s(runs[name])
    best = min(r.seconds for r in runs[name])
    return max(best - min(r.seconds for r in startup[name]), 1e-3)


def test_gzip_csv_vs_plain_csv(tmp_path: Path) -> None:
    csv_path, _, schema = loadrun.data(ROWS)
    plain = loadrun.tallyclerk_load(PLAIN, schema)
    gz = loadrun.tallyclerk_load(GZ, schema)
    runs = loadrun.rounds([(plain, csv_path), (gz, gzipped(csv_path))], ROUNDS, tmp_path)
    for name, rs in runs.items():
        assert all(r.rows == ROWS for r in rs), f"{name} loaded {[r.rows for r in rs]} rows"
    startup = None
    if harness.QUICK:
        one, _, _ = loadrun.data(1)
        startup = loadrun.rounds([(plain, one), (gz, gzipped(one))], ROUNDS, tmp_path)
    plain_s, gz_s = seconds(runs, startup, PLAIN), seconds(runs, startup, GZ)
    size_mb = csv_path.stat().st_size / 1e6
    gz_mb = gzipped(csv_path).stat().st_size / 1e6
    net = "net of start-up, best of" if startup is not None else "median of"
    harness.check_ratio(
        "compressed: .csv.gz speed / same .csv", plain_s / gz_s, at_least=0.8,
        detail=f"{ROWS:,} rows, {size_mb:.0f} MB csv, {gz_mb:.0f} MB gz; plain "
        f"{ROWS / plain_s:,.0f} rows/s, gz {ROWS / gz_s:,.0f} rows/s ({net} {ROUNDS}); "
        f"{loadrun.load_average()}",
    )
