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


def test_columns_are_the_files_keys_even_with_a_schema(tmp_path: Path) -> None:
    # the schema no longer narrows the source: the column contract decides (and records)
    # what becomes of keys the schema lacks, and validation matches columns to fields by name
    p = tmp_path / "x.jsonl"
    p.write_text('{"z": 1, "b": 2, "a": 3}\n', encoding="utf-8")
    schema = TableSchema.text_columns(["a", "b"])
    src, rows, _ = read(p, schema=schema)
    assert src.columns == ["z", "b", "a"]
    assert rows[0][2] == (1, 2, 3)


@pytest.mark.parametrize("first", ["[]", "0", "null", "{}", '"text"', "true"])
def test_a_first_line_that_is_no_object_is_a_rejected_row(tmp_path: Path, first: str) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text(first + '\n{"a": 1}\n', encoding="utf-8")
    src, rows, rejects = read(p)
    assert src.columns == ["a"]
    assert rejects == [(1, 1, "json")]
    assert [r[2] for r in rows if not r[3]] == [(1,)]


def test_keys_that_cannot_be_column_names_reject_their_rows(tmp_path: Path) -> None:
    long_key = "k" * 256
    p = tmp_path / "x.jsonl"
    p.write_text(
        '{"": 1}\n{"a": 2}\n{"_TC_FILE_ID": 3, "a": 4}\n{"A": 5}\n'
        f'{{"{long_key}": 6}}\n{{"a\\u0000b": 7}}\n{{"a": 8, "b": 9}}\n',
        encoding="utf-8",
    )
    src, rows, _ = read(p)
    assert src.columns == ["a", "b"]
    batch_rejects = []
    for b in JsonlSource(str(p)):
        batch_rejects += [(r.record_number, r.rule, r.reason) for r in b.rejects()]
    reasons = {n: reason for n, _rule, reason in batch_rejects}
    assert {rule for _n, rule, _r in batch_rejects} == {"json"}
    assert sorted(reasons) == [1, 3, 4, 5, 6]
    assert "an empty name" in reasons[1]
    assert "tallyclerk's own column" in reasons[3]
    assert "letter case" in reasons[4] and "'a'" in reasons[4]
    assert "longer than 255" in reasons[5]
    assert "NUL" in reasons[6]
    assert [r[2] for r in rows if not r[3]] == [(2, None), (8, 9)]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        JsonlSource(str(tmp_path / "missing.jsonl"))
    with pytest.raises(SourceError, match="directory"):
        JsonlSource(str(tmp_path))
