"""Table Schema inference from a sample: ``tallyclerk.infer(paths)`` and ``tallyclerk infer``.

The rules are the Rust core's (``rust/data/infer.rs``), the same for every format: per column,
the FIRST of ``year`` (only for a column whose name contains "year"), ``integer``, ``number``,
``boolean``, ``date``, ``datetime``, ``time``, ``object``, ``array`` that loading would accept
for every sampled non-missing value, else ``string``; ``constraints.required`` when no sampled
value was missing; the sample size in the schema's ``description``. Each candidate is checked
by the very coercion a load runs, so an inferred schema loads its own sample without a reject.

CSV is sampled in Rust at the reader's speed. JSON Lines is parsed with orjson, values keep
their JSON types (``1`` is an integer, ``1.0`` a number, ``"1"`` a string that looks like an
integer and is inferred as one, objects and arrays their JSON text), and the same Rust
inference runs over them. Lines that are not JSON objects are not part of the sample.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from tallyclerk.errors import ConfigError
from tallyclerk.inputs import check_compression, strip_compression_suffix

__all__ = ["DEFAULT_ROWS", "FORMATS", "detect_format", "infer"]

DEFAULT_ROWS = 10_000
FORMATS = ("csv", "tsv", "jsonl")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
             ".ndjson": "jsonl", ".jsonl.txt": "jsonl"}
_CHUNK_ROWS = 10_000


def detect_format(path: str, given: str | None = None) -> str:
    """``given`` (csv, tsv, jsonl, ndjson) or the format named by the path's suffix."""
    if given:
        fmt = given.lower()
        fmt = "jsonl" if fmt == "ndjson" else fmt
        if fmt not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {given!r}")
        return fmt
    lower = strip_compression_suffix(path).lower()
    for suffix, fmt in _SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    raise ConfigError(f"{path}: cannot tell the format from the name (pass --format csv or jsonl)")


def infer(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    rows: int = DEFAULT_ROWS,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    missing_values: Sequence[str] = ("",),
    max_field_bytes: int = 16 * 1024 * 1024,
    compression: str = "auto",
) -> dict[str, Any]:
    """Infer a Table Schema from the first ``rows`` rows of ``paths`` (read in order).

    Several files make one schema: their columns in first-seen order; a column absent from a
    file counts as missing there. All files must be of one format. Compressed files (gzip,
    bzip2, xz, zstd; ``orders.csv.gz``) are read decompressed, as ``load`` reads them.

    Raises:
        ConfigError: no path, ``rows`` < 1, an unknown or mixed format, a bad delimiter.
        SourceError: a file cannot be read (missing, not CSV, ...).
    """
    items = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [
        os.fspath(p) for p in paths]
    if not items:
        raise ConfigError("infer needs at least one file")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ConfigError(f"rows must be an integer of at least 1, got {rows!r}")
    formats = {detect_format(p, format) for p in items}
    if len(formats) > 1:
        raise ConfigError(f"infer reads one format at a time, got {', '.join(sorted(formats))}")
    fmt = formats.pop()
    missing = list(missing_values)
    compression = check_compression(compression)
    if fmt == "jsonl":
        text = _infer_jsonl(items, rows, missing, max_field_bytes, compression)
    elif fmt == "tsv":
        text = _infer_tsv(items, rows, missing, max_field_bytes, encoding, compression)
    else:
        from tallyclerk._core import infer_csv

        if delimiter in ("\\t", "tab"):
            delimiter = "\t"
        text = infer_csv(items, rows=rows, delimiter=delimiter or ",", encoding=encoding,
                         missing_values=missing, max_field_bytes=max_field_bytes,
                         compression=compression)
    return _ordered(json.loads(text))


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    """Keys in reading order: fields (name, type, constraints), missingValues, description."""
    fields = [{"name": f["name"], "type": f["type"],
               **{k: v for k, v in f.items() if k not in ("name", "type")}}
              for f in doc["fields"]]
    return {"fields": fields, **{k: v for k, v in doc.items() if k != "fields"}}


def _infer_jsonl(paths: list[str], rows: int, missing: list[str], max_line: int,
                 compression: str) -> str:
    from tallyclerk._core import RecordBatch, SchemaInference

    inference = SchemaInference(missing_values=missing)
    sampled: list[str] = []
    for path in paths:
        if inference.rows >= rows and sampled:
            break
        sampled.append(path)
        objects: list[tuple[dict[str, Any], bytes, int]] = []
        keys: dict[str, None] = {}
        for lineno, line in _lines(path, max_line, compression):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(obj) is not dict or not obj:
                continue
            keys.update(dict.fromkeys(obj))
            objects.append((obj, line, lineno))
            if inference.rows + len(objects) >= rows:
                break
        columns = list(keys)
        for start in range(0, len(objects), _CHUNK_ROWS):
            row_values: list[tuple[Any, ...]] = []
            numbers: list[int] = []
            for obj, line, lineno in objects[start:start + _CHUNK_ROWS]:
                try:
                    row_values.append(_careful_row(obj, line, columns))
                except RecursionError:  # the loader rejects these lines too
                    continue
                numbers.append(lineno)
            inference.add(RecordBatch.from_rows(columns, row_values, numbers, numbers))
    return inference.schema(sampled)


def _infer_tsv(paths: list[str], rows: int, missing: list[str], max_line: int, encoding: str,
               compression: str) -> str:
    """TSV through the TSV loader itself (its escapes and no quoting), inferred in Rust."""
    from tallyclerk._core import RecordBatch, SchemaInference
    from tallyclerk.builtins.tsv_loader import TsvSource

    inference = SchemaInference(missing_values=missing)
    sampled: list[str] = []
    for path in paths:
        if inference.rows >= rows and sampled:
            break
        sampled.append(path)
        source = TsvSource(path, batch_rows=min(rows, _CHUNK_ROWS), max_line_bytes=max_line,
                           encoding=encoding, compression=compression)
        try:
            inference.add(RecordBatch.from_rows(source.columns, [], [], []))
            for batch in source:
                inference.add(batch, rows - inference.rows)
                if inference.rows >= rows:
                    break
        finally:
            source.close()
    return inference.schema(sampled)


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _cell(value: Any) -> Any:
    """A sampled JSON value as the loader stores it (nested values as JSON text, integers
    beyond 64 bits as their digits)."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _I64_MAX else str(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits nested inside: orjson cannot write it
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _needs_exact(obj: dict[str, Any]) -> bool:
    """orjson turns integers beyond 64 bits into floats; spot values that may have lost digits,
    nested ones included (iteratively: orjson accepts nesting deeper than Python recursion)."""
    stack: list[Any] = list(obj.values())
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            if abs(value) >= 2.0**63:
                return True
        elif isinstance(value, int):
            if not isinstance(value, bool) and value > _I64_MAX:
                return True
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _careful_row(obj: dict[str, Any], line: bytes, columns: list[str]) -> tuple[Any, ...]:
    """A sampled row, its values as the loader stores them."""
    if _needs_exact(obj):
        obj = json.loads(line)
    return tuple(_cell(obj.get(name)) for name in columns)


def _lines(path: str, max_line: int, compression: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the non-blank lines of a file; over-long lines are skipped
    without being held in memory (the loader rejects them)."""
    from tallyclerk.builtins._linefile import open_lines, skip_rest

    with open_lines(path, compression) as f:
        if f.peek(3)[:3] == b"\xef\xbb\xbf":
            f.read(3)
        lineno = 0
        while True:
            line = f.readline(max_line + 1)
            if not line:
                return
            lineno += 1
            if len(line) > max_line and not line.endswith(b"\n"):
                skip_rest(f)
                continue
            if not line.isspace():
                yield lineno, line.rstrip(b"\r\n")
