"""Reading one batch ahead (``read_ahead=True``, what the built-in loaders use) returns what
reading on request returns: the same batches (rows, rejects, record numbers, lines, bytes),
the same ``bytes_read``/``records_read`` after each batch, the same error at the same point,
with the batch size changed between batches (one batch later with read-ahead)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tallyclerk._core import CsvReader, JsonlReader
from tallyclerk.errors import TallyclerkError

CELLS = st.one_of(st.just(""), st.text(alphabet="ab,\"\n\r é", max_size=6), st.integers().map(str))
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=4), max_size=40)


def _observe(reader: Any, sizes: list[int], calls: int) -> list[Any]:
    seen: list[Any] = [(reader.bytes_read, reader.records_read)]
    for call in range(calls):
        if call < len(sizes):
            reader.batch_rows = sizes[call]
        try:
            batch = next(reader)
        except StopIteration:
            seen.append("end")
            continue
        except TallyclerkError as exc:
            seen.append(("error", type(exc).__name__, str(exc)))
            continue
        rejects = [(r.record_number, r.line, r.column, r.rule, r.reason) for r in batch.rejects()]
        seen.append((batch.to_pylist(), batch.record_numbers(), batch.lines(), batch.bytes,
                     rejects, reader.bytes_read, reader.records_read))
    return seen


def _shifted(sizes: list[int]) -> list[int]:
    """Read on request, the sizes a read-ahead run uses: batch k >= 1 gets the size set before
    the call for batch k-1."""
    return sizes[:1] + sizes if sizes else []


def _csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["a", "b", "c"], *rows])
    return out.getvalue().encode()


# the end of the file: nothing more, an unterminated quote (the file fails at its end), a
# record that is not UTF-8 (a rejected row)
TAILS = st.sampled_from([b"", b'x,"unterminated\n', b"\xff,\xfe,x\n"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, tail=TAILS, first=st.integers(1, 7),
       sizes=st.lists(st.integers(1, 7), max_size=10))
def test_csv_reads_the_same_ahead_or_on_request(tmp_path: Path, rows: list[list[str]],
                                                 tail: bytes, first: int,
                                                 sizes: list[int]) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(_csv_bytes(rows) + tail)
    calls = len(sizes) + len(rows) + 3
    plain = _observe(CsvReader(str(path), batch_rows=first), _shifted(sizes), calls)
    ahead = _observe(CsvReader(str(path), batch_rows=first, read_ahead=True), sizes, calls)
    assert ahead == plain


LINES = st.one_of(
    st.fixed_dictionaries({"a": st.integers(), "b": st.text(max_size=5)}).map(json.dumps),
    st.just('{"a": 123456789012345678901234567890, "b": {"deep": [1, {"x": null}]}}'),
    st.just('{"a": '), st.just(""), st.just("[1, 2]"),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, max_size=40), first=st.integers(1, 7),
       sizes=st.lists(st.integers(1, 7), max_size=10))
def test_jsonl_reads_the_same_ahead_or_on_request(tmp_path: Path, lines: list[str], first: int,
                                                   sizes: list[int]) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    calls = len(sizes) + len(lines) + 3
    plain = _observe(JsonlReader(str(path), batch_rows=first), _shifted(sizes), calls)
    ahead = _observe(JsonlReader(str(path), batch_rows=first, read_ahead=True), sizes, calls)
    assert ahead == plain


def _readahead_threads() -> set[str]:
    """The ids of this process's read-ahead threads (named ``tallyclerk-read``)."""
    found = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("tallyclerk-read"):
                found.add(task.name)
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return found


def _until(condition: Callable[[], bool]) -> bool:
    """Wait for ``condition`` (a thread names itself and ends on its own time), at most 10 s."""
    for _ in range(1000):
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_file_read_ahead_has_one_thread_that_ends_with_it(tmp_path: Path) -> None:
    """A file of several batches is read ahead on one thread, which ends when the end of the
    file was handed over (that a one-batch file starts none is checked in Rust, where the
    reader's state can be seen: ``read_ahead_tests.rs``)."""
    path = tmp_path / "d.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(50)))
    before = _readahead_threads()
    large = CsvReader(str(path), batch_rows=10, read_ahead=True)
    assert next(large).num_rows == 10
    assert _until(lambda: len(_readahead_threads() - before) == 1)
    (mine,) = _readahead_threads() - before
    assert [b.num_rows for b in large] == [10] * 4
    assert large.records_read == 50
    assert _until(lambda: mine not in _readahead_threads())  # joined with the end
