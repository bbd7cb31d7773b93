"""Compressed inputs end to end: ``tallyclerk load`` of gzip, bzip2, xz and zstd files (the real
command, real SQLite files), detection by content, forcing, truncated archives, rejects' line
numbers, and what the exactly-once fingerprint covers."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import count_rows, query, tallyclerk

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, compresslevel=6),
    "bzip2": lambda b: bz2.compress(b, compresslevel=9),
    "xz": lambda b: lzma.compress(b),
    "zstd": lambda b: zstandard.ZstdCompressor(level=3).compress(b),
}
SUFFIX = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}


def csv_text(n: int, start: int = 1) -> bytes:
    rows = [f"{i},n{i},{i % 97}" for i in range(start, start + n)]
    return ("id,name,amount\n" + "\n".join(rows) + "\n").encode()


def load(work: Path, *args: str) -> tuple[int, dict]:
    r = tallyclerk("load", *args, "--json", cwd=work)
    assert "Traceback" not in r.err, r.err
    return r.code, r.json()


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_each_format_loads_by_suffix_and_by_content(work: Path, fmt: str) -> None:
    data = csv_text(2000)
    (work / f"orders.csv{SUFFIX[fmt]}").write_bytes(COMPRESSORS[fmt](data))
    # no suffix at all: found by --format, decompressed by the magic bytes
    (work / "blob").write_bytes(COMPRESSORS[fmt](csv_text(10, start=5000)))
    code, rep = load(work, f"orders.csv{SUFFIX[fmt]}", "--table", "t")
    assert code == 0, rep
    assert rep["files"][0]["rows_written"] == 2000
    code, rep = load(work, "blob", "--format", "csv", "--table", "t")
    assert code == 0, rep
    db = work / "tallyclerk.db"
    assert query(db, 'SELECT count(*), count(DISTINCT id), sum(amount) FROM "t"') == [
        (2010, 2010, sum(i % 97 for i in range(1, 2001)) + sum(i % 97 for i in range(5000, 5010)))
    ]


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_jsonl_compressed_with_reject_lines_of_the_decompressed_text(work: Path, fmt: str) -> None:
    text = b'{"id": 1, "name": "a"}\n\n{"id": 2}\nnot json\n{"id": 3}\n'
    (work / f"e.jsonl{SUFFIX[fmt]}").write_bytes(COMPRESSORS[fmt](text))
    code, rep = load(work, f"e.jsonl{SUFFIX[fmt]}", "--table", "ev")
    assert code == 0, rep
    f = rep["files"][0]
    assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (4, 3, 1)
    db = work / "tallyclerk.db"
    assert query(db, "SELECT line, rule FROM tallyclerk_rejects") == [(4, "json")]


def test_csv_reject_lines_are_lines_of_the_decompressed_text(work: Path) -> None:
    text = b'id,name,amount\n1,a,1\n\n2,"multi\nline",2\n3,c,-1\nx,d,4\n'
    (work / "r.csv.gz").write_bytes(gzip.compress(text))
    code, rep = load(work, "r.csv.gz", "--table", "t", "--schema", "schema.json")
    assert code == 0, rep
    db = work / "tallyclerk.db"
    assert query(db, "SELECT line FROM tallyclerk_rejects ORDER BY line") == [(6,), (7,)]


@pytest.mark.parametrize("fmt", sorted(COMPRESSORS))
def test_truncated_archive_fails_the_file_with_nothing_loaded(work: Path, fmt: str) -> None:
    whole = COMPRESSORS[fmt](csv_text(50_000))
    (work / f"cut.csv{SUFFIX[fmt]}").write_bytes(whole[: len(whole) * 2 // 3])
    code, rep = load(work, f"cut.csv{SUFFIX[fmt]}", "a.csv", "--table", "t")
    assert code == 1, rep
    cut, ok = rep["files"]
    assert cut["status"] == "failed" and ok["status"] == "loaded"
    assert cut["rows_written"] == 0
    assert f"cut.csv{SUFFIX[fmt]}" in cut["error"]
    assert f"{fmt} data is corrupt or truncated" in cut["error"]
    assert count_rows(work / "tallyclerk.db", "t") == 5  # a.csv only


def test_corrupt_archive_mid_stream_rolls_the_file_back(work: Path) -> None:
    """Only the CRC32 of the trailer is wrong: every byte of text decompresses, the check at the
    very end fails, and no row of the file stays."""
    whole = bytearray(gzip.compress(csv_text(30_000)))
    whole[-8] ^= 0xFF  # the CRC32 of the gzip trailer
    (work / "crc.csv.gz").write_bytes(bytes(whole))
    code, rep = load(work, "crc.csv.gz", "--table", "t")
    assert code == 1
    assert rep["files"][0]["status"] == "failed"
    assert "gzip data is corrupt or truncated" in rep["files"][0]["error"]
    assert count_rows(work / "tallyclerk.db", "t") == 0


def test_forced_compression(work: Path) -> None:
    (work / "plain.csv.gz").write_bytes(csv_text(3))  # a misleading suffix: read by content
    code, rep = load(work, "plain.csv.gz", "--table", "t")
    assert code == 0 and rep["files"][0]["rows_written"] == 3
    code, rep = load(work, "a.csv", "--table", "u", "--compression", "zstd")
    assert code == 1
    assert "not zstd data" in rep["files"][0]["error"]
    r = tallyclerk("load", "a.csv", "--table", "u", "--compression", "lz4", cwd=work)
    assert r.code == 2


def test_setting_forces_compression(work: Path) -> None:
    (work / "tallyclerk.toml").write_text('compression = "gzip"\n')
    code, rep = load(work, "a.csv", "--table", "t")
    assert code == 1 and "not gzip data" in rep["files"][0]["error"]
    code, rep = load(work, "a.csv", "--table", "t", "--compression", "auto")
    assert code == 0, rep


def test_fingerprint_covers_the_content_not_the_stored_bytes(work: Path) -> None:
    """The same text recompressed (another level, another format) or uncompressed is the same
    file to the ledger: skipped, never loaded twice."""
    data = csv_text(5000)
    (work / "day.csv.gz").write_bytes(gzip.compress(data, compresslevel=1))
    (work / "again.csv.gz").write_bytes(gzip.compress(data, compresslevel=9))
    (work / "again.csv.zst").write_bytes(COMPRESSORS["zstd"](data))
    (work / "again.csv").write_bytes(data)
    assert (work / "day.csv.gz").read_bytes() != (work / "again.csv.gz").read_bytes()
    code, rep = load(work, "day.csv.gz", "--table", "t")
    assert code == 0
    code, rep = load(work, "again.csv.gz", "again.csv.zst", "again.csv", "--table", "t")
    assert code == 0
    assert [f["status"] for f in rep["files"]] == ["skipped"] * 3
    assert count_rows(work / "tallyclerk.db", "t") == 5000
    # a changed text is a new file, whatever the compression
    (work / "next.csv.gz").write_bytes(gzip.compress(csv_text(5000, start=5001), compresslevel=1))
    code, rep = load(work, "next.csv.gz", "--table", "t")
    assert rep["files"][0]["status"] == "loaded"
    assert count_rows(work / "tallyclerk.db", "t") == 10_000


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=3000),
    fmt=st.sampled_from(sorted(COMPRESSORS)),
    chunk=st.integers(min_value=1, max_value=5000),
)
def test_open_input_round_trips_any_bytes(tmp_path_factory: pytest.TempPathFactory,
                                          data: bytes, fmt: str, chunk: int) -> None:
    from tallyclerk import open_input

    path = tmp_path_factory.mktemp("rt") / "x.bin"
    path.write_bytes(COMPRESSORS[fmt](data))
    out = io.BytesIO()
    with open_input(str(path)) as fh:
        assert fh.raw.compression == fmt  # type: ignore[attr-defined]
        while block := fh.read(chunk):
            out.write(block)
    assert out.getvalue() == data
