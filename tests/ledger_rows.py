"""A year of feeds in a few seconds: manifest rows generated directly in SQL.

Used by ``tests/audit/test_query_plans.py`` and ``benches/bench_ledger_growth.py``. The store
must hold one real load (its batch and file rows are the templates); the generated rows are
copies with new ids, paths and fingerprints, older than the real ones, all ``loaded``, and
counted as sealed into the hash chain (``chain_hash`` set, no chain position: a grown ledger's
rows are sealed long ago, so the seal of the next batch has only that batch's rows to do).
"""

from __future__ import annotations


def grow_sql(files: int, dialect: str) -> list[str]:
    """Statements that add ``files`` manifest rows (file ``i`` in batch ``i / 100``), copied
    from the one real batch and file in the store, older than them."""
    batches = files // 100 + 1
    if dialect == "sqlite":
        def gen(n: int) -> tuple[str, str]:
            return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    f"WHERE i < {n}) ", "n")
        batch_id = "'g' || printf('%031d', {})"
        older = "{}.started_at - (i + 1) * 60000000"  # microseconds since the epoch
        fingerprint = "'xxh3-128:' || printf('%032x', i)"
    else:
        def gen(n: int) -> tuple[str, str]:
            return "", f"generate_series(1, {n}) AS n(i)"
        batch_id = "'g' || lpad(({})::text, 31, '0')"
        older = "{}.started_at - (i + 1) * interval '1 minute'"
        fingerprint = "'xxh3-128:' || lpad(to_hex(i), 32, '0')"
    with_b, from_b = gen(batches)
    with_f, from_f = gen(files)
    return [
        f"{with_b}INSERT INTO tallyclerk_batches (id, target_table, status, started_at, "
        "finished_at, files_started, files_loaded, files_skipped, files_failed, rows_read, "
        "rows_written, rows_rejected, bytes_read, host, pid, \"user\", options, chain_hash) "
        f"SELECT {batch_id.format('i')}, b.target_table, b.status, {older.format('b')}, "
        f"{older.format('b')}, 100, 100, 0, 0, 2000, 2000, 0, 40000, b.host, b.pid, "
        f"b.\"user\", b.options, 'generated' "
        f"FROM {from_b}, (SELECT * FROM tallyclerk_batches LIMIT 1) AS b",
        f"{with_f}INSERT INTO tallyclerk_files (batch_id, path, size, mtime, fingerprint, "
        "target_table, status, rows_read, rows_written, rows_rejected, bytes_read, attempt, "
        "started_at, finished_at, duration_s, chain_hash) "
        f"SELECT {batch_id.format('i / 100 + 1')}, '/feeds/hourly/' || i || '.csv', f.size, "
        f"f.mtime, {fingerprint}, f.target_table, 'loaded', 20, 20, 0, f.bytes_read, 1, "
        f"{older.format('f')}, {older.format('f')}, 0.01, 'generated' "
        f"FROM {from_f}, (SELECT * FROM tallyclerk_files LIMIT 1) AS f",
    ]


def grow(url: str, files: int) -> None:
    """Add ``files`` generated manifest rows to the store at ``url`` (then ANALYZE)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for stmt in grow_sql(files, engine.dialect.name):
                conn.exec_driver_sql(stmt)
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def grow_target(url: str, table: str, files: int) -> None:
    """Add one row of each of ``files`` generated files to ``table`` (``_tc_file_id`` -1 to
    -``files``; the table's other columns as the real load made them, NULL), then ANALYZE."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            rows = (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    f"WHERE i < {files}) ", "n")
        else:
            rows = ("", f"generate_series(1, {files}) AS n(i)")
        quoted = '"' + table.replace('"', '""') + '"'
        with engine.begin() as conn:
            conn.exec_driver_sql(f"{rows[0]}INSERT INTO {quoted} (_tc_file_id) "
                                 f"SELECT -i FROM {rows[1]}")
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"ANALYZE {quoted}")
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql(f"ANALYZE {quoted}")
    finally:
        engine.dispose()
