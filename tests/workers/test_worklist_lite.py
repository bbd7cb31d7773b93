"""The work list on a SQLite store whose audit service runs on plain ``sqlite3``: its Core
statements borrow the service's ``LiteEngine`` connection (no second connection to the file),
in that engine's turns, and do what they do on their own engine."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tallyclerk.audit.liteengine import LiteEngine, ensure_schema_lite
from tallyclerk.dburl import parse_url
from tallyclerk.errors import TransientRepositoryError
from tallyclerk.settings import Settings


def _descriptors(path: Path) -> int:
    real = os.path.realpath(path)
    n = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{name}") == real
        except OSError:
            continue
    return n


def test_the_work_list_borrows_the_lite_engines_connection(tmp_path: Path) -> None:
    from tallyclerk.audit.worklist import WorkList  # adds its table to the models' MetaData

    path = tmp_path / "audit.db"
    url = f"sqlite:///{path}"
    settings = Settings(max_retries=0, busy_timeout_ms=100)
    lite = LiteEngine(parse_url(url), settings)
    ensure_schema_lite(lite)
    work = WorkList(url, settings=settings, owner="h:1", engine=lite)
    try:
        work.register("L", "t", ["a.csv", "b.csv", "a.csv"])
        first = work.take("L", "b" * 32)
        assert first is not None and first.path == "a.csv"
        assert work.finish(first, "loaded", file_id=None)
        assert work.remaining("L") == 1
        assert _descriptors(path) == 1  # the LiteEngine's one connection, nothing else
        # its transactions take the LiteEngine's turn: held by another thread, they wait
        inside, release = threading.Event(), threading.Event()

        def hold() -> None:
            with lite.begin():
                inside.set()
                release.wait(10.0)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert inside.wait(10.0)
            with pytest.raises(TransientRepositoryError, match="not free"):
                work.remaining("L")
        finally:
            release.set()
            holder.join(10.0)
        second = work.take("L", "b" * 32)
        assert second is not None and second.path == "b.csv"
        assert work.take("L", "b" * 32) is None
    finally:
        work.close()
        lite.dispose()
    again = LiteEngine(parse_url(url), settings)
    try:
        with again.begin() as conn:  # all committed
            rows = conn.execute("SELECT path, status FROM tallyclerk_work ORDER BY seq").fetchall()
    finally:
        again.dispose()
    assert rows == [("a.csv", "done"), ("b.csv", "taken")]
