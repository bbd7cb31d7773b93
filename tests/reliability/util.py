"""Helpers of the reliability suites: the real CLI in subprocesses, real SQLite files, and the
invariants every suite checks (each source row exactly once, the manifest agrees, integrity)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tests import clirun
from tests.clirun import ROOT, SCHEMA, Result, cli_argv, query, run_cli

HERE = Path(__file__).resolve().parent

__all__ = ["ROOT", "SCHEMA", "Result", "cli_argv", "env_for", "query", "tallyclerk"]


def env_for(**extra: str) -> dict[str, str]:
    """The environment of a CLI run, with this suite's test plugins importable for ``-p``."""
    return clirun.env_for(HERE, **extra)


def tallyclerk(*args: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 120) -> Result:
    return run_cli(*args, cwd=cwd, env=env or env_for(), timeout=timeout)


def write_schema(directory: Path, schema: dict[str, Any] | None = None) -> Path:
    path = directory / "schema.json"
    path.write_text(json.dumps(schema or SCHEMA), encoding="utf-8")
    return path


def bad_row(row_id: int) -> bool:
    """Rows the schema rejects (negative amount): every 997th id."""
    return row_id % 997 == 0


def write_dataset(directory: Path, files: int, rows_per_file: int) -> list[Path]:
    """``files`` CSV files of ``rows_per_file`` rows each; ``id`` is unique across all files."""
    paths = []
    row_id = 0
    for f in range(files):
        path = directory / f"part-{f:03d}.csv"
        lines = ["id,name,amount"]
        for _ in range(rows_per_file):
            amount = -1 if bad_row(row_id) else row_id % 1000
            lines.append(f"{row_id},name-{row_id},{amount}")
            row_id += 1
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def table_exists(db: Path, table: str) -> bool:
    return bool(query(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)))


def integrity_ok(db: Path) -> None:
    assert query(db, "PRAGMA integrity_check") == [("ok",)], db


def assert_no_duplicates(data_db: Path, table: str) -> None:
    """Invariant at every moment, even right after a SIGKILL: no source row twice."""
    if not table_exists(data_db, table):
        return
    (n, distinct), = query(data_db, f'SELECT count(*), count(DISTINCT id) FROM "{table}"')
    assert n == distinct, f"{n - distinct} duplicated rows in {table}"


def expected_ids(paths: Iterable[Path]) -> list[int]:
    ids = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            row_id = int(line.split(",", 1)[0])
            if not bad_row(row_id):
                ids.append(row_id)
    return sorted(ids)


def check_exactly_once(
    data_db: Path, audit_db: Path, table: str, paths: Sequence[Path], rows_per_file: int
) -> None:
    """The end state after a run to completion (the crash suite's oracle).

    Every valid source row is in ``table`` exactly once; the manifest has one ``loaded`` row
    per file and none ``loading``; its counts agree with the table, the rejects and the source
    (rows_read = rows_written + rows_rejected); both databases pass ``integrity_check``.
    """
    integrity_ok(data_db)
    if audit_db != data_db:
        integrity_ok(audit_db)
    got = [r[0] for r in query(data_db, f'SELECT id FROM "{table}" ORDER BY id')]
    want = expected_ids(paths)
    dup = [i for i, c in Counter(got).items() if c > 1]
    assert not dup, f"{len(dup)} rows doubled, e.g. {dup[:5]}"
    missing = sorted(set(want) - set(got))
    assert not missing, f"{len(missing)} rows lost, e.g. {missing[:5]}"
    assert got == want
    manifest = query(
        audit_db,
        "SELECT id, path, status, rows_read, rows_written, rows_rejected FROM tallyclerk_files "
        "WHERE target_table = ?",
        (table,),
    )
    assert not [m for m in manifest if m[2] == "loading"], manifest
    loaded = [m for m in manifest if m[2] == "loaded"]
    by_path = Counter(m[1] for m in loaded)
    names = sorted(p.name for p in paths)
    assert sorted(os.path.basename(p) for p in by_path) == names, by_path
    assert all(c == 1 for c in by_path.values()), by_path
    per_file = dict(query(data_db, f'SELECT _tc_file_id, count(*) FROM "{table}" GROUP BY 1'))
    rejects = dict(query(audit_db, "SELECT file_id, count(*) FROM tallyclerk_rejects GROUP BY 1"))
    assert set(per_file) == {m[0] for m in loaded}, "rows tagged with a file id not loaded"
    for file_id, _path, _status, read, written, rejected in loaded:
        assert read == rows_per_file
        assert read == written + rejected
        assert per_file[file_id] == written
        assert rejects.get(file_id, 0) == rejected


def check_report(report: dict[str, Any]) -> None:
    """The CLI contract: rows_read = rows_written + rows_rejected + rows_rolled_back for loaded
    and failed files; a loaded file rolls nothing back, a failed one writes nothing."""
    assert set(report) >= {"batch_id", "status", "table", "rows_read", "rows_written",
                           "rows_rejected", "rows_rolled_back", "files"}, report
    assert report["rows_read"] == (
        report["rows_written"] + report["rows_rejected"] + report["rows_rolled_back"]
    ), report
    for f in report["files"]:
        assert f["status"] in ("loaded", "skipped", "failed"), f
        if f["status"] in ("loaded", "failed"):
            assert f["rows_read"] == (
                f["rows_written"] + f["rows_rejected"] + f["rows_rolled_back"]
            ), f
        if f["status"] == "loaded":
            assert f["rows_rolled_back"] == 0, f
        if f["status"] == "failed":
            assert f["rows_written"] == 0, f
