"""Fuzzing the readers (hypothesis): random bytes and mutations of valid files through the public
:class:`tallyclerk.CsvReader`, the JSONL loader plugin and the CLI.

Oracles: a reader either yields record batches whose accounting holds (every record valid or
rejected, record numbers consecutive from 1) or raises :class:`~tallyclerk.errors.SourceError`
(never another exception, never a crash); a valid CSV written by Python's ``csv`` module reads
back exactly; the CLI exits 0 or 1 with a consistent report and no traceback.

Inputs a run finds are shrunk by hypothesis and belong in ``corpus/`` as ``fuzz_*`` files with
their expected outcome (see ``corpus/EXPECTED.md``). More examples:
``TALLYCLERK_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tallyclerk import CsvReader, RecordBatch
from tallyclerk.builtins.jsonl_loader import tallyclerk_open_source as open_jsonl
from tallyclerk.errors import SourceError
from tests.reliability.util import check_report, tallyclerk

EXAMPLES = int(os.environ.get("TALLYCLERK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _file(data: bytes, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _check_batches(batches: Iterable[RecordBatch]) -> list[tuple[Any, ...]]:
    """Accounting of a stream of batches; returns the valid rows."""
    expected_record = 1
    valid: list[tuple[Any, ...]] = []
    for batch in batches:
        assert batch.num_rows == batch.num_valid + batch.num_rejected
        numbers = batch.record_numbers()
        assert numbers == list(range(expected_record, expected_record + batch.num_rows))
        expected_record += batch.num_rows
        rejected = {r.index for r in batch.rejects()}
        assert len(rejected) == batch.num_rejected
        for r in batch.rejects():
            assert r.rule and r.reason
        valid.extend(row for i, row in enumerate(batch.rows()) if i not in rejected)
    return valid


def read_csv(data: bytes, **kwargs: Any) -> list[tuple[Any, ...]] | None:
    """The valid rows, or None when the reader refused the file with a SourceError."""
    path = _file(data, ".csv")
    try:
        reader = CsvReader(path, batch_rows=7, **kwargs)
        return _check_batches(reader)
    except SourceError as exc:
        assert str(exc)  # a message naming the file and the reason
        return None
    finally:
        os.unlink(path)


def read_jsonl(data: bytes) -> list[tuple[Any, ...]] | None:
    path = _file(data, ".jsonl")
    try:
        source = open_jsonl(path=path, options={"batch_rows": 5})
        assert source is not None
        try:
            return _check_batches(source)
        finally:
            source.close()
    except SourceError as exc:
        assert str(exc)
        return None
    finally:
        os.unlink(path)


# --- CSV -------------------------------------------------------------------------------------

CSV_BYTES = st.one_of(
    st.binary(max_size=600),
    # bytes from a CSV-ish alphabet reach the parser's states far more often
    st.lists(st.sampled_from([b",", b'"', b"\n", b"\r", b"\r\n", b"a", b"1", b"\x00", b"\xff",
                              b"\xef\xbb\xbf", b"\xc3\xa9", b" ", b"\t"]),
             max_size=120).map(b"".join),
)


@FUZZ
@given(data=CSV_BYTES, max_field=st.sampled_from([4, 64, 1 << 20]))
def test_csv_reader_random_bytes_never_crash(data: bytes, max_field: int) -> None:
    read_csv(data, max_field_bytes=max_field)


FIELD = st.text(max_size=12)  # any unicode (no surrogates), quotes, commas, CR, LF, NUL
NAMES = st.lists(st.text("abcxyz_", min_size=1, max_size=4), min_size=1, max_size=5, unique=True)


@st.composite
def csv_documents(draw: st.DrawFn) -> tuple[bytes, list[str], list[list[str]]]:
    header = draw(NAMES)
    rows = draw(st.lists(st.lists(FIELD, min_size=len(header), max_size=len(header)),
                         max_size=8))
    out = io.StringIO()
    # QUOTE_MINIMAL quotes a field holding CR or LF only when they are in the line terminator
    # (a lone CR under "\n" would be written bare: not RFC 4180), so it gets "\r\n"
    quoting: Literal[0, 1] = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    end = "\r\n" if quoting == csv.QUOTE_MINIMAL else draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv.writer(out, lineterminator=end, quoting=quoting)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8"), header, rows


@FUZZ
@given(doc=csv_documents())
def test_valid_csv_reads_back_exactly(doc: tuple[bytes, list[str], list[list[str]]]) -> None:
    data, _header, rows = doc
    got = read_csv(data)
    assert got is not None
    assert [list(r) for r in got] == rows


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "flip", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from([b'"', b",", b"\n", b"\r", b"\x00", b"\xff",
                                                b'""', b"\xef\xbb\xbf", b"{", b"}"]))
        elif kind == "delete" and data:
            del data[at:at + draw(st.integers(1, 3))]
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(data=mutated(csv_documents().map(lambda d: d[0])))
def test_mutated_csv_never_crashes(data: bytes) -> None:
    read_csv(data)


# --- JSONL -----------------------------------------------------------------------------------

JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=8,
)


@st.composite
def jsonl_documents(draw: st.DrawFn) -> bytes:
    import json

    lines = draw(st.lists(st.dictionaries(st.sampled_from(["id", "name", "v", "w"]), JSON_VALUE,
                                          max_size=4), max_size=8))
    return "".join(json.dumps(obj, allow_nan=False) + "\n" for obj in lines).encode("utf-8")


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), jsonl_documents(), mutated(jsonl_documents())))
def test_jsonl_loader_random_and_mutated_never_crash(data: bytes) -> None:
    read_jsonl(data)


@FUZZ
@given(data=jsonl_documents())
def test_valid_jsonl_loads_every_object(data: bytes) -> None:
    got = read_jsonl(data)
    assert got is not None
    # an empty object has no column to load: a rejected row (rule json), like any non-object
    assert len(got) == data.count(b"\n") - data.splitlines().count(b"{}")


# --- the CLI ---------------------------------------------------------------------------------


@settings(max_examples=max(4, EXAMPLES // 25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated(csv_documents().map(lambda d: d[0])), CSV_BYTES),
       jsonl=mutated(jsonl_documents()))
def test_cli_on_fuzzed_files_exits_cleanly(data: bytes, jsonl: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "f.csv").write_bytes(data)
        (d / "g.jsonl").write_bytes(jsonl)
        r = tallyclerk("load", "f.csv", "g.jsonl", "--table", "t", "--into", "sqlite:///d.db",
                       "--json", cwd=d)
        assert "Traceback" not in r.err, r.err
        if r.code == 2:  # identifiers the data would create were refused: one line, no report
            assert r.err.strip().splitlines()[-1].startswith("tallyclerk: error: "), r.err
            return
        assert r.code in (0, 1), r.err
        report = r.json()
        check_report(report)
        con = sqlite3.connect(d / "d.db")
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            written = sum(f["rows_written"] for f in report["files"])
            has_t = con.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()
            if has_t[0]:
                assert con.execute('SELECT count(*) FROM "t"').fetchone()[0] == written
            else:
                assert written == 0
        finally:
            con.close()
