"""PostgreSQL benchmarks (issue 7), each a ratio measured in one run on one server.

* ``copy vs psql \\copy``: tallyclerk's COPY path (a thread reading and validating record
  batches in Rust, this one formatting them and streaming them into one ``COPY`` through
  :class:`~tallyclerk.builtins.postgres_sink.PostgresSink`, one transaction) against ``psql
  \\copy`` of the same CSV (no validation). Target: at least 0.7x psql's speed.
* ``copy vs executemany``: the same against Python's ``csv.reader`` + psycopg ``executemany``
  of an ``INSERT`` (one transaction), the usual hand-written loader.
* ``2 workers vs 1``: ``tallyclerk load --workers N`` (CLI, audit store on the same server)
  over the same data split into files; throughput with 2 workers over 1. Both figures are
  printed. On a 2-core machine the workers share the cores with the server (and each worker
  pays its interpreter start-up), so the floor only guards against the workers serializing
  badly (target 0.75x); with cores to spare the ratio is the speed-up.

Data: ``peers.generate`` (8 columns: integers, floats, short strings, ISO dates, a nullable
column). Run: ``python3 -m pytest benches/bench_postgres.py -p no:randomly -s``
(``TALLYCLERK_BENCH=full`` for 1,000,000 rows). The server is a throwaway cluster started by
``tests/pgserver.py`` (or ``TALLYCLERK_PG_URL``); without one the benchmarks skip, saying why.
"""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The benches' harness is their conftest.py; the PostgreSQL server helper lives in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import conftest as harness
import peers

pytestmark = pytest.mark.postgres

ROWS = harness.size(100_000, 1_000_000)
FILES = 8
CREATE = (
    'CREATE TABLE IF NOT EXISTS "{}" (id bigint, customer_id bigint, amount double precision, '
    "ratio double precision, sku text, region text, order_date date, note text, "
    "_tc_file_id bigint)"
)


@pytest.fixture(scope="module")
def pg_bench() -> Iterator[Any]:
    """A throwaway PostgreSQL server for these benchmarks (tests/pgserver.py)."""
    from tests import pgserver

    with pgserver.server_for_tests() as server:
        yield server


@pytest.fixture(scope="module")
def db(pg_bench: Any) -> Iterator[str]:
    import psycopg

    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(**_kw(pg_bench, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    yield name
    with psycopg.connect(**_kw(pg_bench, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    csv_path, _, schema_path = peers.generate(ROWS, tmp_path_factory.mktemp("pgdata"))
    return csv_path, schema_path


def _kw(server: Any, dbname: str) -> dict[str, Any]:
    return {"host": server.host, "port": server.port, "user": server.user,
            "password": server.password, "dbname": dbname}


def _fresh(server: Any, dbname: str, table: str) -> None:
    import psycopg

    with psycopg.connect(**_kw(server, dbname), autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"'.encode())
        conn.execute(CREATE.format(table).encode())


def _count(server: Any, dbname: str, table: str) -> int:
    import psycopg

    with psycopg.connect(**_kw(server, dbname)) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{table}"'.encode()).fetchone()
    return int(row[0]) if row else 0


def tallyclerk_copy(server: Any, dbname: str, csv_path: Path) -> int:
    """The COPY path as the pipeline runs it: a thread reads and validates record batches
    (Rust, off the interpreter lock) while this one formats them and streams them into one
    COPY through :class:`~tallyclerk.builtins.postgres_sink.PostgresSink`, one transaction.
    The audit store's fixed per-file cost (claim, manifest) is in the workers benchmark."""
    from tallyclerk import CsvReader, TableSchema
    from tallyclerk.audit import FileClaim
    from tallyclerk.builtins.postgres_sink import PostgresSink

    schema = TableSchema.from_json(json.dumps(peers.SCHEMA))
    batches: queue.Queue[Any] = queue.Queue(maxsize=4)

    def read() -> None:
        try:
            for batch in CsvReader(str(csv_path), batch_rows=10_000):
                batch.validate(schema)
                batches.put(batch)
        finally:
            batches.put(None)

    sink = PostgresSink(f"postgresql://{server.user}:{server.password}@{server.host}:"
                        f"{server.port}/{dbname}")
    reader = threading.Thread(target=read, name="bench-reader")
    try:
        sink.prepare("tc", schema)
        fw = sink.begin_file(FileClaim(file_id=1, batch_id="bench", path=str(csv_path),
                                       table="tc", fingerprint="-", size=0, mtime=0.0,
                                       attempt=1, token="-", replaces=()))
        reader.start()
        written = 0
        while (batch := batches.get()) is not None:
            written += fw.write(batch)
        fw.commit()
    finally:
        reader.join()
        sink.close()
    return written


def psql_copy(server: Any, dbname: str, csv_path: Path) -> None:
    columns = ", ".join(peers.COLUMNS)
    subprocess.run(
        ["psql", f"host={server.host} port={server.port} user={server.user} dbname={dbname}",
         "-q", "-v", "ON_ERROR_STOP=1", "-c",
         f"\\copy psql ({columns}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"],
        env={**os.environ, "PGPASSWORD": server.password}, check=True, capture_output=True,
    )


def executemany_insert(server: Any, dbname: str, csv_path: Path) -> int:
    """A hand-written loader: csv.reader, typed values, one executemany, one commit."""
    import psycopg

    rows = []
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for r in reader:
            rows.append((int(r[0]), int(r[1]), float(r[2]) if r[2] else None,
                         float(r[3]) if r[3] else None, r[4] or None, r[5] or None,
                         r[6] or None, r[7] or None, 1))
    with psycopg.connect(**_kw(server, dbname)) as conn, conn.cursor() as cur:
        cur.executemany(
            b'INSERT INTO "em" (id, customer_id, amount, ratio, sku, region, order_date, '
            b"note, _tc_file_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


def test_copy_path_vs_psql_and_executemany(pg_bench: Any, db: str,
                                           data: tuple[Path, Path]) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    csv_path, _ = data

    def ours() -> None:
        _fresh(pg_bench, db, "tc")
        assert tallyclerk_copy(pg_bench, db, csv_path) == ROWS

    def psql() -> None:
        _fresh(pg_bench, db, "psql")
        psql_copy(pg_bench, db, csv_path)

    def em() -> None:
        _fresh(pg_bench, db, "em")
        assert executemany_insert(pg_bench, db, csv_path) == ROWS

    # interleaved rounds: background load on the machine hits all three alike
    t_ours, t_psql, t_em = [], [], []
    for _ in range(3):
        t_ours.append(harness.measure(ours, repeat=1, warmup=0))
        t_psql.append(harness.measure(psql, repeat=1, warmup=0))
    t_em.append(harness.measure(em, repeat=1, warmup=0))
    t_ours.append(harness.measure(ours, repeat=1, warmup=0))
    ours_s, psql_s, em_s = min(t_ours), min(t_psql), min(t_em)
    assert _count(pg_bench, db, "tc") == _count(pg_bench, db, "psql") == ROWS
    detail = f"{ROWS:,} rows: tallyclerk {ROWS / ours_s:,.0f} rows/s"
    harness.check_ratio("postgres: COPY path vs csv + executemany INSERT", em_s / ours_s,
                        at_least=2.0, detail=f"{detail}, executemany {ROWS / em_s:,.0f} rows/s")
    harness.check_ratio("postgres: COPY path vs psql \\copy (no validation)", psql_s / ours_s,
                        at_least=0.7, detail=f"{detail}, psql {ROWS / psql_s:,.0f} rows/s")


def _split(csv_path: Path, directory: Path, parts: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    lines = csv_path.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    size = -(-len(body) // parts)
    paths = []
    for i in range(parts):
        path = directory / f"part-{i:02d}.csv"
        path.write_text(header + "".join(body[i * size:(i + 1) * size]))
        paths.append(path)
    return paths


def test_throughput_with_one_and_two_workers(pg_bench: Any, db: str, data: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    csv_path, schema_path = data
    paths = _split(csv_path, tmp_path / "parts", FILES)
    url = (f"postgresql://{pg_bench.user}:{pg_bench.password}@{pg_bench.host}:"
           f"{pg_bench.port}/{db}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYCLERK_")}

    def load(workers: int, round_no: int) -> None:
        table = f"w{workers}_{round_no}"  # new content for the manifest: nothing to replace
        _fresh(pg_bench, db, table)
        r = subprocess.run(
            [sys.executable, "-m", "tallyclerk.cli", "load", *map(str, paths), "--table", table,
             "--into", url, "--schema", str(schema_path), "--workers", str(workers),
             "--json"],
            env=env, capture_output=True, text=True, timeout=900, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout)["rows_written"] == ROWS

    times: dict[int, list[float]] = {1: [], 2: []}
    for round_no in range(2):
        for workers in (1, 2):
            start = time.perf_counter()
            load(workers, round_no)
            times[workers].append(time.perf_counter() - start)
    one, two = min(times[1]), min(times[2])
    harness.check_ratio(
        "postgres: load --workers 2 vs --workers 1 (throughput)", one / two, at_least=0.75,
        detail=f"{FILES} files, {ROWS:,} rows: 1 worker {ROWS / one:,.0f} rows/s, "
        f"2 workers {ROWS / two:,.0f} rows/s ({os.cpu_count()} cores shared with the server)")
