"""tallyclerk.digest.sha256: the digests of hashlib.sha256, without OpenSSL."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from tallyclerk import modes
from tallyclerk.digest import sha256


@given(st.lists(st.binary(max_size=300), max_size=4))
def test_the_same_digest_as_hashlib(chunks: list[bytes]) -> None:
    ours, reference = sha256(), hashlib.sha256()
    for chunk in chunks:
        ours.update(chunk)
        reference.update(chunk)
    assert (ours.hexdigest(), ours.digest()) == (reference.hexdigest(), reference.digest())
    assert sha256(b"".join(chunks)).hexdigest() == reference.hexdigest()


def test_index_names_are_unchanged() -> None:
    """The names of indexes already created by earlier versions (stable across versions)."""
    assert modes.file_id_index_name("t") == "_tc_file_e3b98a4da31a127d"
    assert modes.key_index_name("t", ["a", "b"]) == "_tc_key_97bb0eb23a09935c"
