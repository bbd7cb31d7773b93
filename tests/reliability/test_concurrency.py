"""Two processes, one database: two ``tallyclerk load`` runs started together on the same SQLite
file load each file exactly once; the other run reports it skipped (already loaded, or being
loaded by the other batch). Both exit 0: a skipped file is not a failure."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.reliability.util import (
    check_report,
    cli_argv,
    env_for,
    expected_ids,
    integrity_ok,
    query,
    write_dataset,
    write_schema,
)

FILES = 10
ROWS = 3_000
TABLE = "events"


def _start(cwd: Path, names: list[str]) -> subprocess.Popen[str]:
    args = ["load", *names, "--table", TABLE, "--into", "sqlite:///shared.db", "--schema",
            "schema.json", "--batch-rows", "500", "--json"]
    return subprocess.Popen(cli_argv(*args), cwd=cwd, env=env_for(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param(((0, 10), (0, 10)), id="same-files"),
        pytest.param(((0, 7), (3, 10)), id="overlapping"),
        pytest.param(((0, 10), (9, -1)), id="same-files-reversed"),
    ],
)
def test_two_loads_at_once_load_each_file_exactly_once(
    tmp_path: Path, sets: tuple[tuple[int, int], tuple[int, int]]
) -> None:
    write_schema(tmp_path)
    paths = write_dataset(tmp_path, FILES, ROWS)
    names = [p.name for p in paths]
    (a0, a1), (b0, b1) = sets
    set_a = names[a0:a1]
    set_b = names[b0::-1] if b1 == -1 else names[b0:b1]
    procs = [_start(tmp_path, set_a), _start(tmp_path, set_b)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    reports = [json.loads(out) for out, _err in results]
    loaded_by: dict[str, int] = {}
    for report in reports:
        check_report(report)
        for f in report["files"]:
            assert f["status"] in ("loaded", "skipped"), f
            if f["status"] == "loaded":
                loaded_by[f["path"]] = loaded_by.get(f["path"], 0) + 1
            else:
                assert "already loaded" in f["error"] or "being loaded" in f["error"], f
    wanted = sorted(set(set_a) | set(set_b))
    assert sorted(loaded_by) == wanted
    assert set(loaded_by.values()) == {1}, loaded_by  # never by both
    db = tmp_path / "shared.db"
    integrity_ok(db)
    got = [r[0] for r in query(db, f'SELECT id FROM "{TABLE}" ORDER BY id')]
    assert got == expected_ids(tmp_path / n for n in wanted)
    manifest = query(db, "SELECT path, count(*) FROM tallyclerk_files WHERE status = 'loaded' "
                         "GROUP BY path")
    assert sorted(manifest) == [(n, 1) for n in wanted]
    assert query(db, "SELECT count(*) FROM tallyclerk_files WHERE status = 'loading'") == [(0,)]
