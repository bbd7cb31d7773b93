"""``tallyclerk.watch()`` in-process, readiness (settle time, markers) as properties, and the
listing interface other sources plug into."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tallyclerk
from tallyclerk.errors import ConfigError
from tallyclerk.listing import Entry, LocalListing, is_data_name, open_listing, register_listing
from tallyclerk.pipeline import StopToken
from tallyclerk.watcher import Readiness
from tests.clirun import query
from tests.watch.helpers import csv_file


def test_watch_once_loads_ready_files_and_a_second_watch_skips_them(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    for k in range(3):
        csv_file(inbox / f"f{k}.csv", k * 10, 10)
    (inbox / "_SUCCESS").write_text("")
    (inbox / ".hidden.csv").write_text("id\n1\n")
    (inbox / "part.csv.tmp").write_text("id\n1\n")
    db = tmp_path / "w.db"
    first = tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0, max_cycles=1)
    assert (first.files_loaded, first.rows_written, first.files_failed) == (3, 30, 0)
    again = tallyclerk.watch([str(inbox / "*.csv")], "t", into=f"sqlite:///{db}", settle=0,
                             max_cycles=1)
    assert (again.files_loaded, again.files_skipped) == (0, 3)
    assert query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"') == [(30, 30)]


@pytest.mark.parametrize(("infer", "infer_rows", "expected"),
                         [(None, None, "INTEGER"), ("none", None, "TEXT"), (None, 0, "TEXT")])
def test_watch_infers_a_new_tables_types_as_load_does(
        tmp_path: Path, infer: str | None, infer_rows: int | None, expected: str) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    csv_file(inbox / "f.csv", 0, 5)
    db = tmp_path / "w.db"
    summary = tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0, max_cycles=1,
                               infer=infer, infer_rows=infer_rows)
    assert summary.files_loaded == 1
    types = dict(query(db, "SELECT name, type FROM pragma_table_info('t')"))
    assert types["id"] == expected


def test_stop_from_another_thread_ends_the_watch(tmp_path: Path) -> None:
    stop = StopToken()
    timer = threading.Timer(0.5, stop.stop)
    timer.start()
    summary = tallyclerk.watch(str(tmp_path), "t", into=f"sqlite:///{tmp_path / 'w.db'}",
                               interval=0.1, stop=stop)
    timer.join()
    assert summary.cycles >= 1 and summary.signum is None


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(tmp_path / "missing"), "t", max_cycles=1)
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(tmp_path), "t", interval=0, max_cycles=1)
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(tmp_path), "t", compression="lz4", max_cycles=1)
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(tmp_path), "t", infer="guess", max_cycles=1)
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(tmp_path), "t", columns="drop", max_cycles=1)
    with pytest.raises(ConfigError):
        open_listing("nosuch://bucket/prefix/")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Listing:
    source = "mem"

    def __init__(self, present: set[str]) -> None:
        self.present = present

    def entries(self) -> list[Entry]:
        return []

    def exists(self, path: str) -> bool:
        return path in self.present


@settings(max_examples=200, deadline=None)
@given(settle=st.integers(1, 30), gaps=st.lists(st.integers(0, 60), min_size=1, max_size=20))
def test_a_file_is_ready_only_after_settle_seconds_unchanged(settle: int,
                                                            gaps: list[int]) -> None:
    """Size changes at every step; ready exactly when the last change is settle seconds old."""
    clock = _Clock()
    r = Readiness(settle, clock=clock, wall=clock)
    listing = _Listing(set())
    size = 0
    for gap in gaps:
        size += 1
        entry = Entry("/in/a.csv", size, clock.now)  # written just now
        assert not r.ready(entry, listing) or settle <= 0
        clock.now += gap
        assert r.ready(entry, listing) == (gap >= settle)


def test_markers() -> None:
    listing = _Listing({"/in/a.csv.done", "/out/_SUCCESS"})
    per_file = Readiness(marker="{name}.done")
    assert per_file.ready(Entry("/in/a.csv", 1, 0.0), listing)
    assert not per_file.ready(Entry("/in/b.csv", 1, 0.0), listing)
    assert per_file.is_marker("/in/a.csv.done") and not per_file.is_marker("/in/a.csv")
    folder = Readiness(marker="_SUCCESS")
    assert folder.ready(Entry("/out/x.csv", 1, 0.0), listing)
    assert not folder.ready(Entry("/in/x.csv", 1, 0.0), listing)


def test_data_names() -> None:
    assert is_data_name("/x/orders.csv.gz")
    for name in (".orders.csv", "_SUCCESS", "a.csv.tmp", "a.csv.part", "a.csv~"):
        assert not is_data_name(f"/x/{name}")


def test_a_registered_scheme_is_watched_through_its_listing(tmp_path: Path) -> None:
    """What an object-store module does: register a listing for its scheme."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    csv_file(inbox / "a.csv", 0, 4)
    register_listing("memtest", lambda source: LocalListing(str(inbox)))
    summary = tallyclerk.watch("memtest://anything/", "t", into=f"sqlite:///{tmp_path / 'w.db'}",
                               settle=0, max_cycles=1)
    assert summary.files_loaded == 1 and summary.rows_written == 4


def test_merge_mode_updates_rows_by_key(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    db = tmp_path / "w.db"
    csv_file(inbox / "a.csv", 0, 10)
    tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0, max_cycles=1,
                     mode="merge", primary_key="id")
    (inbox / "b.csv").write_text("id,name,amount\n5,changed,7\n10,new,1\n")
    summary = tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", settle=0,
                               max_cycles=1, mode="merge", primary_key="id")
    assert summary.files_loaded == 1
    assert query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"') == [(11, 11)]
    assert query(db, "SELECT name FROM \"t\" WHERE id = '5' OR id = 5") == [("changed",)]
    with pytest.raises(ConfigError):
        tallyclerk.watch(str(inbox), "t", into=f"sqlite:///{db}", mode="replace", max_cycles=1)


def test_an_objects_etag_is_part_of_its_identity() -> None:
    """An object rewritten within the same second with the same size is a change: it must
    settle again (and the watcher takes it again: ``Entry.stamp``). The store's LastModified
    is far ahead of our clock here, so only the listings' own observation counts."""
    clock = _Clock()
    r = Readiness(5, clock=clock, wall=lambda: 0.0)
    listing = _Listing(set())
    first = Entry("s3://b/in/a.csv", 10, clock.now, etag="aaa")
    assert not r.ready(first, listing)
    clock.now += 5
    assert r.ready(first, listing)
    rewritten = Entry("s3://b/in/a.csv", 10, first.mtime, etag="bbb")
    assert rewritten.stamp != first.stamp
    assert not r.ready(rewritten, listing)  # seen changed just now
    clock.now += 5
    assert r.ready(rewritten, listing)


def test_object_sources_are_listable_and_refuse_credentials_in_the_url() -> None:
    pytest.importorskip("s3fs")
    from tallyclerk.objlisting import ObjectListing

    assert isinstance(open_listing("s3://bucket/in/"), ObjectListing)
    with pytest.raises(ConfigError, match="credential"):
        open_listing("s3://bucket/in/?X-Amz-Signature=abc")
    with pytest.raises(ConfigError):
        open_listing("https://example.com/in/")
