"""A batch remembers its table's schema between files (issue 16.4: one read a batch, not one
a file) and checks, in each file's transaction, that it is still the table's current
version. Here another process evolves the table between two files of a running load (from
the first load's ``tallyclerk_file_start`` hook): the second file is planned again on the
new version, within its one attempt, with the same outcome a fresh read would have given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tallyclerk import hookimpl
from tallyclerk.protocols import BatchContext
from tests.api.conftest import write_csv
from tests.clirun import env_for, query, run_cli


class EvolveBeforeSecondFile:
    """At the start of ``second``, another process loads ``other`` with ``--columns evolve``."""

    def __init__(self, work: Path, db: Path, second: Path, other: Path) -> None:
        self.work, self.db, self.second, self.other = work, db, second, other
        self.starts: list[tuple[str, int]] = []

    @hookimpl
    def tallyclerk_file_start(self, context: BatchContext) -> None:
        self.starts.append((Path(context.path).name, context.attempt))
        if Path(context.path) == self.second and context.attempt == 1:
            r = run_cli("load", str(self.other), "--table", "t", "--into",
                        f"sqlite:///{self.db}", "--columns", "evolve", cwd=self.work,
                        env=env_for())
            assert r.code == 0, r.err


@pytest.mark.parametrize("columns", ["evolve", "freeze"])
def test_a_version_recorded_by_another_load_between_files_is_planned_on(
    tmp_path: Path, columns: str
) -> None:
    db = tmp_path / "t.db"
    first = write_csv(tmp_path / "a.csv", [(1, "x")], header="id,name")
    second = write_csv(tmp_path / "b.csv", [(2, "y", "e2")], header="id,name,extra")
    other = write_csv(tmp_path / "c.csv", [(3, "z", "e3")], header="id,name,extra")
    hook = EvolveBeforeSecondFile(tmp_path, db, second, other)

    report = tallyclerk.load([first, second], table="t", into=f"sqlite:///{db}",
                             columns=columns, plugins=[hook])

    files = {Path(f.path).name: f for f in report.files}
    assert files["a.csv"].status == "loaded"
    assert files["a.csv"].schema_version == 1
    # planned on version 2 (the other load's), not on the remembered version 1: under
    # evolve it adds nothing (no version 3), under freeze its column is no longer new
    assert files["b.csv"].status == "loaded", files["b.csv"].error
    assert files["b.csv"].schema_version == 2
    assert files["b.csv"].columns_added == ()
    assert hook.starts == [("a.csv", 1), ("b.csv", 1)]  # no retry
    versions: list[dict[str, Any]] = tallyclerk.table_schema(
        "t", into=f"sqlite:///{db}", history=True)
    assert [v["version"] for v in versions] == [1, 2]
    assert sorted(query(db, "SELECT id, name, extra FROM t")) == [
        (1, "x", None), (2, "y", "e2"), (3, "z", "e3")]


def test_a_file_that_evolves_the_table_is_remembered_for_the_next(tmp_path: Path) -> None:
    """The version a file records is the next file's (no second version of the same
    columns, no schema read needed to know it)."""
    db = tmp_path / "t.db"
    paths = [write_csv(tmp_path / "a.csv", [(1, "x")], header="id,name"),
             write_csv(tmp_path / "b.csv", [(2, "y", "e")], header="id,name,extra"),
             write_csv(tmp_path / "c.csv", [(3, "z", "f")], header="id,name,extra"),
             write_csv(tmp_path / "d.csv", [(4, "w")], header="id,name")]
    report = tallyclerk.load(paths, table="t", into=f"sqlite:///{db}", columns="evolve")
    assert [(f.status, f.schema_version, f.columns_added) for f in report.files] == [
        ("loaded", 1, ()), ("loaded", 2, ("extra",)), ("loaded", 2, ()), ("loaded", 2, ())]
    assert [v["version"] for v in tallyclerk.table_schema(
        "t", into=f"sqlite:///{db}", history=True)] == [1, 2]
