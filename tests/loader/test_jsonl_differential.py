"""The JSONL loader (Rust, serde_json) against Python's ``json`` module on generated lines:
the same lines accepted and rejected, the same columns, the same stored values.

The reference is ``json.loads`` with the loader's documented rules on top: ``NaN`` and
``Infinity`` are not JSON, a number that overflows to infinity and a lone surrogate escape make
a line malformed (orjson's rules, kept), a line must be a non-empty object whose keys can all
be column names, nested values are stored as their JSON text (compared after parsing it back,
keys in order), integers beyond 64 bits as their exact digits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tallyclerk.builtins.jsonl_loader import JsonlSource
from tallyclerk.names import column_name_problem

I64 = (-(2**63), 2**63 - 1)
KEYS = st.sampled_from(["id", "name", "v", "w", "A", "a", "", "_TC_file_id", "k\x00", "é"])
SCALARS = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(10**30)])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)  # surrogates included: escaped by json.dumps(ensure_ascii=True)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["object", "object", "object", "dup", "scalar", "raw", "mutant"]))
    if kind in ("object", "mutant"):
        obj = draw(st.dictionaries(KEYS, VALUES, max_size=4))
        sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", " :\r ")]))
        text = json.dumps(obj, separators=sep, ensure_ascii=draw(st.booleans()))
        data = text.encode("utf-8", "surrogatepass")
        if kind == "mutant" and data:
            at = draw(st.integers(0, len(data)))
            junk = draw(st.sampled_from([b"", b"\xff", b"\x01", b"}", b"{", b'"', b"1e400",
                                         b",", b"\\", b"[", b"\t"]))
            cut = draw(st.booleans())
            data = data[:at] + junk + (b"" if cut else data[at:])
        return data
    if kind == "dup":
        pairs = draw(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=4))
        return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs)
                + "}").encode()
    if kind == "scalar":
        return json.dumps(draw(VALUES)).encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([b"NaN", b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e400}',
                                 b'{"a": 1E+999}', b'{"a": "\\ud800"}', b'{"a": [1e-400]}',
                                 b"{}", b"[]", b"  ", b'{"a": 01}', b'{"a": 1.}', b'{"a": .5}',
                                 b'{"a": "x\ty"}', b'{"a": tru}', b'{"a": 1} x', b'\x0c{"a":1}',
                                 b'{"a": "\\u00e9\\n"}', b'{"a\\u0041": 2}']))


def _check(value: Any) -> bool:
    """What the loader adds to json.loads: no lone surrogates, no infinities."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and math.isinf(v):
            return False
        if isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            return False
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def reference_parse(line: bytes) -> Any:
    """The line's value, or raise ValueError when the loader must reject it as malformed."""
    text = line.decode("utf-8")  # UnicodeDecodeError is a ValueError
    value = json.loads(text, parse_constant=_no_constant)
    if not _check(value):
        raise ValueError("lone surrogate or infinity")
    return value


def reference(data: bytes) -> tuple[list[str], list[tuple[int, int, str | None, Any]]]:
    """Columns and, per record, (record number, line, rule or None, row or None)."""
    parsed: list[tuple[int, Any]] = []  # (line number, value or the ValueError)
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        if not line.strip(b" \t\r\n\x0b\x0c"):
            continue
        try:
            parsed.append((lineno, reference_parse(line)))
        except (ValueError, RecursionError) as exc:
            parsed.append((lineno, exc))
    columns: list[str] = []
    bad: set[str] = set()
    folded: dict[str, str] = {}
    for _, value in parsed:
        if isinstance(value, dict):
            for key in value:
                if key in columns or key in bad:
                    continue
                problem = column_name_problem(key)
                if problem is None and folded.setdefault(_ascii_lower(key), key) == key:
                    columns.append(key)
                else:
                    bad.add(key)
    records = []
    for number, (lineno, value) in enumerate(parsed, start=1):
        if not isinstance(value, dict) or not value or bad.intersection(value):
            records.append((number, lineno, "json", None))
        else:
            records.append((number, lineno, None, tuple(_stored(value.get(c)) for c in columns)))
    return columns, records


def _ascii_lower(key: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in key)


def _stored(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return value if I64[0] <= value <= I64[1] else str(value)
    return ("nested", json.dumps(value))  # compared after parsing the stored text back


def loaded(path: Path, want: dict[int, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """What the loader read; a stored text where the reference has a nested value is parsed
    back (so the comparison is of values, keys in order, not of float spelling)."""
    src = JsonlSource(str(path), batch_rows=4)
    out = []
    for b in src:
        verdicts = {r.record_number: r.rule for r in b.rejects()}
        nums, lines = b.record_numbers(), b.lines()
        for i, row in enumerate(b.rows()):
            rule = verdicts.get(nums[i])
            ref = want.get(nums[i]) or ()
            cells = None if rule else tuple(
                ("nested", json.dumps(json.loads(v)))
                if k < len(ref) and isinstance(ref[k], tuple) and isinstance(v, str) else v
                for k, v in enumerate(row))
            out.append((nums[i], lines[i], rule, typed(cells)))
    src.close()
    return src.columns, out


def typed(row: tuple[Any, ...] | None) -> Any:
    """Cells with their types (``1``, ``1.0`` and ``True`` are equal in Python)."""
    return None if row is None else tuple((type(v).__name__, v) for v in row)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(body=st.lists(lines(), max_size=10), ends=st.sampled_from([b"\n", b"\r\n"]),
       bom=st.booleans(), last_newline=st.booleans())
def test_rust_loader_agrees_with_python_json(tmp_path: Path, body: list[bytes], ends: bytes,
                                             bom: bool, last_newline: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + ends.join(body) + (ends if last_newline else b"")
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    want_columns, want = reference(data)
    got_columns, got = loaded(path, {number: row for number, _l, _r, row in want})
    assert got_columns == want_columns
    assert got == [(n, line, rule, typed(row)) for n, line, rule, row in want]
