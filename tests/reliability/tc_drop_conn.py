"""Test plugin (``-p tc_drop_conn``): after the first record batch is written, terminate the
loader's PostgreSQL connections that sit inside a transaction (``pg_terminate_backend`` from a
connection of its own, to ``TC_ADMIN_URL``): a dropped connection mid-load, once."""

from __future__ import annotations

import os
from typing import Any

import psycopg

from tallyclerk.hookspecs import hookimpl

_done = False


@hookimpl
def tallyclerk_rows_written(context: Any, rows: int, seconds: float) -> None:
    global _done
    if _done:
        return
    _done = True
    with psycopg.connect(os.environ["TC_ADMIN_URL"], autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state LIKE 'idle in transaction%' OR (datname = current_database() "
            "AND pid <> pg_backend_pid() AND query ILIKE 'COPY%')"
        ).fetchall()
    with open(os.environ["TC_DROP_LOG"], "a", encoding="utf-8") as f:
        f.write(f"terminated {len(killed)}\n")
