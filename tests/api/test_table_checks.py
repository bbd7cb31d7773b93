"""The SQLite sink checks its table's DDL once, not in every file's transaction: a table
dropped, re-created or stripped of its index by another connection between two files of one
load is noticed (the schema cookie moved) and the next file re-creates it or fails with a
clear error; nothing is skipped silently."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tallyclerk
from tallyclerk import hookimpl, modes
from tests.api.conftest import count_rows, write_csv


class AfterFirstFile:
    """Runs ``change`` (another connection to the target) once, when the first file finished."""

    def __init__(self, db: Path, change: Callable[[sqlite3.Connection], None]) -> None:
        self.db, self.change, self.done = db, change, False

    @hookimpl
    def tallyclerk_file_finish(self, context: Any, status: str, result: Any) -> None:
        if self.done:
            return
        self.done = True
        con = sqlite3.connect(self.db, timeout=10)
        try:
            with con:
                self.change(con)
        finally:
            con.close()


def _files(tmp_path: Path, n: int = 3) -> list[Path]:
    return [write_csv(tmp_path / f"f{k}.csv", [(k * 10 + i, f"n{i}", i) for i in range(5)])
            for k in range(n)]


def _index_names(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 't'")}
    finally:
        con.close()


def _load(tmp_path: Path, plugin: AfterFirstFile, **kw: Any) -> tallyclerk.LoadReport:
    return tallyclerk.load(_files(tmp_path), table="t", into=f"sqlite:///{tmp_path / 't.db'}",
                           schema=tmp_path / "schema.json", plugins=[plugin], **kw)


def test_a_table_dropped_between_two_files_is_created_again(work: Path) -> None:
    db = work / "t.db"
    plugin = AfterFirstFile(db, lambda con: con.execute('DROP TABLE "t"'))
    report = _load(work, plugin)
    assert plugin.done
    assert report.status == "succeeded"
    assert [f.status for f in report.files] == ["loaded"] * 3
    # the first file's rows went with the dropped table; the next two are in the new one
    assert count_rows(db, "t") == 10
    assert modes.file_id_index_name("t") in _index_names(db)


def test_an_index_dropped_between_two_files_is_created_again(work: Path) -> None:
    db = work / "t.db"
    index = modes.file_id_index_name("t")
    plugin = AfterFirstFile(db, lambda con: con.execute(f'DROP INDEX "{index}"'))
    report = _load(work, plugin)
    assert plugin.done and report.status == "succeeded"
    assert count_rows(db, "t") == 15
    assert index in _index_names(db)


def test_a_table_recreated_without_a_column_fails_the_next_files_clearly(work: Path) -> None:
    db = work / "t.db"

    def narrow(con: sqlite3.Connection) -> None:
        con.execute('DROP TABLE "t"')
        con.execute('CREATE TABLE "t" (id INTEGER, _tc_file_id INTEGER)')

    plugin = AfterFirstFile(db, narrow)
    report = _load(work, plugin)
    assert plugin.done
    assert [f.status for f in report.files] == ["loaded", "failed", "failed"]
    assert report.exit_status == 1
    assert all("without the columns" in (f.error or "") for f in report.files[1:])
    assert count_rows(db, "t") == 0
