"""CsvReader through the Python API: quoting, line ends, record numbers and physical lines,
encodings, row-level rejects and the hostile files that fail with SourceError."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tallyclerk._core import CsvReader, RecordBatch
from tallyclerk.errors import ConfigError, SourceError

Write = Callable[..., str]


def read(path: str, **kw: object) -> tuple[list[str], list[RecordBatch]]:
    r = CsvReader(path, **kw)  # type: ignore[arg-type]
    return r.header, list(r)


def rows(batches: list[RecordBatch]) -> list[tuple[object, ...]]:
    return [row for b in batches for row in b.rows()]


def test_quoting_line_ends_bom_and_exact_lines(write: Write) -> None:
    data = b'\xef\xbb\xbfid,text\r\n1,"two\r\nlines"\r\n\r\n\n2,plain\r3,"say ""hi"""\n\n4,last'
    header, batches = read(write(data))
    assert header == ["id", "text"]
    assert rows(batches) == [
        ("1", "two\r\nlines"),
        ("2", "plain"),
        ("3", 'say "hi"'),
        ("4", "last"),
    ]
    b = batches[0]
    assert b.record_numbers() == [1, 2, 3, 4]
    assert b.lines() == [2, 6, 7, 9]
    assert b.first_record_number == 1
    assert b.bytes == len(data)


def test_batches_are_bounded_and_numbered(write: Write) -> None:
    body = "".join(f"{i},x{i}\n" for i in range(1, 26))
    r = CsvReader(write("a,b\n" + body), batch_rows=10)
    batches = list(r)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[2].record_numbers() == list(range(21, 26))
    assert batches[2].lines() == list(range(22, 27))
    assert r.records_read == 25
    assert r.bytes_read == len("a,b\n" + body)
    assert sum(b.bytes for b in batches) == r.bytes_read
    with pytest.raises(StopIteration):
        next(r)


def test_wrong_field_counts_are_rejected_rows(write: Write) -> None:
    _, batches = read(write("a,b\n1,2\n3\n4,5,6\n7,8\n"))
    b = batches[0]
    assert b.num_rows == 4 and b.num_rejected == 2 and b.num_valid == 2
    rejects = b.rejects()
    assert [(r.index, r.record_number, r.line, r.rule, r.raw) for r in rejects] == [
        (1, 2, 3, "row-length", "3"),
        (2, 3, 4, "row-length", "4,5,6"),
    ]
    assert rejects[0].reason == "expected 2 fields, found 1"
    assert rejects[0].column is None


def test_invalid_utf8_rejects_only_that_row(write: Write) -> None:
    _, batches = read(write(b"a,b\n1,ok\n2,\xff\xfe\n3,\xc3\xa9\n"))
    b = batches[0]
    assert [r.rule for r in b.rejects()] == ["encoding"]
    assert b.rejects()[0].record_number == 2
    assert b.rejects()[0].raw == "2,\ufffd\ufffd"
    assert b.column("b")[2] == "é"


def test_nul_bytes_and_text_after_closing_quote_load_as_data(write: Write) -> None:
    _, batches = read(write(b'a,b\n\x00x,"ab"c\n'))
    assert rows(batches) == [("\x00x", "abc")]


def test_field_size_limit_is_a_source_error_not_a_crash(write: Write) -> None:
    big = "x" * 200_000
    path = write(f"a,b\n1,2\n3,{big}\n")
    with pytest.raises(SourceError) as e:
        read(path, max_field_bytes=100_000)
    assert e.value.path == path
    assert e.value.line == 3
    assert "larger than max_field_bytes" in str(e.value)
    # the default limit (16 MiB) takes a field far above csv's 128 KiB
    _, batches = read(path)
    assert batches[0].column("b")[1] == big


def test_unterminated_quote_at_eof_fails_the_file(write: Write) -> None:
    path = write('a,b\n1,2\n3,"open\n4,5\n')
    r = CsvReader(path, batch_rows=1)
    assert len(next(r)) == 1
    with pytest.raises(SourceError) as e:
        next(r)
    assert e.value.line == 3
    assert "unterminated quoted field" in str(e.value)
    with pytest.raises(StopIteration):
        next(r)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file: no header row"),
        (b"\r\n\n", "empty file: no header row"),
        (b"a,,b\n1,2,3\n", "empty column name in the header (column 2)"),
        (b"id,name,id\n", 'duplicate column names in the header: "id" (columns 1 and 3)'),
        (b"\xffbad\n", "header row is not valid UTF-8"),
        (b'"a,b\n', "unterminated quoted field"),
        ("id,name\n1,x\n".encode("utf-16-le"), 'encoding="utf-16-le"'),
    ],
)
def test_hostile_headers(write: Write, data: bytes, message: str) -> None:
    path = write(data)
    with pytest.raises(SourceError) as e:
        CsvReader(path)
    assert message in str(e.value)
    assert path in str(e.value)


def test_missing_path_and_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(SourceError) as e:
        CsvReader(missing)
    assert e.value.path == missing and "no such file" in str(e.value)
    with pytest.raises(SourceError, match="is a directory"):
        CsvReader(str(tmp_path))


def test_delimiter_quote_and_bad_options(write: Write) -> None:
    _, batches = read(write("a;b\n'x;y';2\n"), delimiter=";", quote="'")
    assert rows(batches) == [("x;y", "2")]
    _, batches = read(write('a\tb\n"x\t1\n'), delimiter="\t", quote="")
    assert rows(batches) == [('"x', "1")]
    path = write("a\n1\n")
    for kw in ({"delimiter": ";;"}, {"delimiter": "\n"}, {"quote": ","}, {"batch_rows": 0},
               {"max_field_bytes": -1}, {"delimiter": "é"}):
        with pytest.raises(ConfigError):
            CsvReader(path, **kw)  # type: ignore[arg-type]


def test_utf16_with_bom_is_read_either_way(write: Write) -> None:
    text = "name,city\nZoë,Zürich\n"
    for codec in ("utf-16", "utf-16-be"):
        raw = text.encode(codec)
        if codec == "utf-16-be":
            raw = b"\xfe\xff" + raw
        path = write(raw)
        for enc in ("utf-8", "utf-16"):
            header, batches = read(path, encoding=enc)
            assert header == ["name", "city"]
            assert rows(batches) == [("Zoë", "Zürich")]


def test_other_encodings_transcode_strictly(write: Write) -> None:
    path = write("név,ár\nÁrvíztűrő,1\n".encode("iso-8859-2"))
    header, batches = read(path, encoding="iso-8859-2")
    assert header == ["név", "ár"] and rows(batches) == [("Árvíztűrő", "1")]
    ascii_part = bytes(range(0x20, 0x7F)).replace(b",", b"").replace(b'"', b"")
    latin = ascii_part + bytes(range(0x80, 0x100))
    path = write(b"x\n" + latin + b"\n")
    _, batches = read(path, encoding="latin-1")
    assert rows(batches) == [(latin.decode("latin-1"),)]
    with pytest.raises(SourceError, match="invalid utf-16"):
        read(write("a\nb\n".encode("utf-16-le") + b"\x00\xd8"), encoding="utf-16le")
    for spelling, codec in (("utf_16_le", "utf-16-le"), ("UTF-16-BE", "utf-16-be"),
                            ("utf-16le", "utf-16-le"), ("Shift_JIS", "shift_jis")):
        header, batches = read(write("名前,値\nあ,1\n".encode(codec)), encoding=spelling)
        assert header == ["名前", "値"] and rows(batches) == [("あ", "1")]
    with pytest.raises(SourceError, match="unknown encoding"):
        CsvReader(write("a\n"), encoding="no-such-codec")


def test_next_releases_the_interpreter(write: Write) -> None:
    """Another Python thread runs while __next__ parses (it detaches from the interpreter)."""
    path = write("a,b\n" + "1,2\n" * 300_000)
    r = CsvReader(path, batch_rows=300_000)
    ticks = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        batch = next(r)
    finally:
        done.set()
        t.join()
    assert len(batch) == 300_000
    assert ticks > 0


def test_an_oversized_field_stops_the_read_early(tmp_path: Path) -> None:
    """Memory stays bounded: a runaway quoted field fails once it passes max_field_bytes,
    long before the rest of the file is read."""
    path = tmp_path / "runaway.csv"
    with open(path, "wb") as f:
        f.write(b'a,b\n1,"')
        chunk = b"x" * (1 << 20)
        for _ in range(40):
            f.write(chunk)
    r = CsvReader(str(path), max_field_bytes=1 << 20)
    with pytest.raises(SourceError, match="line 2: field 2 is larger than max_field_bytes"):
        next(r)
    assert r.bytes_read < 4 << 20 < path.stat().st_size
