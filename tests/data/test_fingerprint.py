"""file_fingerprint: xxh3-128 of the content, streamed; errors name the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallyclerk._core import file_fingerprint
from tallyclerk.errors import SourceError


def test_format_is_stable_and_content_based(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    data = bytes(range(256)) * 10_000  # 2.5 MiB: several 1 MiB reads
    a.write_bytes(data)
    b.write_bytes(data)
    c.write_bytes(data[:-1] + b"\x00")
    fa = file_fingerprint(str(a))
    assert fa.startswith("xxh3-128:") and len(fa) == len("xxh3-128:") + 32
    int(fa.split(":")[1], 16)
    assert fa == file_fingerprint(str(b))
    assert fa != file_fingerprint(str(c))
    (tmp_path / "empty").write_bytes(b"")
    assert file_fingerprint(str(tmp_path / "empty")) == (
        "xxh3-128:99aa06d3014798d86001c324468d497f"  # xxh3-128 of no bytes
    )


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(SourceError) as e:
        file_fingerprint(missing)
    assert e.value.path == missing and "no such file" in str(e.value)
    with pytest.raises(SourceError, match="directory"):
        file_fingerprint(str(tmp_path))
