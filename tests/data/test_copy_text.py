"""RecordBatch.copy_text: PostgreSQL COPY text of the valid rows (escapes, NULL, every column
kind, extra values, rejects skipped), checked with a small reference decoder of the format; and
the PostgreSQL sink's two paths around it on a real server (a field the batch lacks is NULL;
a non-UTF-8 client encoding)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyclerk._core import CsvReader, RecordBatch, TableSchema

Write = Callable[..., str]

_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r"}


def decode_field(field: str) -> str | None:
    """One COPY text field (postgresql.org/docs/current/sql-copy.html, Text Format)."""
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        c = field[i]
        assert c not in "\t\n\r", f"unescaped {c!r} in {field!r}"
        if c == "\\":
            assert i + 1 < len(field), f"dangling backslash in {field!r}"
            nxt = field[i + 1]
            out.append(_UNESCAPE.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def decode(data: bytes) -> list[list[str | None]]:
    """COPY text as rows of fields (text or None)."""
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return [[decode_field(f) for f in line.split("\t")] for line in text.split("\n")[:-1]]


def text_batch(columns: list[str], rows: list[list[Any]]) -> RecordBatch:
    n = len(rows)
    return RecordBatch.from_rows(columns, rows, list(range(1, n + 1)), list(range(2, n + 2)))


@pytest.mark.parametrize(("value", "field"), [
    ("back\\slash", b"back\\\\slash"),
    ("tab\there", b"tab\\there"),
    ("new\nline", b"new\\nline"),
    ("cr\rlf\r\n", b"cr\\rlf\\r\\n"),
    ("\\N", b"\\\\N"),
    ("\\.", b"\\\\."),
    ("end\\", b"end\\\\"),
    ("N", b"N"),
    ("", b""),
    (None, b"\\N"),
    ("ünï 🙂", "ünï 🙂".encode()),
    ("'quote\"", b"'quote\""),
    ("nul\x00byte", b"nul\x00byte"),
])
def test_text_is_escaped_and_null_is_backslash_n(value: str | None, field: bytes) -> None:
    batch = text_batch(["s"], [[value]])
    assert batch.copy_text(["s"]) == field + b"\n"
    assert decode(batch.copy_text(["s"])) == [[value]]


def test_validated_columns_in_the_given_order_with_extra_values(write: Write) -> None:
    path = write("s,i,x,ok,d,at\n"
                 "a\tb,7,2.5,true,2026-01-02,2026-01-02T03:04:05Z\n"
                 ",,,,,\n"
                 "c,-9223372036854775808,-INF,0,2020-02-29,2020-02-29T23:59:59.5\n"
                 "d,9223372036854775807,1e16,1,2021-03-04,2021-03-04T05:06:07+02:00\n")
    schema = TableSchema.from_json(json.dumps({"fields": [
        {"name": "i", "type": "integer"}, {"name": "x", "type": "number"},
        {"name": "ok", "type": "boolean"}, {"name": "d", "type": "date"},
        {"name": "at", "type": "datetime"}, {"name": "s"}]}))
    (batch,) = list(CsvReader(path))
    assert batch.validate(schema) == 0
    order = ["s", "ok", "i", "x", "d", "at"]
    data = batch.copy_text(order, (42, "tab\tx", None, True, 0.5))
    extra = ["42", "tab\tx", None, "t", "0.5"]
    rows = [list(r) for r in batch.rows()]
    assert decode(data) == [
        ["a\tb", "t", "7", "2.5", "2026-01-02", rows[0][4], *extra],
        [None, None, None, None, None, None, *extra],
        ["c", "f", "-9223372036854775808", "-Infinity", "2020-02-29", rows[2][4], *extra],
        ["d", "t", "9223372036854775807", "1e+16", "2021-03-04", rows[3][4], *extra],
    ]
    assert rows[0][4].startswith("2026-01-02"), "datetimes go as the batch's ISO text"


def test_any_columns_from_python_values() -> None:
    batch = text_batch(["v"], [[3], [0.1], [False], [True], ["x"], [None], [float("inf")],
                               [float("nan")]])
    assert decode(batch.copy_text(["v"])) == [
        ["3"], ["0.1"], ["f"], ["t"], ["x"], [None], ["Infinity"], ["NaN"]]
    assert batch.copy_text([], (1,)) == b"1\n" * 8, "extra values alone"
    assert batch.copy_text(["v", "v"]).split(b"\n")[0] == b"3\t3"


@given(st.floats())
def test_floats_read_back_as_the_same_double(x: float) -> None:
    (field,) = decode(text_batch(["x"], [[x]]).copy_text(["x"]))[0]
    assert field is not None
    if math.isnan(x):
        assert field == "NaN"
    elif math.isinf(x):
        assert field == ("Infinity" if x > 0 else "-Infinity")
    else:
        # the shortest round-trip text, as str(x) gave before; where two shortest spellings are
        # exactly as close to the double (562949953421312.25: ...2 and ...3), Python's repr
        # takes the even digit and Rust the other, both the same double
        assert float(field) == x and math.copysign(1, float(field)) == math.copysign(1, x)
        assert len(field) == len(repr(x))
        if field != repr(x):
            assert field[:-1] == repr(x)[:-1] and abs(int(field[-1]) - int(repr(x)[-1])) == 1


def test_a_tie_between_two_shortest_spellings_reads_back_the_same() -> None:
    x = 562949953421312.25  # 2**49 + 0.25: "...312.2" and "...312.3" are both shortest
    (field,) = decode(text_batch(["x"], [[x]]).copy_text(["x"]))[0]
    assert field in ("562949953421312.2", "562949953421312.3") and float(field) == x


def test_rejected_rows_are_skipped(write: Write) -> None:
    path = write('n,s\n1,a\n2\n3,b\nx,c\n5,d\n6,"e"\n')
    schema = TableSchema.from_json(json.dumps({"fields": [
        {"name": "n", "type": "integer"}, {"name": "s"}]}))
    (batch,) = list(CsvReader(path))
    assert batch.validate(schema) == 1  # x
    batch.reject(4, "s", "custom", "a plugin said no")  # 5,d
    assert batch.num_rejected == 3  # also "2" (row length, while reading)
    assert decode(batch.copy_text(["n", "s"], (9,))) == [
        ["1", "a", "9"], ["3", "b", "9"], ["6", "e", "9"]]


def test_empty_batch_and_no_valid_row_give_empty_bytes() -> None:
    assert text_batch(["a"], []).copy_text(["a"], (1,)) == b""
    batch = text_batch(["a"], [["x"], ["y"]])
    batch.reject(0, None, "r", "r")
    batch.reject(1, None, "r", "r")
    assert batch.copy_text(["a"], (1,)) == b""


def test_unknown_column_is_a_key_error_naming_it() -> None:
    batch = text_batch(["a"], [["x"]])
    with pytest.raises(KeyError, match="nope"):
        batch.copy_text(["a", "nope"])
    with pytest.raises(TypeError):
        batch.copy_text("a")  # a str is not a list of names


_TEXT = st.one_of(st.none(), st.text(alphabet=st.sampled_from("ab\\\t\n\rN.\x00ü🙂 "), max_size=8),
                  st.text(max_size=8))


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=20),
       st.lists(st.booleans(), max_size=20), _TEXT)
def test_copy_text_decodes_back_to_the_original_values(
    rows: list[tuple[str | None, str | None]], rejected: list[bool], extra: str | None
) -> None:
    batch = text_batch(["a", "b"], [list(r) for r in rows])
    for i, bad in enumerate(rejected[: len(rows)]):
        if bad:
            batch.reject(i, None, "r", "r")
    kept = [[b, a, extra] for i, (a, b) in enumerate(rows) if not batch.is_rejected(i)]
    assert decode(batch.copy_text(["b", "a"], (extra,))) == kept


# ------------------------------------------------------------------------------------------
# The PostgreSQL sink around copy_text, on a real server
# ------------------------------------------------------------------------------------------

_PG_SCHEMA = {"fields": [{"name": "i", "type": "integer"}, {"name": "s", "type": "string"},
                         {"name": "x", "type": "number"}]}


def _load(url: str, table: str, batches: list[RecordBatch], file_id: int) -> list[Any]:
    import sqlalchemy as sa

    from tallyclerk.audit import FileClaim
    from tallyclerk.builtins.postgres_sink import PostgresSink

    schema = TableSchema.from_json(json.dumps(_PG_SCHEMA))
    sink = PostgresSink(url)
    try:
        sink.prepare(table, schema)
        fw = sink.begin_file(FileClaim(file_id=file_id, batch_id="b", path="p", table=table,
                                       fingerprint="f", size=0, mtime=0.0, attempt=1,
                                       token="t", replaces=()))
        written = sum(fw.write(b) for b in batches)
        fw.commit()
    finally:
        sink.close()
    engine = sa.create_engine(url.split("?")[0])
    try:
        with engine.connect() as conn:
            got = conn.execute(sa.text(
                f'SELECT i, s, x, _tc_file_id FROM "{table}" ORDER BY i')).all()
    finally:
        engine.dispose()
    assert written == len(got)
    return [tuple(r) for r in got]


@pytest.mark.postgres
def test_sink_writes_null_for_a_field_the_batch_lacks(pg_url: str) -> None:
    full = text_batch(["i", "s", "x"], [[1, "a\tb", 1.5]])
    lacking = text_batch(["x", "i"], [[2.5, 2], [None, 3]])  # not validated: no "s"
    again = text_batch(["i", "s", "x"], [[4, "\\N", float("-inf")]])
    assert _load(pg_url, "lacks", [full, lacking, again], 5) == [
        (1, "a\tb", 1.5, 5), (2, None, 2.5, 5), (3, None, None, 5), (4, "\\N", -math.inf, 5)]


@pytest.mark.postgres
def test_sink_with_a_latin1_client_encoding(pg_url: str) -> None:
    sep = "&" if "?" in pg_url else "?"
    rows = _load(pg_url + sep + "client_encoding=LATIN1", "latin",
                 [text_batch(["i", "s", "x"], [[1, "ünï\\é", 0.25], [2, None, None]])], 3)
    assert rows == [(1, "ünï\\é", 0.25, 3), (2, None, None, 3)]
