"""Schema inference (``tallyclerk.infer``, ``tallyclerk infer``): the narrowest type every
sampled value fits, ``required`` where nothing was missing, and an inferred schema loads its
own sample without a reject."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tallyclerk
from tallyclerk._core import CsvReader, TableSchema
from tallyclerk.errors import ConfigError, SourceError
from tests.clirun import env_for, run_cli

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

ints = st.integers(-(2**63), 2**63 - 1).map(str)
decimals = st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(
    lambda s: "." in s or "e" in s)
bools = st.sampled_from(["true", "false", "True", "False", "TRUE", "FALSE"])
dates = st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat)
datetimes = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 1, 1),
                         timezones=st.none() | st.just(dt.timezone.utc)).map(
    lambda d: d.isoformat())
times = st.times().map(lambda t: t.isoformat())
years = st.integers(0, 9999).map(lambda y: f"{y:04d}")
words = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), min_size=1)

BY_TYPE: dict[str, Any] = {
    "integer": ints, "number": decimals, "boolean": bools, "date": dates,
    "datetime": datetimes, "time": times, "year": years,
}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return str(path)


def loads_without_rejects(path: str, schema: dict[str, Any]) -> int:
    """Validate the whole file against ``schema``; the number of rejected rows."""
    compiled = TableSchema.from_json(json.dumps(schema))
    rejected = 0
    for batch in CsvReader(path):
        batch.validate(compiled)
        rejected += batch.num_rejected
    return rejected


def types(schema: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in schema["fields"]}


@SETTINGS
@given(kind=st.sampled_from(sorted(BY_TYPE)), data=st.data())
def test_a_column_of_one_type_infers_that_type(tmp_path: Path, kind: str, data: Any) -> None:
    values = data.draw(st.lists(BY_TYPE[kind], min_size=1, max_size=30))
    name = "year" if kind == "year" else "col"
    path = write_csv(tmp_path / "t.csv", [name], [[v] for v in values])
    schema = tallyclerk.infer(path)
    assert types(schema) == {name: kind}
    assert schema["fields"][0]["constraints"] == {"required": True}
    assert f"{len(values)} row" in schema["description"]
    assert loads_without_rejects(path, schema) == 0


ORDER = ["year", "integer", "number", "boolean", "date", "datetime", "time", "object", "array",
         "string"]


def assert_narrowest(path: str, name: str, got: str) -> None:
    """``got`` loads the column without a reject and every type before it in the candidate
    order rejects at least one value (the loader itself is the oracle)."""
    assert loads_without_rejects(path, {"fields": [{"name": name, "type": got}]}) == 0
    for narrower in ORDER[: ORDER.index(got)]:
        if narrower == "year" and "year" not in name.lower():
            continue
        schema = {"fields": [{"name": name, "type": narrower}]}
        assert loads_without_rejects(path, schema) > 0, (narrower, got)


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(sorted(BY_TYPE)), min_size=2, max_size=4, unique=True),
    data=st.data(),
)
def test_mixed_columns_widen(tmp_path: Path, kinds: list[str], data: Any) -> None:
    values = [data.draw(BY_TYPE[k]) for k in kinds]
    path = write_csv(tmp_path / "t.csv", ["c"], [[v] for v in values])
    got = types(tallyclerk.infer(path))["c"]
    if set(kinds) == {"integer", "number"}:
        assert got == "number"
    assert_narrowest(path, "c", got)


@SETTINGS
@given(rows=st.lists(st.lists(st.one_of(words, ints, decimals, dates, bools, st.just("")),
                              min_size=3, max_size=3), min_size=1, max_size=40))
def test_inferred_schema_loads_its_own_sample(tmp_path: Path, rows: list[list[str]]) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "b", "c"], rows)
    schema = tallyclerk.infer(path)
    assert loads_without_rejects(path, schema) == 0
    for i, (name, got) in enumerate(types(schema).items()):
        if all(r[i] == "" for r in rows):
            assert got == "string"  # nothing to go by
        else:
            assert_narrowest(path, name, got)
    for i, f in enumerate(schema["fields"]):
        required = f.get("constraints", {}).get("required", False)
        assert required == all(r[i] != "" for r in rows)


def test_zero_one_is_integer_and_spaces_are_strings(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["flag", "padded", "mixed", "empty"],
                     [["0", " 1", "2024-01-01", ""], ["1", "2 ", "2024-01-01T00:00:00", ""]])
    schema = tallyclerk.infer(path)
    assert types(schema) == {"flag": "integer", "padded": "string", "mixed": "string",
                             "empty": "string"}
    assert "constraints" not in schema["fields"][3]


def test_rows_limit_the_sample(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["a"], [["1"], ["2"], ["x"]])
    assert types(tallyclerk.infer(path, rows=2)) == {"a": "integer"}
    assert types(tallyclerk.infer(path)) == {"a": "string"}
    assert "2 rows" in tallyclerk.infer(path, rows=2)["description"]


def test_several_files_make_one_schema(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", ["id", "x"], [["1", "2"]])
    b = write_csv(tmp_path / "b.csv", ["id", "y"], [["2", "2024-01-01"]])
    schema = tallyclerk.infer([a, b])
    assert [f["name"] for f in schema["fields"]] == ["id", "x", "y"]
    assert types(schema) == {"id": "integer", "x": "integer", "y": "date"}
    required = [f.get("constraints", {}).get("required", False) for f in schema["fields"]]
    assert required == [True, False, False]


def test_tsv_delimiter_missing_values_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "t.tsv"
    p.write_text('a\tb\tq\n1\tNA\t"x\n2\t3\t"y\n')
    schema = tallyclerk.infer(str(p), missing_values=["NA"])
    assert types(schema) == {"a": "integer", "b": "integer", "q": "string"}  # TSV: no quoting
    assert schema["missingValues"] == ["NA"]
    assert "constraints" not in schema["fields"][1]
    with pytest.raises(SourceError):
        tallyclerk.infer(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError):
        tallyclerk.infer(str(p), rows=0)
    with pytest.raises(ConfigError):
        tallyclerk.infer(str(tmp_path / "data.parquet"))
    with pytest.raises(ConfigError):
        tallyclerk.infer([str(p), str(tmp_path / "x.jsonl")])


def test_jsonl_values_keep_their_json_types(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    lines = [
        {"i": 1, "n": 1.0, "b": True, "d": "2024-01-31", "o": {"k": [1]}, "a": [1, 2], "s": "x",
         "mixed": 1},
        [],
        "not an object",
        {},
        {"i": -5, "n": 2, "b": False, "d": "2024-02-29", "o": {}, "a": [], "s": 3, "mixed": "x",
         "late": None},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    schema = tallyclerk.infer(str(p))
    assert types(schema) == {"i": "integer", "n": "number", "b": "boolean", "d": "date",
                             "o": "object", "a": "array", "s": "string", "mixed": "string",
                             "late": "string"}
    required = {f["name"] for f in schema["fields"] if f.get("constraints", {}).get("required")}
    assert required == {"i", "n", "b", "d", "o", "a", "s", "mixed"}
    assert "2 rows" in schema["description"]


def test_compressed_files_are_read_decompressed(tmp_path: Path) -> None:
    csv_gz = tmp_path / "t.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"a,b\n1,2024-01-01\n2,2024-01-02\n"))
    assert types(tallyclerk.infer(str(csv_gz))) == {"a": "integer", "b": "date"}
    jsonl_gz = tmp_path / "t.jsonl.gz"
    jsonl_gz.write_bytes(gzip.compress(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n'))
    assert types(tallyclerk.infer(str(jsonl_gz))) == {"a": "integer"}


def test_cli_infer_then_load_gives_typed_columns(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "sales.csv", ["id", "amount", "day", "paid"],
                    [["1", "1.5", "2024-01-01", "true"], ["2", "2.25", "2024-01-02", "false"]])
    env = env_for()
    res = run_cli("infer", src, "--rows", "100", cwd=tmp_path, env=env)
    assert res.code == 0, res.err
    schema = json.loads(res.out)
    assert types(schema) == {"id": "integer", "amount": "number", "day": "date",
                             "paid": "boolean"}
    one_line = run_cli("infer", src, "--json", cwd=tmp_path, env=env)
    assert one_line.code == 0 and one_line.out.count("\n") == 1
    assert json.loads(one_line.out) == schema
    (tmp_path / "schema.json").write_text(res.out)
    db = tmp_path / "out.db"
    load = run_cli("load", src, "--table", "sales", "--schema", "schema.json",
                   "--into", f"sqlite:///{db}", "--json", cwd=tmp_path, env=env)
    assert load.code == 0, load.err
    assert load.json()["rows_rejected"] == 0
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT sum(amount), typeof(id) FROM sales").fetchone() == (
            3.75, "integer")


def test_cli_infer_exit_codes(tmp_path: Path) -> None:
    env = env_for()
    missing = run_cli("infer", str(tmp_path / "nope.csv"), cwd=tmp_path, env=env)
    assert missing.code == 1 and "no such file" in missing.err
    assert missing.out == ""
    bad = run_cli("infer", "x.csv", "--rows", "0", cwd=tmp_path, env=env)
    assert bad.code == 2
    fmt = run_cli("infer", "x.bin", cwd=tmp_path, env=env)
    assert fmt.code == 2 and "--format" in fmt.err
