"""Property: merging any sequence of snapshot files gives the table a dictionary model gives
(later files win; within a file the first row of a key wins, the repeats are rejected), and the
manifest's inserted/updated counts add up. Through ``tallyclerk.load`` on real SQLite files."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk

SCHEMA = {"fields": [{"name": "k", "type": "integer"}, {"name": "v", "type": "string"}],
          "primaryKey": "k"}

rows = st.lists(st.tuples(st.integers(0, 15), st.sampled_from(["a", "b", "c", "d"])),
                max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(rows, min_size=1, max_size=4), split=st.booleans())
def test_merge_equals_the_model(files: list[list[tuple[int, str]]], split: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        paths = []
        for i, content in enumerate(files):
            p = d / f"f{i}.csv"
            # a distinct first line keeps identical contents distinct files (not skipped)
            p.write_text("k,v\n" + "".join(f"{k},{v}\n" for k, v in content)
                         + f"{1000 + i},tag\n", encoding="utf-8")
            paths.append(p)
        model: dict[int, str] = {}
        inserted_total = 0
        for i, content in enumerate(files):
            seen: set[int] = set()
            for k, v in [*content, (1000 + i, "tag")]:
                if k in seen:
                    continue
                seen.add(k)
                inserted_total += k not in model
                model[k] = v
        db = d / "t.db"
        loads = [paths] if not split else [[p] for p in paths]
        reports = [tallyclerk.load([str(p) for p in group], table="t", into=f"sqlite:///{db}",
                                   schema=SCHEMA, mode="merge") for group in loads]
        con = sqlite3.connect(db)
        try:
            got = dict(con.execute("SELECT k, v FROM t").fetchall())
        finally:
            con.close()
        assert got == model
        files_done = [f for r in reports for f in r.files]
        assert all(f.status == "loaded" for f in files_done)
        assert sum(f.rows_inserted or 0 for f in files_done) == inserted_total
        for f in files_done:
            assert (f.rows_inserted or 0) + (f.rows_updated or 0) == f.rows_written
            assert f.rows_read == f.rows_written + f.rows_rejected
