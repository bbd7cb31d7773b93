"""A re-run of many files decides their skips a chunk at a time (issue 16.4): the report, the
hooks and the manifest must say exactly what one-file-at-a-time claims said."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import tallyclerk
from tallyclerk.hookspecs import hookimpl
from tallyclerk.pipeline import SKIP_AHEAD

N = SKIP_AHEAD + 6  # more than one chunk


class Skips:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None, str]] = []

    @hookimpl
    def tallyclerk_file_skipped(self, context: Any, skip: Any) -> None:
        self.seen.append((skip.path, context.file_id, skip.earlier_batch_id))


def _files(tmp_path: Path, names: range, tag: str = "") -> list[str]:
    out = []
    for i in names:
        p = tmp_path / f"f{i:03d}.csv"
        p.write_text(f"id,name\n{i},n{i}{tag}\n", encoding="utf-8")
        out.append(str(p))
    return out


def _manifest(db: Path, batch_id: str) -> dict[str, tuple[str, int, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT path, status, id, earlier_batch_id FROM tallyclerk_files "
            "WHERE batch_id = ? ORDER BY id", (batch_id,)).fetchall()
    out = {p: (s, i, e) for p, s, i, e in rows}
    assert len(out) == len(rows), "one manifest row per path and batch"
    return out


def test_a_rerun_skips_each_file_once_with_its_own_row(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    url = f"sqlite:///{db}"
    old = _files(tmp_path, range(N))
    first = tallyclerk.load(old, table="t", into=url)
    assert first.status == "succeeded"
    # new content among the old files, and one path given twice
    (tmp_path / "new").mkdir()
    new = _files(tmp_path / "new", range(3), tag="x")
    paths = old[:10] + [new[0]] + old[10:] + [new[1], old[0], new[2]]
    skips = Skips()
    again = tallyclerk.load(paths, table="t", into=url, plugins=[skips])
    assert again.status == "succeeded"
    statuses = [(f.path, f.status) for f in again.files]
    # in the order given: manifest ids follow the order files are processed in
    assert statuses == [(p, "loaded" if p in new else "skipped") for p in paths]
    with sqlite3.connect(db) as conn:
        counted = dict(conn.execute(
            "SELECT status, count(*) FROM tallyclerk_files WHERE batch_id = ? GROUP BY 1",
            (again.batch_id,)).fetchall())
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM tallyclerk_files WHERE batch_id = ? AND status = 'skipped'",
            (again.batch_id,))]
        (loaded_rows,) = conn.execute("SELECT count(*) FROM t").fetchone()
    assert counted == {"skipped": N + 1, "loaded": 3}  # old[0] is given twice: two rows
    assert sorted(i for _, i, _ in skips.seen) == sorted(ids)  # each hook names its own row
    assert {e for _, _, e in skips.seen} == {first.batch_id}
    assert loaded_rows == N + 3


def test_a_batch_that_stops_reports_what_its_manifest_says(tmp_path: Path) -> None:
    """on_error=abort stops at a missing file: every path after it is reported as its
    manifest row says (skipped when its skip was already committed), or not attempted when
    it has no row; nothing new is loaded."""
    db = tmp_path / "x.db"
    url = f"sqlite:///{db}"
    old = _files(tmp_path, range(6))
    assert tallyclerk.load(old, table="t", into=url).status == "succeeded"
    (tmp_path / "new").mkdir()
    new = _files(tmp_path / "new", range(2), tag="x")
    missing = str(tmp_path / "missing.csv")
    paths = old[:2] + [missing] + old[2:4] + new + old[4:]
    report = tallyclerk.load(paths, table="t", into=url, on_error="abort")
    assert report.status in ("failed", "partial")
    got = {f.path: f for f in report.files}
    assert set(got) == set(paths)
    rows = _manifest(db, report.batch_id)
    assert got[missing].status == "failed"
    for p in old[:2]:
        assert got[p].status == rows[p][0] == "skipped", p
    for p in paths[3:]:
        if p in rows:
            assert got[p].status == rows[p][0] == "skipped", p
        else:
            assert got[p].status == "failed" and "not attempted" in str(got[p].error), p
    for p in new:
        assert p not in rows, p


def test_a_rerun_with_the_audit_store_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    old = _files(tmp_path, range(N))
    first = tallyclerk.load(old, table="t", into=url, audit=pg_url)
    assert first.status == "succeeded"
    skips = Skips()
    again = tallyclerk.load(old + old[:1], table="t", into=url, audit=pg_url, plugins=[skips])
    assert [f.status for f in again.files] == ["skipped"] * (N + 1)
    ids = [i for _, i, _ in skips.seen]
    assert len(set(ids)) == N + 1 and all(i is not None for i in ids)
    assert {e for _, _, e in skips.seen} == {first.batch_id}
    assert sorted(p for p, _, _ in skips.seen) == sorted(old + old[:1])


def test_a_corrupt_archive_among_skipped_files_fails_at_its_turn(tmp_path: Path) -> None:
    """Fingerprinting a truncated archive fails: the chunk's other files are still skipped,
    the archive fails as its own file, the load goes on."""
    import gzip

    url = f"sqlite:///{tmp_path / 'x.db'}"
    old = _files(tmp_path, range(4))
    assert tallyclerk.load(old, table="t", into=url).status == "succeeded"
    whole = gzip.compress(b"id,name\n" + b"".join(b"%d,n\n" % i for i in range(50_000)))
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    report = tallyclerk.load(old[:2] + [str(cut)] + old[2:], table="t", into=url)
    got = {f.path: f for f in report.files}
    assert report.status != "succeeded"
    assert got[str(cut)].status == "failed" and "corrupt or truncated" in str(got[str(cut)].error)
    assert [got[p].status for p in old] == ["skipped"] * 4
