"""Prometheus metrics: the built-in metrics plugin, in-process and through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tallyclerk._core import BatchAccumulator
from tallyclerk.audit import RejectRow
from tallyclerk.metrics import LoadMetrics, load_metrics
from tallyclerk.testing import Runner
from tests.cli.conftest import env_for, tallyclerk, write_csv

SCHEMA = {"fields": [
    {"name": "id", "type": "integer"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": "number", "constraints": {"minimum": 0}},
]}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def data(tmp_path: Path) -> list[Path]:
    a = write_csv(tmp_path / "a.csv", [(i, f"a{i}", i) for i in range(1, 6)])
    b = write_csv(tmp_path / "b.csv", [(1, "b1", -1), (2, "b2", "x"), (3, "b3", 3)])
    return [a, b]


def test_load_metrics_counts_a_real_load(tallyclerk_runner: Runner, tmp_path: Path) -> None:
    metrics = load_metrics()
    assert metrics is not None
    reg = metrics.registry

    def get(name: str, **labels: str) -> float:
        return reg.get_sample_value(name, labels) or 0.0

    before = {n: get(n) for n in ("tallyclerk_rows_read_total", "tallyclerk_rows_written_total",
                                  "tallyclerk_rows_rejected_total", "tallyclerk_rows_sent_total",
                                  "tallyclerk_write_latency_seconds_count")}
    loaded = get("tallyclerk_files_total", status="loaded")
    minimum = get("tallyclerk_rejects_total", rule="minimum")
    result = tallyclerk_runner.load(data(tmp_path), schema=SCHEMA, settings={"batch_rows": 2})
    result.check_accounting()
    r = result.report

    def delta(name: str) -> float:
        return get(name) - before[name]

    assert delta("tallyclerk_rows_read_total") == r["rows_read"] == 8
    assert delta("tallyclerk_rows_written_total") == r["rows_written"] == 6
    assert delta("tallyclerk_rows_rejected_total") == r["rows_rejected"] == 2
    assert delta("tallyclerk_rows_sent_total") == 6
    assert delta("tallyclerk_write_latency_seconds_count") == 3 + 2  # batches of 2 rows
    assert get("tallyclerk_files_total", status="loaded") - loaded == 2
    assert get("tallyclerk_rejects_total", rule="minimum") - minimum == 1
    assert get("tallyclerk_circuit_breaker_state", tallyclerk_circuit_breaker_state="closed") == 1
    assert get("tallyclerk_queue_high_water", queue="sink") >= 1


def test_stats_samples_become_counters_and_gauges() -> None:
    m = LoadMetrics()
    reg = m.registry
    m.on_batch_start()
    m.on_stats("b1", {"sink_queue_depth": 3, "sink_queue_high_water": 4, "file_retries": 1,
                      "sink_dead_letters": 0, "audit_dead_letters": 2, "breaker_state": "open",
                      "breaker_opened": 1})
    m.on_stats("b1", {"sink_queue_depth": 0, "sink_queue_high_water": 2, "file_retries": 3,
                      "audit_dead_letters": 2, "breaker_state": "half_open", "breaker_opened": 1})
    m.on_stats("b2", {"file_retries": 1})  # a new batch counts from 0 again
    m.on_timeout("idle")
    m.on_rejects([RejectRow(1, 2, "a", "type", "bad", "raw"),
                  RejectRow(2, 3, None, "json", "bad", "raw"),
                  RejectRow(3, 4, "a", "type", "bad", "raw")])
    acc = BatchAccumulator("b1")
    retried = acc.begin_file()
    retried.add(rows_read=5, rows_written=5)
    m.on_stats("b1", {"metrics": acc.snapshot()})  # live rows are not counted yet
    retried.settle("retried")
    failed = acc.begin_file()
    failed.add(rows_read=7, rows_rejected=4, bytes_read=10)
    failed.settle("failed")
    m.on_stats("b1", {"metrics": acc.snapshot()})
    m.on_stats("b1", {"metrics": acc.snapshot()})  # the same snapshot again adds nothing
    m.on_batch_finish("b1", "partial")

    def get(name: str, **labels: str) -> float | None:
        return reg.get_sample_value(name, labels)

    assert get("tallyclerk_queue_depth", queue="sink") == 0
    assert get("tallyclerk_queue_high_water", queue="sink") == 4  # a high-water mark never drops
    assert get("tallyclerk_retries_total", what="file") == 3 + 1
    assert get("tallyclerk_dead_letters_total", queue="audit") == 2
    assert get("tallyclerk_circuit_breaker_state",
               tallyclerk_circuit_breaker_state="half_open") == 1
    assert get("tallyclerk_circuit_breaker_opened_total") == 1
    assert get("tallyclerk_watchdog_firings_total", kind="idle") == 1
    assert get("tallyclerk_watchdog_firings_total", kind="operation") == 0
    assert get("tallyclerk_rejects_total", rule="type") == 2
    assert get("tallyclerk_rows_read_total") == 7  # the retried attempt's rows left
    assert get("tallyclerk_rows_rejected_total") == 4
    assert get("tallyclerk_rows_rolled_back_total") == 3
    assert get("tallyclerk_rows_written_total") == 0
    assert get("tallyclerk_rows_sent_total") == 5  # handed to the sink, then rolled back
    assert get("tallyclerk_file_attempts_total") == 2
    assert get("tallyclerk_files_total", status="failed") == 1
    assert get("tallyclerk_batches_total", status="partial") == 1
    assert get("tallyclerk_batches_running") == 0
    assert b"tallyclerk_write_latency_seconds_bucket" in m.exposition()


def test_textfile_after_a_cli_load(tmp_path: Path) -> None:
    data(tmp_path)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    r = tallyclerk("load", "a.csv", "b.csv", "missing.csv", "--table", "t", "--schema",
                   "schema.json", "--into", "sqlite:///t.db", "--json", "--metrics-textfile",
                   "metrics.prom", cwd=tmp_path)
    assert r.code == 1, r.err  # missing.csv failed
    report = r.json()
    found = samples((tmp_path / "metrics.prom").read_text(encoding="utf-8"))
    assert value(found, "tallyclerk_rows_read_total") == report["rows_read"]
    assert value(found, "tallyclerk_rows_written_total") == report["rows_written"]
    assert value(found, "tallyclerk_files_total", status="loaded") == 2
    assert value(found, "tallyclerk_batches_total", status="partial") == 1
    assert value(found, "tallyclerk_rejects_total", rule="type") == 1
    assert value(found, "tallyclerk_write_latency_seconds_count") == 2


def test_bad_metrics_options_are_usage_errors(tmp_path: Path) -> None:
    data(tmp_path)
    r = tallyclerk("load", "a.csv", "--table", "t", "--metrics-port", "70000", cwd=tmp_path)
    assert r.code == 2 and "--metrics-port" in r.err
    r = tallyclerk("load", "a.csv", "--table", "t", "--metrics-textfile",
                   str(tmp_path / "no" / "such" / "dir" / "m.prom"), cwd=tmp_path)
    assert r.code == 2 and "--metrics-textfile" in r.err and "Traceback" not in r.err


HOLD_PLUGIN = '''
import pathlib, time, logging
from tallyclerk.hookspecs import hookimpl

log = logging.getLogger("tallyclerk.test.hold")

@hookimpl(trylast=True)  # after the metrics plugin counted the attempt
def tallyclerk_file_start(context):
    go = pathlib.Path(context.path).with_name("go")
    log.warning("holding %s until %s exists", context.path, go)
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
'''


def test_metrics_endpoint_answers_during_a_load(tmp_path: Path) -> None:
    """The load holds in its first file (a -p plugin waits for a 'go' file); meanwhile the
    endpoint answers with the running batch; after the load the server is gone."""
    data(tmp_path)
    (tmp_path / "hold_plugin.py").write_text(HOLD_PLUGIN, encoding="utf-8")
    env = env_for()
    env["PYTHONPATH"] = str(tmp_path) + ":" + env["PYTHONPATH"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tallyclerk.cli", "load", "a.csv", "--table", "t", "--json",
         "--into", "sqlite:///t.db", "-p", "hold_plugin", "--metrics-port", "0",
         "--log-format", "json", "--log-level", "info"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            record = json.loads(line)
            url = record.get("metrics_url", url)
            if record["logger"] == "tallyclerk.test.hold":
                break
        assert url is not None and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as response:
            scraped = response.read().decode()
        found = samples(scraped)
        assert value(found, "tallyclerk_batches_running") == 1
        assert value(found, "tallyclerk_file_attempts_total") == 1
        assert value(found, "tallyclerk_files_total", status="loaded") == 0
        (tmp_path / "go").write_text("", encoding="utf-8")
        out, _err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert json.loads(out)["files"][0]["status"] == "loaded"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


LAZY_PROBE = """
import sys
import tallyclerk
from tallyclerk.metrics import load_metrics
report = tallyclerk.load([sys.argv[1]], table="t", into=sys.argv[2])
assert report.status == "succeeded", report
print("prometheus_client" in sys.modules)
metrics = load_metrics()
assert metrics is not None
before = metrics.registry.get_sample_value("tallyclerk_rows_read_total") or 0.0
tallyclerk.load([sys.argv[1]], table="t", into=sys.argv[2], force=True)
print(metrics.registry.get_sample_value("tallyclerk_rows_read_total") - before)
"""


def test_metrics_count_from_the_first_ask_and_cost_nothing_before(tmp_path: Path) -> None:
    """A load that asks for no metrics does not import prometheus-client (start-up, issue 16);
    once :func:`load_metrics` is called, later loads count."""
    src = write_csv(tmp_path / "a.csv", [(1, "a", 1), (2, "b", 2)])
    proc = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE, str(src), f"sqlite:///{tmp_path / 'x.db'}"],
        cwd=tmp_path, env=env_for(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "2.0"]
