"""JSON Lines loader: one JSON object per line, parsed with orjson, streamed in record batches.

Claims a file when ``--format jsonl`` is given, or without ``--format`` when its name ends in
``.jsonl``, ``.ndjson`` or ``.jsonl.txt``, also followed by a compression suffix
(``events.jsonl.zst``). The bytes come from :func:`tallyclerk.open_input`: gzip, bzip2, xz and
zstd are detected from the content and decompressed as a stream in Rust (``compression`` option
to force one); line numbers are those of the decompressed text.

Columns: the union of every object's keys in first-seen order, found by a first streaming
pass over the file (only the key set is kept); the schema, when there is one, decides what
becomes of them (validation matches columns to fields by name; see the column contract in
``tallyclerk.contract``). A key that cannot be a column name (empty, a NUL byte, longer than
255 characters, ``_tc_file_id`` in any case, or differing only in ASCII letter case from an
earlier key) is not a column: every record holding it is rejected (rule ``json``, naming the
key and why), the other records load. Records:

- a blank line is not a record (it is not counted);
- a line that is not valid JSON, is valid JSON but not an object (``[]``, ``0``, ``null``),
  or is an empty object ``{}``, is rejected (rule ``json``), with its line number and the
  reason; the other lines load;
- a line longer than ``max_field_bytes`` is rejected (rule ``line-length``) without being
  held in memory;
- nested arrays and objects load as their JSON text; integers beyond 64 bits keep their exact
  digits (as text) instead of orjson's rounded float; with duplicate keys the last one wins.

Memory is bounded: one batch of ``batch_rows`` lines (and at most ``_BATCH_BYTES`` of text).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

import orjson

from tallyclerk import RecordBatch
from tallyclerk.builtins._linefile import build_batch, open_lines, skip_rest
from tallyclerk.hookspecs import hookimpl
from tallyclerk.inputs import check_compression, strip_compression_suffix
from tallyclerk.names import column_name_problem

if TYPE_CHECKING:
    from tallyclerk._core import TableSchema

SUFFIXES = (".jsonl", ".ndjson", ".jsonl.txt")
DEFAULT_BATCH_ROWS = 10_000
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_BATCH_BYTES = 16 * 1024 * 1024
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_F63 = 2.0**63  # orjson turns integers beyond 64 bits into floats at least this large


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _I64_MAX else str(value)
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits nested inside: orjson cannot write it
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _needs_exact(obj: Mapping[str, Any]) -> bool:
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


class JsonlSource:
    """A JSON Lines file read in record batches (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        schema: TableSchema | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        encoding: str = "utf-8",
        compression: str = "auto",
    ) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self._max_line = max_line_bytes
        self._encoding = encoding
        self._bytes_read = 0
        self._compression = check_compression(compression)
        self._file: IO[bytes] | None = None
        self._start = 0
        self._open()
        self._bad_keys: dict[str, str] = {}  # key -> why it cannot be a column name
        self._columns = self._scan_keys()
        self.close()
        self._open()

    def _open(self) -> None:
        """(Re)open the file at its first record (a stream cannot seek back)."""
        f = open_lines(self.path, self._compression)
        # a UTF-8 byte order mark (Windows tools write one) is not part of the first record
        self._start = 3 if f.peek(3)[:3] == b"\xef\xbb\xbf" else 0
        f.read(self._start)
        self._file = f
        self._bytes_read = self._start

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[int, bytes | None, int]]:
        """(physical line number, line without its end or None when too long, bytes used)."""
        assert self._file is not None
        f = self._file
        lineno = 0
        while True:
            line = f.readline(self._max_line + 1)
            if not line:
                return
            lineno += 1
            size = len(line)
            if len(line) > self._max_line and not line.endswith(b"\n"):
                size += skip_rest(f)
                yield lineno, None, size
                continue
            yield lineno, line.rstrip(b"\r\n"), size

    def _scan_keys(self) -> list[str]:
        keys: dict[str, None] = {}
        folded: dict[str, str] = {}  # ASCII-lowercased name -> the first spelling seen
        bad = self._bad_keys
        for _, line, _size in self._lines():
            if not line or not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                for key in obj:
                    if key in keys or key in bad:
                        continue
                    problem = column_name_problem(key)
                    if problem is None:
                        first = folded.setdefault(_ascii_lower(key), key)
                        if first != key:
                            problem = f"differs only in letter case from the key {first!r}"
                    if problem is None:
                        keys[key] = None
                    else:
                        bad[key] = problem
        return list(keys)

    def __iter__(self) -> Iterator[RecordBatch]:
        assert self._file is not None
        readline = self._file.readline
        limit = self._max_line + 1
        columns = self._columns
        empty: tuple[None, ...] = (None,) * len(columns)
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        encoding = self._encoding
        bad = self._bad_keys
        rows: list[Any] = []
        numbers: list[int] = []
        lines: list[int] = []
        raws: list[str] = []
        verdicts: list[tuple[int, str, str]] = []
        pending_bytes = text_bytes = record = lineno = 0

        def flush() -> RecordBatch:
            nonlocal rows, numbers, lines, raws, verdicts, pending_bytes, text_bytes
            batch = build_batch(columns, rows, numbers, lines, raws, verdicts)
            self._bytes_read += pending_bytes
            rows, numbers, lines, raws, verdicts = [], [], [], [], []
            pending_bytes = text_bytes = 0
            return batch

        while True:
            line = readline(limit)
            if not line:
                break
            lineno += 1
            size = len(line)
            pending_bytes += size
            if size == limit and line[-1:] != b"\n":
                pending_bytes += skip_rest(self._file)
                record += 1
                numbers.append(record)
                lines.append(lineno)
                verdicts.append((len(rows), "line-length", f"line longer than {limit - 1} bytes"))
                rows.append(empty)
                raws.append("")
            else:
                if line.isspace():
                    continue  # a blank line is not a record
                record += 1
                numbers.append(record)
                lines.append(lineno)
                line = line.rstrip(b"\r\n")
                raws.append(line.decode(encoding, errors="replace"))
                text_bytes += size
                try:
                    obj = loads(line)
                except decode_error as exc:
                    verdicts.append((len(rows), "json", f"malformed JSON: {exc}"))
                    rows.append(empty)
                else:
                    if type(obj) is not dict:
                        kind = "null" if obj is None else type(obj).__name__
                        verdicts.append((len(rows), "json", f"not a JSON object (a JSON {kind})"))
                        rows.append(empty)
                    elif not obj:
                        verdicts.append((len(rows), "json", "an empty JSON object (no keys)"))
                        rows.append(empty)
                    elif bad and not bad.keys().isdisjoint(obj):
                        key = next(k for k in obj if k in bad)
                        verdicts.append((len(rows), "json",
                                         f"key {key[:80]!r} cannot be a column name: {bad[key]}"))
                        rows.append(empty)
                    else:
                        row = tuple(map(obj.get, columns))
                        for v in row:
                            t = type(v)
                            if t is str or v is None:
                                continue
                            if t is float:
                                if -_F63 < v < _F63:
                                    continue
                            elif (t is int and _I64_MIN <= v <= _I64_MAX) or t is bool:
                                continue
                            try:
                                row = _careful_row(obj, line, columns)
                            except RecursionError:  # Python's json nests less deep than orjson
                                verdicts.append((len(rows), "json",
                                                 "nested too deeply to load exactly"))
                                row = empty
                            break
                        rows.append(row)
            if len(rows) >= self.batch_rows or text_bytes >= _BATCH_BYTES:
                yield flush()
        if rows:
            yield flush()
        else:
            self._bytes_read += pending_bytes


def _ascii_lower(name: str) -> str:
    """SQLite compares identifiers ignoring ASCII case only."""
    return name.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _careful_row(obj: dict[str, Any], line: bytes, columns: list[str]) -> tuple[Any, ...]:
    """A row from an object that may hold nested values or integers beyond 64 bits."""
    if _needs_exact(obj):
        obj = json.loads(line)
    return tuple(_cell(obj.get(name)) for name in columns)


def _claims(path: str, options: Mapping[str, Any]) -> bool:
    fmt = options.get("format")
    if fmt:
        return str(fmt).lower() in ("jsonl", "ndjson")
    return strip_compression_suffix(path).lower().endswith(SUFFIXES)


@hookimpl
def tallyclerk_formats() -> dict[str, tuple[str, ...]]:
    """The formats this loader reads, with their suffixes."""
    return {"jsonl": SUFFIXES, "ndjson": SUFFIXES}


@hookimpl(trylast=True)
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> JsonlSource | None:
    """Open a JSON Lines file (by ``--format jsonl`` or its suffix)."""
    if not _claims(path, options):
        return None
    return JsonlSource(
        path,
        schema=options.get("schema"),
        batch_rows=int(options.get("batch_rows") or DEFAULT_BATCH_ROWS),
        max_line_bytes=int(options.get("max_field_bytes") or DEFAULT_MAX_LINE_BYTES),
        encoding=str(options.get("encoding") or "utf-8"),
        compression=str(options.get("compression") or "auto"),
    )
