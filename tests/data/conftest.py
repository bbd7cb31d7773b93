"""Fixtures of the data-path tests: write files of exact bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., str]:
    """``write(data, name="in.csv")`` writes bytes (or UTF-8 text) and returns the path."""
    counter = iter(range(1_000_000))

    def _write(data: bytes | str, name: str | None = None) -> str:
        path = tmp_path / (name or f"f{next(counter)}.csv")
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    return _write
