"""The validator conformance suite: what every ``tallyclerk_validate_batch`` plugin must do.

::

    from tallyclerk.testing import ValidatorConformance
    import my_validator

    class TestMyValidator(ValidatorConformance):
        plugin = my_validator
        columns = ["id", "email"]
        good_rows = [("1", "a@example.com"), ("2", "b@example.com")]
        bad_rows = [("3", "not an email")]
        expected_rejects = [("email", "email-format")]   # (column, rule) per bad row

The checks: the hookimpl matches its spec; good rows pass; every bad row is rejected with a
rule and a reason (and the expected column and rule); a row already rejected keeps its first
verdict; rows, record numbers and lines are left in place; and a real load of a CSV file
holding both quarantines exactly the bad rows, naming their lines, and loads the rest.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pluggy
import pytest

from tallyclerk.testing.loader_suite import strict_plugin_manager
from tallyclerk.testing.runner import Runner

__all__ = ["ValidatorConformance"]


class ValidatorConformance:
    """Checks a validator plugin against the ``tallyclerk_validate_batch`` contract.

    Set ``plugin``, ``columns``, ``good_rows`` and ``bad_rows`` (tuples of text values, as a
    loader yields them; None for a missing value). Optional: ``schema`` (a Table Schema dict
    the hook receives; None by default), ``expected_rejects`` (one ``(column, rule)`` per bad
    row, column None for a row-level verdict), ``table``, ``tallyclerk_isolated`` (True by
    default: only the built-ins and ``plugin`` run, so an installed copy of the validator
    cannot do its rejecting for it).
    """

    plugin: ClassVar[Any] = None
    tallyclerk_isolated: ClassVar[bool] = True
    schema: ClassVar[Mapping[str, Any] | None] = None
    columns: ClassVar[Sequence[str]] = ()
    good_rows: ClassVar[Sequence[Sequence[Any]]] = ()
    bad_rows: ClassVar[Sequence[Sequence[Any]]] = ()
    expected_rejects: ClassVar[Sequence[tuple[str | None, str]] | None] = None
    table: ClassVar[str] = "conformance"

    @pytest.fixture()
    def validator_pm(self) -> pluggy.PluginManager:
        assert self.plugin is not None, "set plugin = <your plugin module or object>"
        return strict_plugin_manager(self.plugin)

    def table_schema(self) -> Any:
        from tallyclerk import TableSchema

        return None if self.schema is None else TableSchema.from_json(json.dumps(self.schema))

    def batch(self, rows: Sequence[Sequence[Any]]) -> Any:
        from tallyclerk import RecordBatch

        numbers = list(range(1, len(rows) + 1))
        lines = [n + 1 for n in numbers]  # as if after a header line
        return RecordBatch.from_rows(list(self.columns), [tuple(r) for r in rows], numbers, lines)

    def validate(self, pm: pluggy.PluginManager, batch: Any) -> Any:
        from tallyclerk.protocols import BatchContext

        schema = self.table_schema()
        context = BatchContext(batch_id="conformance", file_id=1, path="conformance.csv",
                               table=self.table, schema=schema, options={})
        return pm.hook.tallyclerk_validate_batch(batch=batch, context=context)

    # -- checks -------------------------------------------------------------------------------

    def test_hookimpls_match_the_specs(self) -> None:
        pm = strict_plugin_manager(self.plugin)
        hooks = {caller.name for caller in pm.get_hookcallers(self.plugin) or []}
        assert "tallyclerk_validate_batch" in hooks

    def test_good_rows_pass(self, validator_pm: pluggy.PluginManager) -> None:
        assert self.good_rows, "set good_rows"
        batch = self.batch(self.good_rows)
        self.validate(validator_pm, batch)
        assert batch.num_rejected == 0, [(r.column, r.rule, r.reason) for r in batch.rejects()]

    def test_bad_rows_are_rejected_with_reasons(self, validator_pm: pluggy.PluginManager) -> None:
        assert self.bad_rows, "set bad_rows"
        batch = self.batch(self.bad_rows)
        self.validate(validator_pm, batch)
        rejects = batch.rejects()
        assert [r.index for r in rejects] == list(range(len(self.bad_rows))), "every bad row"
        for r in rejects:
            assert r.rule and r.reason, "a reject names its rule and says why"
            assert r.column is None or r.column in self.columns
        if self.expected_rejects is not None:
            assert [(r.column, r.rule) for r in rejects] == list(self.expected_rejects)

    def test_rows_stay_in_place(self, validator_pm: pluggy.PluginManager) -> None:
        rows = list(self.good_rows) + list(self.bad_rows)
        batch = self.batch(rows)
        self.validate(validator_pm, batch)
        assert batch.num_rows == len(rows)
        assert batch.record_numbers() == list(range(1, len(rows) + 1))
        assert batch.lines() == [n + 1 for n in range(1, len(rows) + 1)]
        assert batch.num_rejected == len(self.bad_rows)
        assert all(batch.is_rejected(i) for i in range(len(self.good_rows), len(rows)))

    def test_first_verdict_wins(self, validator_pm: pluggy.PluginManager) -> None:
        rows = list(self.good_rows[:1]) + list(self.bad_rows[:1])
        batch = self.batch(rows)
        batch.reject(0, None, "earlier", "rejected before this validator ran")
        batch.reject(1, None, "earlier", "rejected before this validator ran")
        self.validate(validator_pm, batch)
        assert [(r.index, r.rule) for r in batch.rejects()] == [(0, "earlier"), (1, "earlier")]

    def test_load_quarantines_exactly_the_bad_rows(
        self, tallyclerk_runner: Runner, tmp_path: Path
    ) -> None:
        rows = list(self.good_rows) + list(self.bad_rows)
        path = tmp_path / "mixed.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(["" if v is None else v for v in row] for row in rows)
        result = tallyclerk_runner.load([path], table=self.table, schema=self.schema,
                                        plugins=[self.plugin])
        entry = result.file(path)
        assert entry["status"] == "loaded", entry
        result.check_accounting()
        assert entry["rows_rejected"] == len(self.bad_rows)
        assert result.count() == len(self.good_rows)
        rejects = result.rejects()
        first_bad_line = len(self.good_rows) + 2  # header, then the good rows
        assert [r["line"] for r in rejects] == list(
            range(first_bad_line, first_bad_line + len(self.bad_rows))
        )
        assert all(r["reason"] for r in rejects)
