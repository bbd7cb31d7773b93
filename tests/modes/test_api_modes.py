"""Write modes through the Python API: ``tallyclerk.load(..., mode=..., primary_key=...)`` on
every built-in sink, the same table as through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

import tallyclerk
from tallyclerk.errors import ConfigError
from tests.modes.targets import Target


def _load(target: Target, snapshots: Path, *names: str, **kwargs: object) -> tallyclerk.LoadReport:
    return tallyclerk.load([str(snapshots / n) for n in names], table="customers",
                           into=target.into, audit=target.audit,
                           schema=str(snapshots / "schema.json"), **kwargs)  # type: ignore[arg-type]


def test_merge_replace_and_append_through_load(target: Target, snapshots: Path) -> None:
    first = _load(target, snapshots, "day1.csv", mode="merge", primary_key=["customer_id"])
    assert first.status == "succeeded"
    second = _load(target, snapshots, "day2.csv", mode="merge", primary_key="customer_id")
    (f,) = second.files
    assert (f.rows_written, f.rows_inserted, f.rows_updated) == (2, 1, 1)
    assert target.rows("customers") == [(1, "Ada", "gold"), (2, "Bob", "gold"),
                                        (3, "Cy", "bronze"), (4, "Dee", "silver")]
    replaced = _load(target, snapshots, "day2.csv", mode="replace")
    assert replaced.files[0].status == "loaded"
    assert target.rows("customers") == [(2, "Bob", "gold"), (4, "Dee", "silver")]
    # append keeps the schema's primaryKey: customer 2 is already in the table, rejected
    appended = _load(target, snapshots, "day1.csv")
    (a,) = appended.files
    assert (a.rows_read, a.rows_inserted, a.rows_updated, a.rows_rejected) == (3, 2, 0, 1)
    assert len(target.rows("customers")) == 4


def test_bad_modes_are_config_errors(target: Target, snapshots: Path) -> None:
    with pytest.raises(ConfigError, match="--mode must be one of"):
        _load(target, snapshots, "day1.csv", mode="upsert")
    with pytest.raises(ConfigError, match="--primary-key is for --mode merge"):
        _load(target, snapshots, "day1.csv", primary_key="customer_id")
    with pytest.raises(ConfigError, match="not columns of the table"):
        _load(target, snapshots, "day1.csv", mode="merge", primary_key="nope")
    with pytest.raises(ConfigError, match="replace cannot be shared"):
        _load(target, snapshots, "day1.csv", mode="replace", workers=2)
