"""The hostile input corpus: every file in ``corpus/`` loaded by the real CLI with ``--json``,
against its documented outcome in ``corpus/expected.json`` (explained in ``corpus/EXPECTED.md``).

For every case: the exit code, the file's status and counts, the quarantined rows (record,
column, rule), the error, the table's columns and values where listed; row accounting holds;
stderr never has a traceback; the database passes ``integrity_check`` and holds no object the
loader did not make. The largest inputs (a field over the default 16 MiB limit, more columns
than SQLite can hold) are generated here, not committed.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tallyclerk.audit import lineage
from tallyclerk.audit.models import metadata
from tests.reliability.util import Result, check_report, query, table_exists, tallyclerk

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = EXPECTED["cases"]
TABLE = EXPECTED["table"]
# every table and view of the audit store (from its models, so a new ledger table is known)
AUDIT_TABLES = {*metadata.tables, lineage.VIEW}
NOT_CASES = {"expected.json", "EXPECTED.md", "schema.json", "schema_int.json"}


def _user_tables(db: Path) -> set[str]:
    names = {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type IN "
                                     "('table', 'view', 'trigger')")}
    return {n for n in names if n not in AUDIT_TABLES and not n.startswith("sqlite_")}


def run_case(tmp_path: Path, case: dict[str, Any]) -> Result:
    """Load the case's file alone into a fresh database in ``tmp_path``."""
    name = case["file"]
    src = CORPUS / name
    if src.is_dir():
        shutil.copytree(src, tmp_path / name)
    elif src.exists():
        shutil.copy(src, tmp_path / name)
    args = ["load", name, "--table", TABLE, "--into", "sqlite:///d.db", "--json", *case["args"]]
    if case["schema"]:
        shutil.copy(CORPUS / case["schema"], tmp_path / case["schema"])
        args += ["--schema", case["schema"]]
    return tallyclerk(*args, cwd=tmp_path)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Result]]:
    """Every case run once, a few subprocesses at a time (each in its own directory)."""
    dirs = {c["file"]: tmp_path_factory.mktemp("case") for c in CASES}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {c["file"]: pool.submit(run_case, dirs[c["file"]], c) for c in CASES}
        return {name: (dirs[name], fut.result()) for name, fut in futures.items()}


def check_case(tmp_path: Path, case: dict[str, Any], r: Result) -> None:
    name = case["file"]
    assert "Traceback" not in r.err, r.err
    assert r.code == case["code"], (r.code, r.out, r.err)
    db = tmp_path / "d.db"
    if case["status"] == "refused":
        last = r.err.strip().splitlines()[-1]
        assert last.startswith("tallyclerk: error: ") and case["error"] in last, r.err
        assert r.out == ""
        if db.exists():
            assert query(db, "PRAGMA integrity_check") == [("ok",)]
            assert _user_tables(db) == set()  # nothing written, no table
        return
    report = r.json()
    check_report(report)
    (f,) = report["files"]
    assert f["path"] == name  # paths are shown as given
    assert f["status"] == case["status"], f
    for key in ("rows_read", "rows_written", "rows_rejected"):
        assert f[key] == case[key], (key, f)
    if case["status"] == "failed":
        assert case["error"] in f["error"], f
        assert f["rows_written"] == 0
    else:
        assert f["error"] is None
    if not db.exists():
        return
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    rejects = [list(r) for r in query(
        db, "SELECT record_number, column_name, rule FROM tallyclerk_rejects ORDER BY id")]
    assert rejects == case.get("rejects", []), rejects
    loaded = query(db, "SELECT status, rows_read, rows_written, rows_rejected FROM "
                       "tallyclerk_files WHERE path = ?", (name,))
    for status, read, written, rejected in loaded:
        assert read == written + rejected
        assert status == case["status"]
    if "columns" in case:
        assert table_exists(db, TABLE)
        cur_cols = [r[1] for r in query(db, f'PRAGMA table_info("{TABLE}")')]
        assert cur_cols == [*case["columns"], "_tc_file_id"]
        assert _user_tables(db) == {TABLE}  # nothing injected next to it
    else:
        assert _user_tables(db) == set()
    if "rows" in case:
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in case["columns"])
        got = [list(row) for row in query(db, f'SELECT {cols} FROM "{TABLE}" ORDER BY rowid')]
        assert got == case["rows"]


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_file(case: dict[str, Any], outcomes: dict[str, tuple[Path, Result]]) -> None:
    directory, result = outcomes[case["file"]]
    check_case(directory, case, result)


def test_corpus_is_complete_and_documented() -> None:
    files = {p.name for p in CORPUS.iterdir()} - NOT_CASES
    covered = {c["file"] for c in CASES}
    assert files <= covered, f"corpus files without an expected outcome: {files - covered}"
    assert len(CASES) >= 30
    doc = (CORPUS / "EXPECTED.md").read_text(encoding="utf-8")
    for case in CASES:
        assert f"`{case['file']}`" in doc, f"{case['file']} is not documented in EXPECTED.md"
        assert case["status"] in ("loaded", "failed", "refused")
        assert case["code"] in (0, 1, 2)


def test_corpus_in_one_batch_each_file_keeps_its_outcome(tmp_path: Path) -> None:
    """Files in one load: bad files (headers that cannot be a table included) fail alone,
    the others load."""
    names = ["csv_lf.csv", "csv_crlf.csv", "csv_lone_cr.csv", "csv_unterminated_quote.csv",
             "csv_header_duplicate.csv", "csv_utf16_bom.csv", "does-not-exist.csv",
             "a_directory", "csv_empty.csv", "csv_header_internal_column.csv",
             "csv_header_overlong.csv", "csv_quoted_newlines.csv", "csv_long_rows.csv"]
    by_name = {c["file"]: c for c in CASES}
    for name in names:
        src = CORPUS / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        elif src.exists():
            shutil.copy(src, tmp_path / name)
    r = tallyclerk("load", *names, "--table", TABLE, "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert r.code == 1, r.err
    assert "Traceback" not in r.err
    report = r.json()
    check_report(report)
    assert [f["path"] for f in report["files"]] == names
    for f in report["files"]:
        case = by_name[f["path"]]
        # csv_lf/crlf/lone_cr hold the same records but different bytes: all load
        assert f["status"] == case["status"], f
        assert f["rows_written"] == case["rows_written"], f
    written = sum(by_name[n]["rows_written"] for n in names)
    assert query(tmp_path / "d.db", f'SELECT count(*) FROM "{TABLE}"') == [(written,)]


# --- generated at test time: too big to commit -----------------------------------------------


def test_field_over_the_default_limit_fails_the_file_under_it_loads(tmp_path: Path) -> None:
    limit = 16 * 1024 * 1024
    (tmp_path / "over.csv").write_bytes(b"id,blob\n1," + b"x" * (limit + 1) + b"\n2,y\n")
    (tmp_path / "under.csv").write_bytes(b"id,blob\n1," + b"z" * (1024 * 1024) + b"\n2,y\n")
    r = tallyclerk("load", "over.csv", "under.csv", "--table", TABLE, "--into",
                   "sqlite:///d.db", "--json", cwd=tmp_path)
    assert r.code == 1, r.err
    assert "Traceback" not in r.err
    over, under = r.json()["files"]
    assert over["status"] == "failed" and "larger than max_field_bytes" in over["error"]
    assert under["status"] == "loaded" and under["rows_written"] == 2
    assert query(tmp_path / "d.db", f'SELECT length(blob) FROM "{TABLE}" ORDER BY rowid') == [
        (1024 * 1024,), (1,)
    ]


def test_more_columns_than_sqlite_can_hold_fails_the_file(tmp_path: Path) -> None:
    n = 40_000  # above SQLite's compile-time maximum (32,767) as well as the default 2,000
    header = ",".join(f"c{i}" for i in range(n))
    (tmp_path / "wide.csv").write_text(header + "\n" + ",".join("1" * n) + "\n",
                                       encoding="utf-8")
    r = tallyclerk("load", "wide.csv", "--table", TABLE, "--into", "sqlite:///d.db", "--json",
                   cwd=tmp_path)
    assert "Traceback" not in r.err
    assert r.code == 1, r.err
    (f,) = r.json()["files"]
    assert f["status"] == "failed" and f["rows_written"] == 0
    assert "40001 columns" in f["error"], f
    db = tmp_path / "d.db"
    if db.exists():
        assert not table_exists(db, TABLE)
