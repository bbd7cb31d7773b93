"""Fingerprints taken ahead of the claim (tallyclerk.fingerprints): a prefetched value is used
only for the unchanged file; a file changed after the prefetch gets its new content's."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk import file_fingerprint
from tallyclerk.errors import SourceError
from tallyclerk.fingerprints import fingerprint, prefetch


@settings(max_examples=30, deadline=None)
@given(first=st.binary(max_size=2000), second=st.binary(max_size=2000),
       compress=st.booleans())
def test_prefetched_fingerprint_is_the_current_contents(tmp_path_factory, first: bytes,
                                                        second: bytes, compress: bool) -> None:
    path = tmp_path_factory.mktemp("fp") / "f.csv.gz"
    enc = gzip.compress if compress else (lambda b: b)
    path.write_bytes(enc(first))
    fetch = prefetch([str(path)])
    assert fingerprint(str(path)) == file_fingerprint(str(path))
    fetch.close()
    fetch = prefetch([str(path)])
    path.write_bytes(enc(second))  # rewritten after (or while) the prefetch ran
    os.utime(path, ns=(1, 1))  # even with an old modification time: inode/ctime/size differ
    assert fingerprint(str(path)) == file_fingerprint(str(path))
    fetch.close()


def test_errors_are_raised_by_the_claim_not_cached(tmp_path: Path) -> None:
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(b"id\n1\n" * 10000)[:100])
    fetch = prefetch([str(cut), str(tmp_path / "missing.csv")])
    for p in (cut, tmp_path / "missing.csv"):
        try:
            fingerprint(str(p))
        except SourceError as exc:
            assert str(p) in str(exc)
        else:
            raise AssertionError(f"{p}: no error")
    fetch.close()


def test_close_stops_after_the_file_in_hand(tmp_path: Path) -> None:
    paths = []
    for k in range(50):
        p = tmp_path / f"f{k}.csv"
        p.write_bytes(b"id\n" + str(k).encode() * 100_000)
        paths.append(str(p))
    fetch = prefetch(paths)
    fetch.close()  # returns once the thread is gone; the rest are computed on demand
    assert [fingerprint(p) for p in paths] == [file_fingerprint(p) for p in paths]
