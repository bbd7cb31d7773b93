"""SqliteWriter against real SQLite files: one SQLite library per process (the extension links
the system libsqlite3 that Python's sqlite3 loads), WAL, BEGIN IMMEDIATE, typed inserts,
quoted or refused identifiers, and error classification."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tallyclerk._core as core
from tallyclerk._core import CsvReader, RecordBatch, SqliteWriter, TableSchema
from tallyclerk.errors import ConfigError, SinkError

Write = Callable[..., str]

SCHEMA = TableSchema.from_json(json.dumps({"fields": [
    {"name": "id", "type": "integer"}, {"name": "price", "type": "number"},
    {"name": "ok", "type": "boolean"}, {"name": "day", "type": "date"},
    {"name": "note"},
]}))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "t.db")


@pytest.fixture
def writer(db: str) -> Iterator[SqliteWriter]:
    w = SqliteWriter(db, busy_timeout_ms=200)
    yield w
    w.close()


# --- one SQLite library per process -------------------------------------------------------


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_extension_links_the_system_libsqlite3_dynamically() -> None:
    so = Path(core.__file__)
    out = subprocess.run(["ldd", str(so)], capture_output=True, text=True, check=True).stdout
    ours = [line.split("=>")[1].split("(")[0].strip() for line in out.splitlines()
            if "libsqlite3" in line]
    assert ours, f"{so.name} does not link libsqlite3 dynamically:\n{out}"
    import _sqlite3

    theirs = subprocess.run(["ldd", _sqlite3.__file__], capture_output=True, text=True,
                            check=True).stdout
    assert any(ours[0] in line for line in theirs.splitlines() if "libsqlite3" in line), (
        "Python's _sqlite3 and tallyclerk._core must load the same libsqlite3"
    )


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
def test_extension_carries_no_sqlite_of_its_own() -> None:
    so = str(Path(core.__file__))
    defined = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                             text=True, check=True).stdout
    undefined = subprocess.run(["nm", "-D", "--undefined-only", so], capture_output=True,
                               text=True, check=True).stdout
    assert " sqlite3_open_v2" not in defined
    assert "sqlite3_open_v2" in undefined


def test_one_library_in_the_process_map() -> None:
    """After using both, the process maps exactly one libsqlite3 file."""
    w = SqliteWriter(":memory:")
    sqlite3.connect(":memory:").close()
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc")
    libs = {line.split()[-1] for line in maps.read_text().splitlines() if "libsqlite3" in line}
    w.close()
    assert len({Path(p).resolve() for p in libs}) == 1, libs


# --- writing ---------------------------------------------------------------------------


def test_csv_to_table_round_trip(write: Write, writer: SqliteWriter, db: str) -> None:
    path = write("id,price,ok,day,note,extra\n1,2.5,true,2024-01-01,hi,x\n2,oops,0,,,y\n"
                 "3,,FALSE,2024-02-29,\"a \"\"q\"\"\",z\n")
    writer.create_table("orders", SCHEMA, [("_tc_file_id", "INTEGER")])
    writer.begin()
    assert writer.in_transaction
    written = 0
    for batch in CsvReader(path, batch_rows=2):
        batch.validate(SCHEMA)
        written += writer.insert_batch("orders", batch, [7])
    writer.commit()
    assert written == 2 and not writer.in_transaction
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT id, price, ok, day, note, _tc_file_id, typeof(price) "
                           "FROM orders ORDER BY id").fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert got == [(1, 2.5, 1, "2024-01-01", "hi", 7, "real"),
                   (3, None, 0, "2024-02-29", 'a "q"', 7, "null")]


def test_extra_values_as_a_mapping_and_counts(writer: SqliteWriter) -> None:
    writer.create_table("t", SCHEMA, [("_tc_file_id", "INTEGER"), ("src", "TEXT")])
    b = RecordBatch.from_rows(["id", "note"], [[1, "a"], [2, "b"]], [1, 2], [2, 3])
    b.validate(SCHEMA)
    b.reject(0, None, "custom", "no")
    writer.begin()
    assert writer.insert_batch("t", b, {"_tc_file_id": 3, "src": "f.csv"}) == 1
    with pytest.raises(ValueError, match="extra values"):
        writer.insert_batch("t", b, [1])
    writer.commit()
    assert writer.query("SELECT id, note, _tc_file_id, src FROM t") == [(2, "b", 3, "f.csv")]


def test_insert_outside_a_transaction_is_refused(writer: SqliteWriter) -> None:
    writer.create_table("t", SCHEMA)
    b = RecordBatch.from_rows(["id"], [[1]], [1], [1])
    with pytest.raises(SinkError, match="call begin"):
        writer.insert_batch("t", b)


def test_rollback_discards_the_file(writer: SqliteWriter) -> None:
    writer.create_table("t", SCHEMA)
    writer.begin()
    writer.insert_batch("t", RecordBatch.from_rows(["id"], [[1]], [1], [1]))
    writer.rollback()
    writer.rollback()  # no transaction: no-op
    assert writer.query("SELECT count(*) FROM t") == [(0,)]


def test_hostile_identifiers_are_quoted(writer: SqliteWriter) -> None:
    names = ['a"; DROP TABLE x; --', "select", "with space", "ünï", "[b]", "`c`"]
    s = TableSchema.text_columns(names)
    table = 'evil"table'
    writer.create_table(table, s)
    writer.begin()
    writer.insert_batch(table, RecordBatch.from_rows(names, [list("123456")], [1], [1]))
    writer.commit()
    cols = [r[0] for r in writer.query("SELECT name FROM pragma_table_info(?)", [table])]
    assert cols == names
    assert writer.query('SELECT * FROM "evil""table"') == [tuple("123456")]


@pytest.mark.parametrize("bad", ["", "a\x00b", "x" * 256, "sqlite_master", "SQLITE_x"])
def test_bad_table_names_are_refused(writer: SqliteWriter, bad: str) -> None:
    with pytest.raises(ConfigError):
        writer.create_table(bad, SCHEMA)


@pytest.mark.parametrize("bad", ["a\x00b", "x" * 256])
def test_bad_column_names_are_refused(writer: SqliteWriter, bad: str) -> None:
    with pytest.raises(ConfigError):
        writer.create_table("t", TableSchema.text_columns(["ok", bad]))
    with pytest.raises(ConfigError):
        writer.create_table("t", SCHEMA, [(bad, "TEXT")])
    with pytest.raises(ConfigError):
        writer.create_table("t", SCHEMA, [("", "TEXT")])


def test_refused_schemas_and_column_types(writer: SqliteWriter) -> None:
    with pytest.raises(ConfigError, match="at most 2000"):
        writer.create_table("wide", TableSchema.text_columns([f"c{i}" for i in range(2001)]))
    with pytest.raises(ConfigError, match="appears twice"):
        writer.create_table("t", TableSchema.text_columns(["Name", "name"]))
    with pytest.raises(ConfigError, match="not allowed"):
        writer.create_table("t", SCHEMA, [("x", "TEXT); DROP TABLE t; --")])
    writer.create_table("t2", TableSchema.text_columns(["a"]))
    with pytest.raises(SinkError, match="already exists without the columns"):
        writer.create_table("t2", TableSchema.text_columns(["a", "b"]))


def test_busy_database_is_transient(db: str) -> None:
    a = SqliteWriter(db)
    b = SqliteWriter(db, busy_timeout_ms=50)
    try:
        a.begin()
        with pytest.raises(SinkError) as e:
            b.begin()
        assert e.value.transient is True
        assert "locked" in str(e.value)
        a.commit()
        b.begin()
        b.rollback()
    finally:
        a.close()
        b.close()


def test_python_sqlite3_holding_the_lock_is_busy_for_us(db: str) -> None:
    w = SqliteWriter(db, busy_timeout_ms=50)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(SinkError) as e:
            w.begin()
        assert e.value.transient
        conn.execute("ROLLBACK")
        w.begin()
        w.commit()
    finally:
        conn.close()
        w.close()


def test_permanent_errors_are_not_transient(writer: SqliteWriter, tmp_path: Path) -> None:
    with pytest.raises(SinkError) as e:
        writer.execute("INSERT INTO missing VALUES (1)")
    assert e.value.transient is False and "no such table: missing" in str(e.value)
    writer.execute("CREATE TABLE u (a INTEGER UNIQUE)")
    writer.execute("INSERT INTO u VALUES (?)", [1])
    with pytest.raises(SinkError) as e:
        writer.execute("INSERT INTO u VALUES (?)", [1])
    assert not e.value.transient and "UNIQUE" in str(e.value)
    with pytest.raises(SinkError, match="takes 1 parameters, 0 given"):
        writer.execute("SELECT ?")
    with pytest.raises(SinkError, match="cannot open"):
        SqliteWriter(str(tmp_path / "no" / "such" / "dir.db"))
    with pytest.raises(ConfigError, match="busy_timeout_ms"):
        SqliteWriter(str(tmp_path / "x.db"), busy_timeout_ms=-1)
    with pytest.raises(ConfigError, match="synchronous"):
        SqliteWriter(str(tmp_path / "x.db"), synchronous="SOMETIMES")  # type: ignore[arg-type]


def test_sql_executor_protocol(writer: SqliteWriter) -> None:
    import datetime as dt

    assert writer.dialect_name == "sqlite" and SqliteWriter.dialect_name == "sqlite"
    writer.execute("CREATE TABLE a (n, f, s, b, t, d)")
    assert writer.execute("INSERT INTO a VALUES (?, ?, ?, ?, ?, ?)",
                          (None, 1.5, "x", b"\x00\x01", True, dt.date(2024, 1, 2))) == 1
    assert writer.executemany("INSERT INTO a (n) VALUES (?)", [[1], [2], [3]]) == 3
    assert writer.execute("UPDATE a SET s = 'y' WHERE n >= ?", [2]) == 2
    assert writer.execute("UPDATE a SET s = 'z' WHERE n = 99") == 0
    assert writer.query("SELECT n, f, s, b, t, d FROM a WHERE f IS NOT NULL") == [
        (None, 1.5, "x", b"\x00\x01", 1, "2024-01-02")]
    with pytest.raises(TypeError):
        writer.execute("SELECT ?", [object()])
    with pytest.raises(ValueError, match="64-bit"):
        writer.execute("SELECT ?", [2**64])


def test_close_is_idempotent_and_final(db: str) -> None:
    with SqliteWriter(db) as w:
        w.begin()
    w.close()
    with pytest.raises(SinkError, match="closed"):
        w.begin()


def test_insert_runs_detached_so_python_threads_progress(write: Write, writer: SqliteWriter
                                                         ) -> None:
    path = write("id,note\n" + "".join(f"{i},n{i}\n" for i in range(200_000)))
    s = TableSchema.from_json('{"fields": [{"name": "id", "type": "integer"}, {"name": "note"}]}')
    writer.create_table("t", s)
    (batch,) = list(CsvReader(path, batch_rows=200_000))
    batch.validate(s)
    ticks = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    writer.begin()
    t.start()
    try:
        assert writer.insert_batch("t", batch) == 200_000
    finally:
        done.set()
        t.join()
    writer.commit()
    assert ticks > 0


def test_hostile_headers_from_a_csv_are_refused_by_the_writer(write: Write,
                                                              writer: SqliteWriter) -> None:
    """The reader takes any distinct non-empty names; the writer refuses what SQLite cannot
    hold (ConfigError), and quotes the rest."""
    wide = write(",".join(f"c{i}" for i in range(2001)) + "\n" + ",".join("1" * 2001) + "\n")
    r = CsvReader(wide)
    assert len(r.header) == 2001
    with pytest.raises(ConfigError, match="at most 2000"):
        writer.create_table("wide", TableSchema.text_columns(r.header))
    long = write("id," + "n" * 300 + "\n1,2\n")
    with pytest.raises(ConfigError, match="300 characters"):
        writer.create_table("long", TableSchema.text_columns(CsvReader(long).header))
    with pytest.raises(ConfigError, match="NUL"):
        writer.create_table("nul", TableSchema.text_columns(["id", "a\x00b"]))
    formula = write('id,"=cmd|\' /C calc\'!A0"\n1,=HYPERLINK("x")\n')
    r = CsvReader(formula)
    s = TableSchema.text_columns(r.header)
    writer.create_table("formula", s)
    writer.begin()
    for b in r:
        b.validate(s)
        writer.insert_batch("formula", b)
    writer.commit()
    assert writer.query('SELECT * FROM "formula"') == [("1", '=HYPERLINK("x")')]


def test_reader_thread_and_writer_thread_overlap(write: Write, writer: SqliteWriter) -> None:
    """The loader's shape: one thread reads and validates, another inserts (both detach)."""
    import queue

    n = 30_000
    path = write("id,note\n" + "".join(f"{i},{'x' if i % 1000 else 'bad'}\n" for i in range(n)))
    s = TableSchema.from_json('{"fields": [{"name": "id", "type": "integer"}, '
                              '{"name": "note", "constraints": {"enum": ["x"]}}]}')
    writer.create_table("t", s)
    handoff: queue.Queue[RecordBatch | None] = queue.Queue(maxsize=2)
    rejected = 0

    def produce() -> None:
        nonlocal rejected
        try:
            for b in CsvReader(path, batch_rows=1_000):
                rejected += b.validate(s)
                handoff.put(b)
        finally:
            handoff.put(None)

    t = threading.Thread(target=produce)
    writer.begin()
    t.start()
    written = 0
    while (b := handoff.get(timeout=60)) is not None:
        written += writer.insert_batch("t", b)
    t.join()
    writer.commit()
    assert rejected == n // 1000 and written == n - rejected
    assert writer.query("SELECT count(*), sum(id) FROM t") == [
        (written, sum(i for i in range(n) if i % 1000))]
