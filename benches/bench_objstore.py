"""Object storage: ``tallyclerk load s3://bucket/orders.csv`` from a local S3-compatible server
(moto, in a process of its own) vs ``tallyclerk load orders.csv`` from the local disk.

Issue 14's target: the S3 load at least 0.7x the speed of the local one, on the same file, in
the same run (whole CLI processes, rounds alternating, as ``bench_e2e``). The object is copied
to a temporary spool with one streamed GET, started on a thread of its own when the load starts
(``tallyclerk.objprefetch``; a plain ``s3://bucket/key`` with botocore's own client,
``tallyclerk.s3get``), and then loaded like a local file (``tallyclerk.objstore``), so the
ratio is botocore's import, the client's creation and the network copy, less what overlaps
the load's set-up, against the load. The peak RSS of both is reported: the copy must not hold the
object in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import s3server

import conftest as harness
import loadrun
import peers

# The target is stated on the 1,000,000-row file, in quick mode too: on a smaller file the S3
# path's fixed costs (importing s3fs, the client, the copy that precedes the load: ~0.55 s)
# dominate, so the ratio falls whenever the local load gets faster (100,000 rows: 0.46x when
# the local load took 0.53 s, 0.32x at 0.27 s, with the same S3 overhead) and stops saying
# anything about the object-store path.
ROWS = 1_000_000
ROUNDS = harness.size(3, 5)
LOCAL, S3 = "tallyclerk_local_disk", "tallyclerk_s3_moto"


@pytest.fixture(scope="module")
def server() -> Iterator[s3server.S3Server]:
    with s3server.server_for_tests() as srv:
        yield srv


def s3_load(schema: Path, url: str, server: s3server.S3Server) -> loadrun.Command:
    env = loadrun.cli_env(**server.env())

    def run(src: Path, db: Path) -> peers.Run:
        loadrun.fresh(db)
        argv = [sys.executable, "-m", "tallyclerk.cli", "load", url, "--table", "orders",
                "--schema", str(schema), "--into", f"sqlite:///{db}"]
        r = peers.run_command(S3, argv, 0, env=env, cwd=db.parent)
        r.rows = loadrun.count_rows(db)
        return r

    return loadrun.Command(S3, run)


def test_s3_at_least_0_7x_local_disk(server: s3server.S3Server,
                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    csv_path, _jsonl, schema = loadrun.data(ROWS)
    client = server.client()
    client.create_bucket(Bucket="bench")
    client.upload_file(str(csv_path), "bench", f"landing/{csv_path.name}")
    url = f"s3://bench/landing/{csv_path.name}"
    work = tmp_path_factory.mktemp("objstore")
    commands = [(loadrun.tallyclerk_load(LOCAL, schema), csv_path),
                (s3_load(schema, url, server), csv_path)]

    runs = loadrun.rounds(commands, ROUNDS, work)

    for name, rs in runs.items():
        assert all(r.rows == ROWS for r in rs), f"{name} loaded {[r.rows for r in rs]} rows"
    local, remote = loadrun.median_s(runs[LOCAL]), loadrun.median_s(runs[S3])
    size_mb = csv_path.stat().st_size / 1e6
    harness.check_ratio(
        f"load {ROWS:,} rows ({size_mb:.0f} MB) from S3 (moto) vs local disk", local / remote,
        at_least=0.7,
        detail=f"local {local:.2f} s, s3 {remote:.2f} s; {loadrun.load_average()}",
    )
    harness.report_ratio(
        "peak RSS, S3 load / local load", loadrun.peak_mb(runs[S3]) / loadrun.peak_mb(runs[LOCAL]),
        detail=f"{loadrun.peak_mb(runs[S3]):.0f} MB vs {loadrun.peak_mb(runs[LOCAL]):.0f} MB",
    )
