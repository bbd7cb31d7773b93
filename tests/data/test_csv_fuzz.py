"""Hypothesis fuzzing of the CSV reader.

* Random bytes: the reader never crashes and never raises anything but ``SourceError`` (or
  ``ConfigError`` for options); every batch is self-consistent.
* Well-formed CSV written by Python's ``csv.writer`` (quotes, delimiters, CR/LF/CRLF inside
  fields, non-ASCII, NUL, a BOM, CRLF or LF line ends, any delimiter) reads back with the same
  values, the same record numbers and the same physical start lines.

Cases the fuzzer found are kept as ``@example`` regressions.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tallyclerk._core import CsvReader, RecordBatch, TableSchema
from tallyclerk.errors import SourceError

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
TYPED = TableSchema.from_json(json.dumps({"fields": [
    {"name": "a", "type": "integer"}, {"name": "b", "type": "number"},
    {"name": "c", "type": "datetime"}, {"name": "d", "type": "date"},
    {"name": "e", "type": "boolean", "constraints": {"required": True}},
]}))


def breaks(text: str) -> int:
    """Physical line breaks: CRLF, LF and lone CR each count once."""
    return text.count("\r") + text.count("\n") - text.count("\r\n")


def check_batches(batches: list[RecordBatch]) -> None:
    numbers = [n for b in batches for n in b.record_numbers()]
    assert numbers == list(range(1, len(numbers) + 1))
    lines = [n for b in batches for n in b.lines()]
    assert lines == sorted(lines) and all(n >= 1 for n in lines)
    assert len(set(lines)) == len(lines), "two records cannot start on the same line"
    for b in batches:
        assert b.num_valid + b.num_rejected == b.num_rows
        for r in b.rejects():
            assert r.rule in {"row-length", "encoding"}
            assert isinstance(r.raw, str)


@FUZZ
@given(data=st.binary(max_size=400), batch_rows=st.integers(1, 5),
       max_field=st.sampled_from([3, 16, 1 << 24]),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "cp1252"]))
@example(data=b'a,b\n"x', batch_rows=1, max_field=1 << 24, encoding="utf-8")
@example(data=b"a,b\n1,\xc3,\xa9\n", batch_rows=1, max_field=1 << 24, encoding="utf-8")
@example(data=b"\xff\xfea\x00\n\x00\x00\xd8", batch_rows=2, max_field=16, encoding="utf-8")
@example(data=b"a\r\r\n\r1\r", batch_rows=1, max_field=3, encoding="utf-8")
def test_random_bytes_never_crash(tmp_path: Path, data: bytes, batch_rows: int,
                                  max_field: int, encoding: str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    batches: list[RecordBatch] = []
    try:
        reader = CsvReader(str(path), batch_rows=batch_rows, max_field_bytes=max_field,
                           encoding=encoding)
        for b in reader:
            batches.append(b)
            # validation and every accessor survive whatever was read
            b.validate(TableSchema.text_columns(reader.header))
            b.rows()
            for i in range(len(b)):
                b.raw(i)
    except SourceError as e:
        assert e.path == str(path)
    check_batches(batches)


@FUZZ
@given(cells=st.lists(st.lists(st.text(max_size=6), min_size=2, max_size=2), max_size=20))
def test_random_text_through_a_typed_schema(tmp_path: Path, cells: list[list[str]]) -> None:
    rows = [[a, b, a, b, a] for a, b in cells]
    batch = RecordBatch.from_rows(["a", "b", "c", "d", "e"], rows, list(range(len(rows))),
                                  list(range(len(rows))))
    rejected = batch.validate(TYPED)
    assert rejected == batch.num_rejected <= len(rows)
    for r in batch.rejects():
        assert r.rule in {"type", "required"} and r.column in {"a", "b", "c", "d", "e"}


FIELD = st.text(alphabet=st.sampled_from(list('ab é😀,;|\t"\'\r\n\x00')), max_size=8)


@FUZZ
@given(
    ncols=st.integers(1, 4),
    body=st.lists(st.lists(FIELD, min_size=4, max_size=4), max_size=25),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    terminator=st.sampled_from(["\r\n", "\n"]),
    bom=st.booleans(),
    quote_all=st.booleans(),
    batch_rows=st.integers(1, 7),
    blank_every=st.integers(0, 4),
)
@example(ncols=1, body=[[""] * 4], delimiter=",", terminator="\n", bom=False,
         quote_all=False, batch_rows=1, blank_every=0)
@example(ncols=2, body=[["\r", "x"] * 2], delimiter=",", terminator="\r\n", bom=True,
         quote_all=False, batch_rows=1, blank_every=1)
@example(ncols=1, body=[["\r", "", "", ""]], delimiter=",", terminator="\n", bom=False,
         quote_all=False, batch_rows=1, blank_every=0)
def test_python_csv_round_trips(tmp_path: Path, ncols: int, body: list[list[str]],
                                delimiter: str, terminator: str, bom: bool, quote_all: bool,
                                batch_rows: int, blank_every: int) -> None:
    header = [f"col{i}" for i in range(ncols)]
    rows = [r[:ncols] for r in body]
    if terminator == "\n":
        # csv.writer quotes only the lineterminator's characters: a bare CR would be written
        # unquoted, which no reader can tell from a line end (not RFC 4180).
        rows = [[f.replace("\r", "") for f in r] for r in rows]
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator=terminator,
                   quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    w.writerow(header)
    expected_lines = []
    for i, row in enumerate(rows):
        if blank_every and i % blank_every == 0:
            out.write(terminator)  # a blank line: skipped, but it still counts as a line
        expected_lines.append(breaks(out.getvalue()) + 1)
        w.writerow(row)
    text = out.getvalue()
    path = tmp_path / "rt.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())

    reader = CsvReader(str(path), delimiter=delimiter, batch_rows=batch_rows)
    assert reader.header == header
    batches = list(reader)
    check_batches(batches)
    assert [tuple(r) for r in rows] == [row for b in batches for row in b.rows()]
    assert expected_lines == [n for b in batches for n in b.lines()]
    assert all(b.num_rejected == 0 for b in batches)
    assert reader.bytes_read == path.stat().st_size


@FUZZ
@given(
    ncols=st.integers(1, 3),
    body=st.lists(st.tuples(st.lists(FIELD, min_size=4, max_size=4), st.booleans()),
                  min_size=1, max_size=15),
    terminator=st.sampled_from(["\r\n", "\n"]),
)
def test_rows_of_the_wrong_length_keep_their_raw_text(
        tmp_path: Path, ncols: int, body: list[tuple[list[str], bool]], terminator: str) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator=terminator)
    w.writerow([f"c{i}" for i in range(ncols)])
    expected = []
    for fields, wrong in body:
        row = [f.replace("\r", "") if terminator == "\n" else f for f in fields]
        row = row[: ncols + 1] if wrong else row[:ncols]
        start = len(out.getvalue())
        w.writerow(row)
        expected.append(out.getvalue()[start:].removesuffix(terminator) if wrong else None)
    path = tmp_path / "raw.csv"
    path.write_text(out.getvalue(), newline="")
    batches = list(CsvReader(str(path), batch_rows=4))
    got: list[str | None] = []
    for b in batches:
        rejects = {r.index: r for r in b.rejects()}
        for i in range(len(b)):
            r = rejects.get(i)
            assert r is None or r.rule == "row-length"
            got.append(r.raw if r else None)
    assert got == expected
