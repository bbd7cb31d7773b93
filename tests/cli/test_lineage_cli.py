"""Lineage: ``tallyclerk status --file PATH`` (a file's whole history), ``tallyclerk.file_history``
and the ``tallyclerk_lineage`` view, on real SQLite files through the real CLI."""

from __future__ import annotations

from pathlib import Path

import tallyclerk
from tests.cli.conftest import assert_one_line_error, query
from tests.cli.conftest import tallyclerk as cli


def _load(work: Path, *args: str) -> None:
    r = cli("load", *args, "--schema", "schema.json", cwd=work)
    assert r.code == 0, r.err


def test_status_file_shows_loads_skips_and_replacements(work: Path) -> None:
    _load(work, "a.csv", "--table", "t")
    _load(work, "a.csv", "--table", "t")  # skipped
    _load(work, "a.csv", "--table", "t", "--force")  # replaces the first load
    r = cli("status", "--file", "a.csv", "--json", cwd=work)
    assert r.code == 0, r.err
    history = r.json()["history"]
    assert [h["status"] for h in history] == ["replaced", "skipped", "loaded"]
    first, skip, forced = history
    assert first["replaced_by"] == forced["file_id"]
    assert skip["earlier_batch_id"] == first["batch_id"] and "already loaded" in skip["error"]
    assert forced["attempt"] == 2 and forced["rows_written"] == 5
    assert len({h["batch_id"] for h in history}) == 3
    text = cli("status", "--file", "a.csv", cwd=work)
    assert text.code == 0 and text.out.count("\n") == 4  # a header and three rows
    assert tallyclerk.file_history("a.csv", audit=f"sqlite:///{work / 'tallyclerk.db'}") == history


def test_status_file_of_an_unknown_file_is_a_usage_error(work: Path) -> None:
    _load(work, "a.csv", "--table", "t")
    assert_one_line_error(cli("status", "--file", "nope.csv", cwd=work))


def test_the_lineage_view_joins_rows_to_their_load(work: Path) -> None:
    _load(work, "a.csv", "b.csv", "--table", "t")
    db = work / "tallyclerk.db"
    rows = query(db, 'SELECT t.id, l.path, l.batch_id, l.file_status, l.loaded_at '
                     'FROM "t" t JOIN tallyclerk_lineage l ON l.file_id = t._tc_file_id '
                     "ORDER BY t.id")
    assert len(rows) == 9  # every row written (5 + 4), each with its file and batch
    assert {r[1] for r in rows} == {"a.csv", "b.csv"}
    batch = query(db, "SELECT id FROM tallyclerk_batches")[0][0]
    assert {r[2] for r in rows} == {batch} and {r[3] for r in rows} == {"loaded"}
    assert all(r[4] is not None for r in rows)
