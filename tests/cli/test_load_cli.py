"""``tallyclerk load`` end to end: the JSON contract, exit codes, row accounting."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import assert_one_line_error, count_rows, query, tallyclerk, write_csv

FILE_KEYS = {"path", "status", "rows_read", "rows_written", "rows_rejected", "rows_rolled_back",
             "rows_inserted", "rows_updated", "error", "schema_version", "columns_added",
             "columns_dropped", "columns_missing"}
REPORT_KEYS = {"batch_id", "status", "table", "rows_read", "rows_written", "rows_rejected",
               "rows_rolled_back", "files"}


def load(work: Path, *args: str) -> tuple[int, dict]:
    r = tallyclerk("load", *args, "--json", cwd=work)
    assert r.out.count("\n") == 1, r.out  # exactly one JSON object
    assert "Traceback" not in r.err
    return r.code, r.json()


def accounting_holds(report: dict) -> None:
    for f in report["files"]:
        assert set(f) == FILE_KEYS
        if f["status"] in ("loaded", "failed"):
            assert f["rows_read"] == (
                f["rows_written"] + f["rows_rejected"] + f["rows_rolled_back"]
            ), f
        if f["status"] == "loaded":
            assert f["rows_rolled_back"] == 0, f
    assert report["rows_read"] == sum(f["rows_read"] for f in report["files"])
    assert report["rows_written"] == sum(f["rows_written"] for f in report["files"])


def test_json_shape_rejects_do_not_fail_and_accounting(work: Path) -> None:
    code, rep = load(work, "a.csv", "b.csv", "--table", "orders", "--schema", "schema.json")
    assert code == 0
    assert set(rep) >= REPORT_KEYS
    assert rep["status"] == "succeeded" and rep["table"] == "orders"
    assert [f["path"] for f in rep["files"]] == ["a.csv", "b.csv"]  # paths as given
    assert [f["status"] for f in rep["files"]] == ["loaded", "loaded"]
    a, b = rep["files"]
    assert (a["rows_read"], a["rows_written"], a["rows_rejected"], a["error"]) == (5, 5, 0, None)
    assert (b["rows_read"], b["rows_written"], b["rows_rejected"]) == (6, 4, 2)
    assert (rep["rows_read"], rep["rows_written"], rep["rows_rejected"]) == (11, 9, 2)
    accounting_holds(rep)
    db = work / "tallyclerk.db"  # the default --into
    assert query(db, 'SELECT count(*) FROM "orders"') == [(9,)]
    assert query(db, 'SELECT count(DISTINCT _tc_file_id) FROM "orders"') == [(2,)]
    assert query(db, "SELECT count(*) FROM tallyclerk_rejects") == [(2,)]


def test_missing_path_fails_that_file_only(work: Path) -> None:
    code, rep = load(work, "a.csv", "nope.csv", "b.csv", "--table", "t")
    assert code == 1
    assert [f["status"] for f in rep["files"]] == ["loaded", "failed", "loaded"]
    missing = rep["files"][1]
    assert missing["path"] == "nope.csv" and "no such file" in missing["error"]
    assert missing["rows_read"] == 0
    accounting_holds(rep)


def test_directory_and_unparseable_file_fail(work: Path) -> None:
    (work / "dir.csv").mkdir()
    (work / "broken.csv").write_text('id,name\n1,"unterminated\n', encoding="utf-8")
    code, rep = load(work, "dir.csv", "broken.csv", "a.csv", "--table", "t")
    assert code == 1
    assert [f["status"] for f in rep["files"]] == ["failed", "failed", "loaded"]
    assert "directory" in rep["files"][0]["error"]
    accounting_holds(rep)
    assert query(work / "tallyclerk.db", 'SELECT count(*) FROM "t"') == [(5,)]


def test_a_quoted_glob_loads_the_files_it_matches(work: Path) -> None:
    # no shell expands 'in/*.csv' (quoted, or given to tallyclerk.load): tallyclerk does
    (work / "in").mkdir()
    for name, row in (("x.csv", (1, "a", 1)), ("y.csv", (2, "b", 2))):
        write_csv(work / "in" / name, [row])
    (work / "in" / ".hidden.csv").write_text("id,name,amount\n9,h,9\n", encoding="utf-8")
    code, rep = load(work, "in/*.csv", "in/*.nomatch", "--table", "g")
    accounting_holds(rep)
    assert code == 1  # the pattern that matches nothing is a missing path: that file fails
    assert [(f["path"], f["status"]) for f in rep["files"]] == [
        ("in/x.csv", "loaded"), ("in/y.csv", "loaded"), ("in/*.nomatch", "failed")]
    assert "no such file" in rep["files"][2]["error"]
    assert count_rows(work / "tallyclerk.db", "g") == 2
    import tallyclerk as api

    into = f"sqlite:///{work / 'tallyclerk.db'}"
    again = api.load(str(work / "in" / "*.csv"), table="g", into=into)
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    checked = api.validate(str(work / "in" / "*.csv"))
    assert checked.rows_read == 2


def test_a_fifo_fails_at_once_and_the_other_files_load(work: Path) -> None:
    # opening a FIFO without a writer never returned (the fingerprint's look-ahead hung the
    # load); a pipe (`<(zcat ...)`) read twice loaded as "empty file"
    import os

    os.mkfifo(work / "pipe.csv")
    for args in (["pipe.csv", "a.csv"], ["a.csv", "b.csv", "pipe.csv"]):
        r = tallyclerk("load", *args, "--table", "f", "--json", cwd=work, timeout=60)
        assert r.code == 1, r.err
        rep = r.json()
        accounting_holds(rep)
        failed = [f for f in rep["files"] if f["path"] == "pipe.csv"]
        assert failed[0]["status"] == "failed"
        assert "not a regular file" in failed[0]["error"]
        assert {f["status"] for f in rep["files"] if f["path"] != "pipe.csv"} <= {
            "loaded", "skipped"}
    r = tallyclerk("validate", "pipe.csv", "a.csv", cwd=work, timeout=60)
    assert r.code == 1 and "not a regular file" in r.out


def test_rerun_skips_and_force_reloads_without_duplicates(work: Path) -> None:
    code, first = load(work, "a.csv", "--table", "t")
    assert code == 0
    code, second = load(work, "a.csv", "--table", "t")
    assert code == 0
    assert second["files"][0]["status"] == "skipped"
    assert second["rows_written"] == 0
    code, forced = load(work, "a.csv", "--table", "t", "--force")
    assert code == 0 and forced["files"][0]["status"] == "loaded"
    db = work / "tallyclerk.db"
    assert query(db, 'SELECT count(*), count(DISTINCT id) FROM "t"') == [(5, 5)]


def test_same_content_under_another_name_is_skipped(work: Path) -> None:
    (work / "copy.csv").write_bytes((work / "a.csv").read_bytes())
    load(work, "a.csv", "--table", "t")
    code, rep = load(work, "copy.csv", "--table", "t")
    assert code == 0 and rep["files"][0]["status"] == "skipped"


def test_on_error_skip_file(work: Path) -> None:
    code, rep = load(work, "b.csv", "a.csv", "--table", "t", "--schema", "schema.json",
                     "--on-error", "skip-file")
    assert code == 1
    b, a = rep["files"]
    assert b["status"] == "failed" and "skip-file" in b["error"]
    assert b["rows_written"] == 0
    assert a["status"] == "loaded"
    accounting_holds(rep)
    assert query(work / "tallyclerk.db", 'SELECT min(id), max(id) FROM "t"') == [(1, 5)]


def test_on_error_abort_stops_the_batch(work: Path) -> None:
    code, rep = load(work, "b.csv", "a.csv", "--table", "t", "--schema", "schema.json",
                     "--on-error", "abort")
    assert code == 1
    assert rep["files"][0]["status"] == "failed" and "abort" in rep["files"][0]["error"]
    assert rep["files"][1]["path"] == "a.csv" and rep["files"][1]["status"] == "failed"
    assert "not attempted" in rep["files"][1]["error"]
    accounting_holds(rep)
    assert rep["status"] in ("failed", "partial")
    assert count_rows(work / "tallyclerk.db", "t") == 0


def test_max_rejects(work: Path) -> None:
    code, rep = load(work, "b.csv", "--table", "t", "--schema", "schema.json",
                     "--max-rejects", "1")
    assert code == 1
    f = rep["files"][0]
    assert f["status"] == "failed" and "--max-rejects 1" in f["error"]
    # the two bad rows were judged (rejected, in the rejects table); the four good ones were
    # rolled back with the file, never judged bad
    assert (f["rows_read"], f["rows_written"], f["rows_rejected"], f["rows_rolled_back"]) == (
        6, 0, 2, 4)
    db = work / "tallyclerk.db"
    assert query(db, "SELECT count(*) FROM tallyclerk_rejects") == [(2,)]
    assert query(db, "SELECT rows_rejected, rows_rolled_back FROM tallyclerk_files") == [(2, 4)]
    assert query(db, "SELECT rows_rejected, rows_rolled_back FROM tallyclerk_batches") == [(2, 4)]
    accounting_holds(rep)
    code, rep = load(work, "b.csv", "--table", "t2", "--schema", "schema.json",
                     "--max-rejects", "2")
    assert code == 0 and rep["files"][0]["rows_rejected"] == 2


def test_jsonl_load(work: Path) -> None:
    (work / "e.jsonl").write_text(
        '{"id": 1, "name": "x", "amount": 2.5}\n'
        "not json\n"
        "\n"
        '[1, 2]\n'
        '{"id": 4, "name": "y", "amount": -1}\n'
        '{"id": 5, "extra": true}\n',
        encoding="utf-8",
    )
    code, rep = load(work, "e.jsonl", "--table", "j", "--schema", "schema.json")
    assert code == 0
    f = rep["files"][0]
    assert (f["rows_read"], f["rows_written"], f["rows_rejected"]) == (5, 2, 3)
    db = work / "tallyclerk.db"
    lines = query(db, "SELECT line FROM tallyclerk_rejects ORDER BY line")
    assert [x[0] for x in lines] == [2, 4, 5]


def test_no_schema_loads_text_columns_with_quoted_hostile_headers(work: Path) -> None:
    write_csv(work / "h.csv", [(1, 2, 3)], header='"x""; DROP TABLE t; --",select,"a b"')
    code, rep = load(work, "h.csv", "--table", 'we"ird; table', "--infer", "none")
    assert code == 0, rep
    db = work / "tallyclerk.db"
    assert query(db, 'SELECT "x""; DROP TABLE t; --", "select", "a b" FROM "we""ird; table"') == [
        ("1", "2", "3")
    ]


# -- usage and configuration errors: exit 2, one line -----------------------------------------


def test_bad_table_name(work: Path) -> None:
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "", cwd=work))
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "x" * 300, cwd=work))
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "tallyclerk_files", cwd=work))


def test_bad_schema(work: Path) -> None:
    (work / "bad.json").write_text("{not json", encoding="utf-8")
    (work / "wrong.json").write_text('{"fields": [{"name": "x", "type": "bogus"}]}', "utf-8")
    for schema in ("bad.json", "wrong.json", "missing.json"):
        r = tallyclerk("load", "a.csv", "--table", "t", "--schema", schema, cwd=work)
        assert_one_line_error(r)
        assert schema in r.err
    assert not (work / "tallyclerk.db").exists()  # nothing was started


def test_unknown_url_scheme(work: Path) -> None:
    r = tallyclerk("load", "a.csv", "--table", "t", "--into", "foo://u:secret@h/db", cwd=work)
    assert_one_line_error(r)
    assert "secret" not in r.err
    r = tallyclerk("load", "a.csv", "--table", "t", "--audit", "mysql://u:pw@h/db", cwd=work)
    assert_one_line_error(r)


def test_bad_options(work: Path) -> None:
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "t", "--on-error", "x", cwd=work))
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "t", "--max-rejects", "-1",
                                     cwd=work))
    assert_one_line_error(tallyclerk("load", "a.csv", cwd=work))  # --table missing
    assert_one_line_error(tallyclerk("load", "a.csv", "--table", "t", "--bogus", cwd=work))
    assert_one_line_error(tallyclerk("frobnicate", cwd=work))
    r = tallyclerk("load", "a.csv", "--table", "t", "--format", "xml", cwd=work)
    assert_one_line_error(r)


def test_bad_delimiter_is_refused_before_anything_is_recorded(work: Path) -> None:
    for delimiter in (",,", "\u00a7"):  # two characters; one that is not ASCII
        r = tallyclerk("load", "a.csv", "--table", "t", "--delimiter", delimiter, cwd=work)
        assert_one_line_error(r)
        assert "--delimiter must be one ASCII character" in r.err
    r = tallyclerk("validate", "a.csv", "--delimiter", ",,", cwd=work)
    assert_one_line_error(r)
    assert not (work / "tallyclerk.db").exists()  # no batch was started (nor recorded failed)
    code, rep = load(work, "a.csv", "--table", "t", "--delimiter", "tab", "--infer", "none")
    assert code == 0 and rep["files"][0]["status"] == "loaded"


def test_unknown_encoding_is_refused_before_anything_is_recorded(work: Path) -> None:
    # it failed every file (exit 1) and left a failed batch in the audit store
    for command in (["load", "a.csv", "--table", "t"], ["validate", "a.csv"]):
        r = tallyclerk(*command, "--encoding", "no-such-encoding", cwd=work)
        assert_one_line_error(r)
        assert "unknown encoding 'no-such-encoding'" in r.err
    assert not (work / "tallyclerk.db").exists()
    code, rep = load(work, "a.csv", "--table", "t", "--encoding", "Windows_1252")
    assert code == 0 and rep["files"][0]["status"] == "loaded"


def test_summary_table_without_json(work: Path) -> None:
    r = tallyclerk("load", "a.csv", "b.csv", "--table", "t", "--schema", "schema.json", cwd=work)
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].startswith("batch ") and "succeeded" in lines[0]
    assert lines[1].split()[:5] == ["FILE", "STATUS", "READ", "WRITTEN", "REJECTED"]
    assert lines[-1].split() == ["TOTAL", "11", "9", "2", "0"]
    assert "\r" not in r.err  # not a terminal: no progress bar


def test_unreachable_audit_store_exits_3(work: Path) -> None:
    r = tallyclerk("load", "a.csv", "--table", "t", "--audit",
                   "sqlite:////nonexistent-dir/sub/audit.db", cwd=work)
    assert r.code == 3, r.err
    assert r.err.strip().splitlines()[-1].startswith("tallyclerk: error: ")
    assert "Traceback" not in r.err
