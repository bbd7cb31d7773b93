"""With ``batch_rows = 0`` the batch size tunes itself during a real load: the reader's batches
follow the controller (they used to stay at the first size for CSV files)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pluggy
import pytest

from tallyclerk.batch_size import AdaptiveBatchSize
from tallyclerk.hookspecs import hookimpl
from tests.loader.conftest import load, query, registered, write_csv


class WriteSizes:
    def __init__(self) -> None:
        self.rows: list[int] = []
        self._lock = threading.Lock()

    @hookimpl
    def tallyclerk_rows_written(self, context: Any, rows: int, seconds: float) -> None:
        with self._lock:
            self.rows.append(rows)


@pytest.mark.parametrize("batch_rows", [0, 7_000])
def test_batches_follow_the_adaptive_size(pm: pluggy.PluginManager, tmp_path: Path, db: Path,
                                          batch_rows: int) -> None:
    total = 120_000
    src = write_csv(tmp_path / "n.csv", [(i, f"n{i}", 1.5) for i in range(total)])
    sizes = WriteSizes()
    with registered(pm, sizes):
        report = load(pm, [src], db, overrides={"batch_rows": batch_rows})
    assert report["rows_written"] == total
    assert query(db, 'SELECT count(*) FROM "t"') == [(total,)]
    assert sum(sizes.rows) == total
    if batch_rows:
        assert set(sizes.rows[:-1]) == {batch_rows}
    else:
        # starts at the controller's first size, then grows: these writes take microseconds
        first = AdaptiveBatchSize().rows
        assert sizes.rows[0] == first
        assert max(sizes.rows) > first
