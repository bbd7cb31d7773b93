"""The CSV reader's batch size can change between batches (the adaptive batch size reaches it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallyclerk._core import CsvReader
from tallyclerk.builtins.csv_loader import CsvSource
from tallyclerk.errors import ConfigError


def _csv(tmp_path: Path, rows: int) -> str:
    path = tmp_path / "n.csv"
    path.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(rows)))
    return str(path)


def test_reader_batch_rows_is_settable_between_batches(tmp_path: Path) -> None:
    reader = CsvReader(_csv(tmp_path, 100), batch_rows=10)
    assert reader.batch_rows == 10
    assert next(reader).num_rows == 10
    reader.batch_rows = 25
    assert reader.batch_rows == 25
    assert [b.num_rows for b in reader] == [25, 25, 25, 15]
    with pytest.raises(ConfigError):
        reader.batch_rows = 0


def test_csv_source_follows_the_loaders_batch_size(tmp_path: Path) -> None:
    source = CsvSource(_csv(tmp_path, 100), batch_rows=10)
    sizes = []
    for batch in source:
        sizes.append(batch.num_rows)
        source.batch_rows = 30  # what the pipeline does after each batch
    # the loader reads one batch ahead: the second batch was read before the new size was set
    assert sizes == [10, 10, 30, 30, 20]
    assert sum(sizes) == 100
