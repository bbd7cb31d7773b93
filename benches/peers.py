"""What users would pick instead of tallyclerk, each loading the same CSV into a SQLite file.

Every peer runs in its own process (``python3 benches/peers.py NAME CSV DB``) so that its peak
RSS is measured alone; :func:`run` starts it and returns wall time, rows and peak RSS. The data
comes from :func:`generate`: deterministic rows of 8 columns (integers, floats, short strings,
ISO dates and a nullable column), about 80 bytes a row.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ["id", "customer_id", "amount", "ratio", "sku", "region", "order_date", "note"]
SQL_COLUMNS = (
    '"id" INTEGER, "customer_id" INTEGER, "amount" REAL, "ratio" REAL, "sku" TEXT, '
    '"region" TEXT, "order_date" TEXT, "note" TEXT'
)
SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "minimum": 0}},
        {"name": "customer_id", "type": "integer", "constraints": {"required": True}},
        {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
        {"name": "ratio", "type": "number"},
        {"name": "sku", "type": "string", "constraints": {"maxLength": 16}},
        {"name": "region", "type": "string",
         "constraints": {"enum": ["north", "south", "east", "west", "central"]}},
        {"name": "order_date", "type": "date"},
        {"name": "note", "type": "string"},
    ]
}
REGIONS = ["north", "south", "east", "west", "central"]


def generate(rows: int, directory: Path, seed: int = 20261122) -> tuple[Path, Path, Path]:
    """Write ``data.csv``, ``data.jsonl`` and ``schema.json`` (cached per size and seed)."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / f"orders-{rows}-{seed}.csv"
    jsonl_path = directory / f"orders-{rows}-{seed}.jsonl"
    schema_path = directory / "orders.schema.json"
    schema_path.write_text(json.dumps(SCHEMA, indent=2))
    if csv_path.exists() and jsonl_path.exists():
        return csv_path, jsonl_path, schema_path
    rng = random.Random(seed)
    tmp_csv = csv_path.with_name(csv_path.name + ".tmp")
    tmp_jsonl = jsonl_path.with_name(jsonl_path.name + ".tmp")
    with open(tmp_csv, "w", newline="") as fc, open(tmp_jsonl, "w") as fj:
        w = csv.writer(fc)
        w.writerow(COLUMNS)
        for i in range(rows):
            amount = round(rng.uniform(0, 5000), 2)
            ratio = rng.random()
            sku = f"SKU-{rng.randrange(100000):05d}"
            day = f"20{rng.randrange(15, 27)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
            note = "" if rng.random() < 0.3 else f"note {rng.randrange(1000)}"
            row = [i, rng.randrange(1, 50000), amount, ratio, sku, rng.choice(REGIONS), day, note]
            w.writerow(row)
            fj.write(json.dumps(dict(zip(COLUMNS, [*row[:7], note or None], strict=True))))
            fj.write("\n")
    tmp_csv.rename(csv_path)
    tmp_jsonl.rename(jsonl_path)
    return csv_path, jsonl_path, schema_path


# --- the peers (each runs in a child process) --------------------------------------------------


def _create(con: sqlite3.Connection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS orders ({SQL_COLUMNS})")


def csv_executemany(src: str, db: str) -> int:
    """Python csv.reader + sqlite3 executemany in one transaction: the raw Python limit."""
    con = sqlite3.connect(db, isolation_level=None)
    _create(con)
    with open(src, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        con.execute("BEGIN")
        cur = con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", reader)
        n = cur.rowcount
        con.execute("COMMIT")
    return n


def orjson_executemany(src: str, db: str) -> int:
    """orjson.loads per line + sqlite3 executemany in one transaction (the JSONL limit)."""
    import orjson

    con = sqlite3.connect(db, isolation_level=None)
    _create(con)
    with open(src, "rb") as f:
        con.execute("BEGIN")
        rows = (tuple(orjson.loads(line).get(c) for c in COLUMNS) for line in f)
        cur = con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", rows)
        n = cur.rowcount
        con.execute("COMMIT")
    return n


def sqlite_cli_import(src: str, db: str) -> int:
    """The sqlite3 command-line shell's .import."""
    con = sqlite3.connect(db)
    _create(con)
    con.close()
    script = f".mode csv\n.import --skip 1 '{src}' orders\n"
    subprocess.run(["sqlite3", db], input=script, text=True, check=True)
    con = sqlite3.connect(db)
    return int(con.execute("select count(*) from orders").fetchone()[0])


def sqlalchemy_core(src: str, db: str) -> int:
    """SQLAlchemy Core executemany in chunks of 10,000, one transaction."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db}")
    md = sa.MetaData()
    t = sa.Table("orders", md, *(sa.Column(c, sa.Text) for c in COLUMNS))
    md.create_all(engine)
    n = 0
    with engine.begin() as conn, open(src, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        chunk: list[dict[str, str]] = []
        for row in reader:
            chunk.append(dict(zip(COLUMNS, row, strict=True)))
            if len(chunk) == 10000:
                conn.execute(t.insert(), chunk)
                n += len(chunk)
                chunk = []
        if chunk:
            conn.execute(t.insert(), chunk)
            n += len(chunk)
    return n


def pandas_sqlalchemy(src: str, db: str) -> int:
    import pandas as pd
    import sqlalchemy as sa

    df = pd.read_csv(src)
    engine = sa.create_engine(f"sqlite:///{db}")
    df.to_sql("orders", engine, if_exists="append", index=False, chunksize=10000)
    return len(df)


def pandas_sqlite3(src: str, db: str) -> int:
    import pandas as pd

    df = pd.read_csv(src)
    con = sqlite3.connect(db)
    df.to_sql("orders", con, if_exists="append", index=False)
    con.commit()
    return len(df)


def _dlt_pipeline(db: str):  # type: ignore[no-untyped-def]
    import dlt

    workdir = tempfile.mkdtemp(prefix="dlt-bench-")
    return dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=workdir,
        destination=dlt.destinations.sqlalchemy(f"sqlite:///{db}"),
        dataset_name="main",
    )


def dlt_dicts(src: str, db: str) -> int:
    def rows():  # type: ignore[no-untyped-def]
        with open(src, newline="") as f:
            yield from csv.DictReader(f)

    info = _dlt_pipeline(db).run(rows(), table_name="orders")
    info.raise_on_failed_jobs()
    con = sqlite3.connect(db)
    return int(con.execute("select count(*) from orders").fetchone()[0])


def dlt_arrow(src: str, db: str) -> int:
    import pyarrow.csv as pacsv

    def tables():  # type: ignore[no-untyped-def]
        yield from pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=8 << 20))

    info = _dlt_pipeline(db).run(tables(), table_name="orders")
    info.raise_on_failed_jobs()
    con = sqlite3.connect(db)
    return int(con.execute("select count(*) from orders").fetchone()[0])


def polars_adbc(src: str, db: str) -> int:
    import polars as pl

    df = pl.read_csv(src)
    df.write_database("orders", f"sqlite:///{db}", engine="adbc", if_table_exists="append")
    return df.height


def duckdb_attach(src: str, db: str) -> int:
    import duckdb
    import duckdb_ext

    ext = Path(next(iter(duckdb_ext.__path__))) / "extensions"
    found = sorted(ext.glob(f"v{duckdb.__version__}/*/sqlite_scanner.duckdb_extension"))
    if not found:
        raise RuntimeError(f"no sqlite_scanner extension for duckdb {duckdb.__version__}")
    con = duckdb.connect()
    con.execute(f"LOAD '{found[0]}'")
    con.execute(f"ATTACH '{db}' AS s (TYPE sqlite)")
    con.execute(f"CREATE TABLE s.orders AS SELECT * FROM read_csv('{src}', header=true)")
    return int(con.execute("SELECT count(*) FROM s.orders").fetchone()[0])  # type: ignore[index]


PEERS: dict[str, Callable[[str, str], int]] = {
    "csv_executemany": csv_executemany,
    "orjson_executemany": orjson_executemany,
    "sqlite_cli_import": sqlite_cli_import,
    "sqlalchemy_core": sqlalchemy_core,
    "pandas_sqlalchemy": pandas_sqlalchemy,
    "pandas_sqlite3": pandas_sqlite3,
    "dlt_dicts": dlt_dicts,
    "dlt_arrow": dlt_arrow,
    "polars_adbc": polars_adbc,
    "duckdb_attach": duckdb_attach,
}


# --- running a process and measuring it -------------------------------------------------------


@dataclass
class Run:
    name: str
    seconds: float
    rows: int
    peak_rss_mb: float
    cpu_s: float = 0.0  # user + system CPU seconds of the command (and its waited children)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# Linux keeps a process's peak RSS across exec, and a forked (or vforked) child starts with
# its parent's pages: a child spawned straight from the benchmark process would report at least
# the benchmark process's own RSS (100 MB and more once data was loaded). So each command is
# started by this small launcher (``python3 -S``, about 9 MB), which forks, execs the command,
# and reports the command's wall time and its own wait4 peak RSS.
_LAUNCHER = """
import os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - t0
with open(out, "w") as f:
    f.write(f"{seconds!r} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} "
            f"{usage.ru_utime + usage.ru_stime!r}")
"""


def run_command(name: str, argv: list[str], rows: int | None = None,
                env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run ``argv`` as a child: wall time, and the child's own peak RSS (wait4 in a small
    launcher, see ``_LAUNCHER``).

    ``rows`` is taken from the last line the child prints when not given.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".run") as report:
        proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, report.name, *argv],
                              stdout=out, stderr=err, env=env, cwd=cwd, check=False)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        fields = report.read().split()
    if proc.returncode != 0 or len(fields) != 4 or fields[2] != "0":
        code = fields[2] if len(fields) == 4 else proc.returncode
        raise RuntimeError(f"{name} failed ({code}): {stderr[-2000:]}")
    n = rows if rows is not None else int(stdout.strip().splitlines()[-1])
    return Run(name, float(fields[0]), n, int(fields[1]) / 1024, float(fields[3]))


def run_peer(name: str, src: Path, db: Path) -> Run:
    """Run one peer in a fresh process on a fresh database file."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return run_command(name, [sys.executable, __file__, name, str(src), str(db)])


def main() -> None:
    name, src, db = sys.argv[1:4]
    rows = PEERS[name](src, db)
    sys.stdout.write(f"{rows}\n")


if __name__ == "__main__":
    main()
