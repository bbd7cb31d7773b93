"""The JSONL loader on its own: records, rejects with line numbers, exact big integers,
bounded lines, byte accounting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tallyclerk import TableSchema
from tallyclerk.builtins.jsonl_loader import JsonlSource
from tallyclerk.errors import SourceError

TEXT = (
    '{"a": 1, "b": {"n": [1,2]}}\n'
    "\n"
    "   \n"
    '{"a": 18446744073709551615}\n'
    '{"a": 123456789012345678901234567890, "b": null}\n'
    '{"a": 1e400}\n'
    '{"a": true, "b": "x"}\n'
    "[]\n"
    '{"a": "' + "x" * 200 + '"}\n'
    "null\n"
    '{"a": 2'
)


def read(path: Path, **kw: object) -> tuple[JsonlSource, list[tuple], list[tuple]]:
    src = JsonlSource(str(path), **kw)  # type: ignore[arg-type]
    rows, rejects = [], []
    for b in src:
        nums, lines = b.record_numbers(), b.lines()
        rows += [(nums[i], lines[i], r, b.is_rejected(i)) for i, r in enumerate(b.rows())]
        rejects += [(r.record_number, r.line, r.rule) for r in b.rejects()]
    src.close()
    return src, rows, rejects


def test_records_rejects_and_exact_values(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text(TEXT, encoding="utf-8")
    src, rows, rejects = read(p, max_line_bytes=100, batch_rows=3)
    assert src.columns == ["a", "b"]  # union of keys, first-seen order
    assert [r[:2] for r in rows] == [(n, line) for n, line in
                                     zip(range(1, 10), [1, 4, 5, 6, 7, 8, 9, 10, 11], strict=True)]
    assert rows[0][2] == (1, '{"n":[1,2]}')  # nested values load as JSON text
    assert rows[1][2] == ("18446744073709551615", None)  # beyond i64: exact digits
    assert rows[2][2] == ("123456789012345678901234567890", None)  # not orjson's rounded float
    assert rows[4][2] == (True, "x")
    assert rejects == [(4, 6, "json"), (6, 8, "json"), (7, 9, "line-length"), (8, 10, "json"),
                       (9, 11, "json")]
    assert src.bytes_read == os.path.getsize(p)


def test_schema_fixes_the_columns(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text('{"z": 1, "b": 2, "a": 3}\n', encoding="utf-8")
    schema = TableSchema.text_columns(["a", "b"])
    _, rows, _ = read(p, schema=schema)
    assert rows[0][2] == (3, 2)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        JsonlSource(str(tmp_path / "missing.jsonl"))
    with pytest.raises(SourceError, match="directory"):
        JsonlSource(str(tmp_path))
