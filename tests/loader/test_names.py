"""Table names: refused when quoting cannot make them safe, quoted otherwise."""

from __future__ import annotations

import pytest

from tallyclerk.errors import ConfigError
from tallyclerk.names import check_table_name


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a\x00b", "tab\tname", "line\nbreak", "x" * 256, "é" * 128, "sqlite_master",
     "SQLite_x", "tallyclerk_files", "TallyClerk_batches"],
)
def test_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        check_table_name(name)


@pytest.mark.parametrize(
    "name",
    ["orders", "Orders 2026", 'we"ird', "drop table x; --", "ünïcødé", "select", "x" * 255],
)
def test_allowed_and_quoted_later(name: str) -> None:
    assert check_table_name(name) == name
