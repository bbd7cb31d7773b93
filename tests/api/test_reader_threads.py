"""The record batches of a source are read on a ``tallyclerk-reader`` thread; the files of one
load take turns on the same thread (issue 16.4: no thread started per small file), also after
a file whose source failed, and no reader thread outlives the load. They are written on one
writer thread too, until a file does not end loaded: the next file gets a new one."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import tallyclerk
from tallyclerk import hookimpl
from tallyclerk.builtins.csv_loader import tallyclerk_open_source as open_csv
from tests.api.conftest import count_rows, write_csv


class Recorded:
    """A CSV source that notes the thread each of its batches is read on; ``fail`` raises
    instead of its first batch."""

    def __init__(self, inner: Any, reads: list[tuple[str, str, int]], fail: bool) -> None:
        self._inner, self._reads, self._fail = inner, reads, fail
        self.path = inner.path
        self.batch_rows = inner.batch_rows

    @property
    def columns(self) -> list[str]:
        return list(self._inner.columns)

    @property
    def bytes_read(self) -> int:
        return int(self._inner.bytes_read)

    def __iter__(self) -> Iterator[Any]:
        for batch in self._inner:
            me = threading.current_thread()
            self._reads.append((Path(self.path).name, me.name, threading.get_native_id()))
            if self._fail:
                raise OSError(f"{self.path}: the disk went away")
            yield batch

    def close(self) -> None:
        self._inner.close()


class RecordingLoader:
    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.reads: list[tuple[str, str, int]] = []
        self.writes: list[tuple[str, int]] = []

    @hookimpl
    def tallyclerk_rows_written(self, context: Any, rows: int, seconds: float) -> None:
        self.writes.append((Path(context.path).name, threading.get_native_id()))

    @hookimpl(tryfirst=True)
    def tallyclerk_open_source(self, path: str, options: Mapping[str, Any]) -> Any:
        src = open_csv(path=path, options={**options, "format": "csv"})
        return Recorded(src, self.reads, Path(path).name == self.failing)


def test_the_files_of_a_load_are_read_in_turn_on_one_reader_thread(tmp_path: Path) -> None:
    paths = [write_csv(tmp_path / f"{n}.csv", [(i, f"{n}{i}", i) for i in range(1, 4)])
             for n in "abcd"]
    loader = RecordingLoader(failing="b.csv")

    report = tallyclerk.load(paths, table="t", into=f"sqlite:///{tmp_path / 't.db'}",
                             plugins=[loader])

    assert [(Path(f.path).name, f.status) for f in report.files] == [
        ("a.csv", "loaded"), ("b.csv", "failed"), ("c.csv", "loaded"), ("d.csv", "loaded")]
    assert "the disk went away" in (report.files[1].error or "")
    assert count_rows(tmp_path / "t.db", "t") == 9
    assert [name for name, _, _ in loader.reads] == ["a.csv", "b.csv", "c.csv", "d.csv"]
    assert {thread for _, thread, _ in loader.reads} == {"tallyclerk-reader"}
    assert len({ident for _, _, ident in loader.reads}) == 1
    assert threading.main_thread().native_id not in {ident for _, _, ident in loader.reads}
    assert not [t for t in threading.enumerate() if t.name == "tallyclerk-reader"]
    # written on a writer thread: one for a.csv; b.csv failed, so c.csv and d.csv share a new
    # one
    writers = dict(loader.writes)
    assert sorted(writers) == ["a.csv", "c.csv", "d.csv"]
    assert writers["c.csv"] == writers["d.csv"] != writers["a.csv"]
    assert threading.main_thread().native_id not in writers.values()
    assert not {ident for _, _, ident in loader.reads} & set(writers.values())
