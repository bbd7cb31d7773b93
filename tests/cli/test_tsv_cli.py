"""TSV is a built-in format with TSV's rules (no quoting, backslash escapes), end to end."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tallyclerk.builtins.tsv_loader import TsvSource
from tests.cli.conftest import query, tallyclerk


def test_tsv_loads_with_tsv_rules(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_bytes(
        b'id\tname\tnote\n'
        b'1\t"quoted\tplain\n'          # a leading quote is just a character
        b'2\tback\\\\slash\ttab\\there\n'
        b'3\ttoo\tmany\tfields\n'
        b'4\tnew\\nline\t\r\n'
    )
    # --infer none: the values exactly as TSV's rules read them ("" stays "")
    r = tallyclerk("load", "a.tsv", "--table", "t", "--json", "--infer", "none", cwd=tmp_path)
    assert r.code == 0, r.err
    report = r.json()
    assert (report["rows_read"], report["rows_written"], report["rows_rejected"]) == (4, 3, 1)
    assert query(tmp_path / "tallyclerk.db", 'SELECT id, name, note FROM "t"') == [
        ("1", '"quoted', "plain"), ("2", "back\\slash", "tab\there"), ("4", "new\nline", "")]
    assert query(tmp_path / "tallyclerk.db",
                 "SELECT line, rule, raw FROM tallyclerk_rejects") == [
        (4, "row-length", "3\ttoo\tmany\tfields")]


def test_format_tsv_claims_any_name_and_csv_no_longer_claims_tsv(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text('id\tname\n1\t"x"\n', encoding="utf-8")
    r = tallyclerk("load", "a.txt", "--table", "t", "--format", "tsv", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT name FROM "t"') == [('"x"',)]
    # read as CSV on request: one column named "id\tname", CSV quoting applies
    r = tallyclerk("load", "a.txt", "--table", "c", "--format", "csv", "--delimiter", "tab",
                   "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert query(tmp_path / "tallyclerk.db", 'SELECT name FROM "c"') == [("x",)]


_FIELD = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def _escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(_FIELD, _FIELD), min_size=1, max_size=20))
def test_escaped_fields_round_trip(rows: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.tsv"
        body = "".join(f"{_escape(a)}\t{_escape(b)}\n" for a, b in rows)
        path.write_text("a\tb\n" + body, encoding="utf-8")
        source = TsvSource(str(path), batch_rows=7)
        try:
            got = [(r["a"], r["b"]) for batch in source for r in batch.to_pylist()]
        finally:
            source.close()
    assert got == rows  # two columns: every record's line holds a tab, none is empty
