"""``tallyclerk.load()``: the Python API, through its public interface, against real SQLite files.

The CLI runs in a subprocess (the real command) where a test compares the two.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import tallyclerk
from tallyclerk import ConfigError, LoadProgress, LoadReport, StopToken, StoreError
from tests.api.conftest import SCHEMA, Footprint, count_rows, write_csv
from tests.clirun import env_for, run_cli


def _db(work: Path, name: str = "t.db") -> str:
    return f"sqlite:///{work / name}"


def test_a_load_returns_a_typed_frozen_report(work: Path) -> None:
    report = tallyclerk.load([work / "a.csv", work / "b.csv"], table="orders",
                             into=_db(work), schema=work / "schema.json")
    assert isinstance(report, LoadReport)
    assert (report.status, report.table) == ("succeeded", "orders")
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (11, 9, 2)
    assert [(f.path, f.status, f.rows_read, f.rows_written, f.rows_rejected)
            for f in report.files] == [(str(work / "a.csv"), "loaded", 5, 5, 0),
                                       (str(work / "b.csv"), "loaded", 6, 4, 2)]
    assert report.exit_status == 0 and report.ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = "failed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.files[0].status = "failed"  # type: ignore[misc]
    assert count_rows(work / "t.db", "orders") == 9


def test_to_dict_is_the_cli_json_and_str_is_the_cli_table(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ["a.csv", "b.csv", "missing.csv"]
    env = env_for()
    cli = run_cli("load", *paths, "--table", "orders", "--into", "sqlite:///cli.db",
                  "--schema", "schema.json", "--json", cwd=work, env=env)
    cli_text = run_cli("load", *paths, "--table", "orders", "--into", "sqlite:///cli2.db",
                       "--schema", "schema.json", cwd=work, env=env)
    assert cli.code == cli_text.code == 1, cli.err
    monkeypatch.chdir(work)
    report = tallyclerk.load(paths, table="orders", into="sqlite:///api.db",
                             schema="schema.json")
    ours = report.to_dict()
    theirs = json.loads(cli.out)
    assert list(ours) == list(theirs)
    assert ours["batch_id"] != theirs["batch_id"]
    ours.pop("batch_id")
    theirs.pop("batch_id")
    assert ours == theirs
    assert report.exit_status == 1
    # the summary table: the same lines after the heading (which names batch and database)
    ours_lines = str(report).splitlines()
    theirs_lines = cli_text.out.splitlines()
    assert ours_lines[0].startswith(f"batch {report.batch_id}  partial  table 'orders'")
    assert "api.db" in ours_lines[0]
    assert ours_lines[1:] == theirs_lines[1:]


@pytest.mark.parametrize("form", ["path", "dict", "TableSchema"])
def test_schema_as_a_path_a_dict_or_a_table_schema(work: Path, form: str) -> None:
    schema: Any = {
        "path": str(work / "schema.json"),
        "dict": SCHEMA,
        "TableSchema": tallyclerk.TableSchema.from_json(json.dumps(SCHEMA)),
    }[form]
    report = tallyclerk.load(work / "b.csv", table="t", into=_db(work), schema=schema)
    assert (report.rows_written, report.rows_rejected) == (4, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": ""}, "table name"),
        ({"table": "sqlite_master"}, "reserved"),
        ({"on_error": "ignore"}, "--on-error"),
        ({"max_rejects": -1}, "--max-rejects"),
        ({"max_rejects": True}, "--max-rejects"),
        ({"workers": 0}, "--workers"),
        ({"workers": "2"}, "--workers"),  # a TypeError before
        ({"options": {"delimiter": ";;"}}, "--delimiter"),  # a batch recorded failed before
        ({"load_id": "no spaces"}, "--load-id"),
        ({"schema": 42}, "schema must be"),
        ({"schema": {"fields": "nope"}}, "invalid schema"),
        ({"schema": "does-not-exist.json"}, "cannot read schema"),
        ({"into": "mysql://u:pw@h/db"}, "mysql"),
        ({"settings": {"no_such_setting": 1}}, "no_such_setting"),
        ({"settings": {"batch_rows": -3}}, "batch_rows"),
        ({"settings": 5}, "settings must be"),
        ({"plugins": ["no.such.plugin.module"]}, "no.such.plugin.module"),
        ({"format": "xlsx"}, "xlsx"),
        ({"paths": []}, "no paths"),
        ({"paths": [1]}, "path must be"),
    ],
)
def test_bad_arguments_raise_config_error_before_anything_is_written(
    work: Path, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"paths": [work / "a.csv"], "table": "t", "into": _db(work)}
    args.update(kwargs)
    before = Footprint()
    with pytest.raises(ConfigError, match=message) as info:
        tallyclerk.load(**args)
    assert "pw" not in str(info.value)
    assert not (work / "t.db").exists()
    assert before.new_threads() == []


def test_a_failed_file_is_in_the_report_not_an_exception(work: Path) -> None:
    report = tallyclerk.load([work / "nope.csv", work / "a.csv"], table="t", into=_db(work),
                             on_error="continue")
    assert [f.status for f in report.files] == ["failed", "loaded"]
    assert report.files[0].error is not None and "no such file" in report.files[0].error
    assert report.status == "partial" and report.exit_status == 1


def test_max_rejects_and_on_error_reach_the_pipeline(work: Path) -> None:
    report = tallyclerk.load(work / "b.csv", table="t", into=_db(work), schema=SCHEMA,
                             max_rejects=1)
    assert report.files[0].status == "failed"
    assert "--max-rejects 1" in (report.files[0].error or "")
    again = tallyclerk.load(work / "b.csv", table="t", into=_db(work), schema=SCHEMA,
                            on_error="skip-file")
    assert again.files[0].status == "failed"


def test_a_store_failing_after_retries_raises_store_error(work: Path) -> None:
    url = "postgresql://user:s3cret-pw@127.0.0.1:1/nowhere"  # a closed port
    with pytest.raises(StoreError) as info:
        tallyclerk.load(work / "a.csv", table="t", into=_db(work), audit=url,
                        settings={"max_retries": 0, "connect_timeout_s": 1})
    assert "s3cret-pw" not in str(info.value)


def test_progress_gets_snapshots_up_to_the_last_file(work: Path) -> None:
    seen: list[LoadProgress] = []
    report = tallyclerk.load([work / "a.csv", work / "b.csv"], table="t", into=_db(work),
                             schema=SCHEMA, progress=seen.append)
    assert seen, "progress was never called"
    last = seen[-1]
    assert (last.files_done, last.files_total, last.rows_read) == (2, 2, 11)
    assert last.metrics is not None and last.metrics.batch_id == report.batch_id
    assert (last.metrics.files_loaded, last.metrics.rows_written) == (2, 9)
    assert [p.files_done for p in seen] == sorted(p.files_done for p in seen)


def test_a_stop_token_cancels_the_load(work: Path) -> None:
    stop = StopToken()
    stop.stop("asked to stop")
    report = tallyclerk.load([work / "a.csv", work / "b.csv"], table="t", into=_db(work),
                             stop=stop)
    assert report.status == "cancelled"
    assert all(f.status == "failed" for f in report.files)
    assert count_rows(work / "t.db", "t") == 0


def test_repeated_calls_after_a_failure_leave_no_thread_file_or_signal_handler(
    work: Path,
) -> None:
    before = Footprint()
    with pytest.raises(ConfigError):
        tallyclerk.load(work / "a.csv", table="t", into=_db(work), format="xlsx")
    with pytest.raises(StoreError):
        tallyclerk.load(work / "a.csv", table="t", into=_db(work),
                        audit="postgresql://u@127.0.0.1:1/x",
                        settings={"max_retries": 0, "connect_timeout_s": 1})
    first = tallyclerk.load(work / "a.csv", table="t", into=_db(work))
    second = tallyclerk.load(work / "a.csv", table="t", into=_db(work))
    forced = tallyclerk.load(work / "a.csv", table="t", into=_db(work), force=True)
    assert [first.files[0].status, second.files[0].status, forced.files[0].status] == [
        "loaded", "skipped", "loaded"]
    assert len({first.batch_id, second.batch_id, forced.batch_id}) == 3
    assert count_rows(work / "t.db", "t") == 5
    assert before.new_threads() == []
    assert before.new_fds(work) == []
    assert before.changed_handlers() == {}


def test_two_threads_load_at_once(work: Path) -> None:
    for n in range(4):
        write_csv(work / f"x{n}.csv", [(i, f"x{n}-{i}", i) for i in range(100)])
    before = Footprint()
    reports: dict[str, LoadReport] = {}
    errors: list[BaseException] = []

    def run(name: str, files: list[Path]) -> None:
        try:
            reports[name] = tallyclerk.load(files, table=name, into=_db(work), schema=SCHEMA)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("left", [work / "x0.csv", work / "x1.csv"])),
               threading.Thread(target=run, args=("right", [work / "x2.csv", work / "x3.csv"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert {k: (r.status, r.rows_written) for k, r in reports.items()} == {
        "left": ("succeeded", 200), "right": ("succeeded", 200)}
    assert count_rows(work / "t.db", "left") == count_rows(work / "t.db", "right") == 200
    assert before.new_threads() == []
    assert before.new_fds(work) == []
    assert before.changed_handlers() == {}


def test_workers_run_the_library_in_worker_processes(work: Path) -> None:
    for n in range(3):
        write_csv(work / f"w{n}.csv", [(i, f"w{n}-{i}", i) for i in range(50)])
    before = Footprint()
    report = tallyclerk.load([work / f"w{n}.csv" for n in range(3)], table="t", into=_db(work),
                             schema=work / "schema.json", workers=2, load_id="api-1")
    assert (report.batch_id, report.load_id, report.status) == ("api-1", "api-1", "succeeded")
    assert report.rows_written == 150 and report.batches
    assert set(report.to_dict()) >= {"load_id", "batches"}
    assert report.worker_exit_codes == (0, 0)
    assert count_rows(work / "t.db", "t") == 150
    assert before.new_threads() == []
    assert before.new_fds(work) == []
    assert before.changed_handlers() == {}


def test_plugin_objects_are_registered_for_one_load_only(work: Path) -> None:
    from tallyclerk import hookimpl

    seen: list[str] = []

    class Watcher:
        @hookimpl
        def tallyclerk_batch_start(self, batch_id: str, table: str, paths: Any) -> None:
            seen.append(table)

    tallyclerk.load(work / "a.csv", table="one", into=_db(work), plugins=[Watcher()])
    tallyclerk.load(work / "a.csv", table="two", into=_db(work))
    assert seen == ["one"]
    with pytest.raises(ConfigError, match="module names"):
        tallyclerk.load(work / "a.csv", table="t", into=_db(work), plugins=[Watcher()],
                        workers=2)
