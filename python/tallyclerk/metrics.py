"""Prometheus metrics of loads: a built-in plugin, registered like any other.

Declared in tallyclerk's own ``[project.entry-points.tallyclerk]`` table; it implements the event
hooks (batch start and finish, rejected rows, timeouts, rows written, pipeline stats) and
turns what they report into :class:`LoadMetrics`, which owns its own
:class:`prometheus_client.CollectorRegistry` (never the global one, so embedding tallyclerk in
an application does not mix its metrics with the application's).

``tallyclerk load`` gets three options from this plugin's ``tallyclerk_addoption``:

``--metrics-port PORT``
    serve ``/metrics`` over HTTP for the duration of the command (``0``: any free port; the
    address is logged at INFO level as ``metrics served on http://ADDR:PORT/metrics``).
``--metrics-addr ADDR``
    the address to listen on (default ``127.0.0.1``: only this machine can scrape).
``--metrics-textfile PATH``
    write the exposition to PATH (atomically: a temporary file, then a rename) every
    ``--metrics-interval`` seconds and once more when the command ends: the node_exporter
    textfile collector's format.

Files, attempts and rows are not counted here: they are read from the batch accumulator's
snapshots (``stats["metrics"]`` of ``tallyclerk_pipeline_stats``, sampled after every record
batch, at every attempt's start and after every file), and each counter grows by what the
snapshot's count grew since the batch's previous sample -- so the metrics always agree with
the accumulator, hence with the report and the batch row. What the accumulator does not hold
is observed from the hooks: rejects by rule, write latency, watchdog firings, batches.

Counters accumulate over the life of the process (one ``LoadMetrics`` per process, see
:func:`load_metrics`), as Prometheus counters should, from the moment metrics are first asked
for: a ``--metrics-*`` option or a call to :func:`load_metrics`. Until then the hooks do
nothing and prometheus-client is not even imported (it costs a one-row load ~15 ms of
start-up). prometheus-client is the ``metrics`` extra: without it the hooks do nothing and
asking for ``--metrics-*`` is a configuration error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from tallyclerk.errors import ConfigError
from tallyclerk.hookspecs import hookimpl

if TYPE_CHECKING:
    import argparse
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

    from tallyclerk._core import MetricsSnapshot
    from tallyclerk.audit import RejectRow
    from tallyclerk.protocols import BatchContext, Config

__all__ = ["BREAKER_STATES", "LoadMetrics", "MetricsExporter", "load_metrics"]

log = logging.getLogger("tallyclerk.metrics")

BREAKER_STATES = ("closed", "half_open", "open")
WRITE_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)
DEFAULT_INTERVAL_S = 10.0


class LoadMetrics:
    """The metrics of every load in this process, in a registry of their own.

    Each ``on_*`` method is what the matching hook does; they are thread-safe (the pipeline
    calls ``on_rows_written`` from its writer thread).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.batches_started = Counter(
            "tallyclerk_batches_started", "Load batches started", registry=r)
        self.batches = Counter(
            "tallyclerk_batches", "Load batches finished, by final status", ["status"],
            registry=r)
        self.batches_running = Gauge(
            "tallyclerk_batches_running", "Load batches running now", registry=r)
        self.file_attempts = Counter(
            "tallyclerk_file_attempts", "File load attempts started (retries included)",
            registry=r)
        self.files = Counter(
            "tallyclerk_files", "Files finished, by status (loaded, failed, skipped)",
            ["status"], registry=r)
        self.rows_read = Counter(
            "tallyclerk_rows_read", "Records read from finished files", registry=r)
        self.rows_written = Counter(
            "tallyclerk_rows_written", "Rows committed to the target by loaded files",
            registry=r)
        self.rows_rejected = Counter(
            "tallyclerk_rows_rejected",
            "Rows of finished files that failed validation (quarantined in the rejects table)",
            registry=r)
        self.rows_rolled_back = Counter(
            "tallyclerk_rows_rolled_back",
            "Rows of failed files read, not rejected, and rolled back (never judged bad)",
            registry=r)
        self.rejects = Counter(
            "tallyclerk_rejects", "Rows quarantined with a reason, by rule", ["rule"],
            registry=r)
        self.rows_sent = Counter(
            "tallyclerk_rows_sent",
            "Rows handed to the sink inside open file transactions (live progress)",
            registry=r)
        self.write_latency = Histogram(
            "tallyclerk_write_latency_seconds", "Time the sink took to write one record batch",
            buckets=WRITE_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "tallyclerk_queue_depth", "Items waiting in a write-behind queue", ["queue"],
            registry=r)
        self.queue_high_water = Gauge(
            "tallyclerk_queue_high_water", "Most items ever waiting in a write-behind queue",
            ["queue"], registry=r)
        self.retries = Counter(
            "tallyclerk_retries", "Retries after transient failures, by what was retried",
            ["what"], registry=r)
        self.dead_letters = Counter(
            "tallyclerk_dead_letters",
            "Items a write-behind queue gave up on (each one also logged at error level)",
            ["queue"], registry=r)
        self.breaker_state = Enum(
            "tallyclerk_circuit_breaker_state", "State of the sink's circuit breaker",
            states=list(BREAKER_STATES), registry=r)
        self.breaker_opened = Counter(
            "tallyclerk_circuit_breaker_opened", "Times the circuit breaker opened", registry=r)
        self.watchdog_firings = Counter(
            "tallyclerk_watchdog_firings",
            "Batches the watchdog cancelled, by timeout kind (operation, idle)", ["kind"],
            registry=r)
        # the known label values exist from the start (a dashboard sees 0, not "no data")
        for status in ("loaded", "failed", "skipped"):
            self.files.labels(status=status)
        for kind in ("operation", "idle"):
            self.watchdog_firings.labels(kind=kind)
        for queue in ("sink", "audit"):
            self.dead_letters.labels(queue=queue)
            self.retries.labels(what=f"{queue}_write")
        self.retries.labels(what="file")
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._high: dict[str, float] = {}

    # -- events -----------------------------------------------------------------------------

    def on_batch_start(self) -> None:
        self.batches_started.inc()
        self.batches_running.inc()

    def on_batch_finish(self, batch_id: str, status: str) -> None:
        self.batches.labels(status=status or "unknown").inc()
        self.batches_running.dec()
        with self._lock:
            for key in [k for k in self._last if k[0] == batch_id]:
                del self._last[key]

    def on_rejects(self, rejects: Sequence[RejectRow]) -> None:
        by_rule: dict[str, int] = {}
        for reject in rejects:
            by_rule[reject.rule] = by_rule.get(reject.rule, 0) + 1
        for rule, n in by_rule.items():
            self.rejects.labels(rule=rule).inc(n)

    def on_timeout(self, kind: str) -> None:
        self.watchdog_firings.labels(kind=kind).inc()

    def on_rows_written(self, seconds: float) -> None:
        self.write_latency.observe(max(0.0, seconds))

    def on_snapshot(self, snap: MetricsSnapshot) -> None:
        """Add what the accumulator counted since the batch's previous snapshot."""
        b = snap.batch_id
        self._grow(b, "loaded", snap.files_loaded, self.files.labels(status="loaded"))
        self._grow(b, "failed", snap.files_failed, self.files.labels(status="failed"))
        self._grow(b, "skipped", snap.files_skipped, self.files.labels(status="skipped"))
        self._grow(b, "attempts", snap.file_attempts, self.file_attempts)
        self._grow(b, "read", snap.rows_read, self.rows_read)
        self._grow(b, "written", snap.rows_written, self.rows_written)
        self._grow(b, "rejected", snap.rows_rejected, self.rows_rejected)
        self._grow(b, "rolled_back", snap.rows_rolled_back, self.rows_rolled_back)
        self._grow(b, "sent", snap.rows_sent, self.rows_sent)

    def on_stats(self, batch_id: str, stats: Mapping[str, Any]) -> None:
        """Take a ``tallyclerk_pipeline_stats`` sample (gauges set, cumulative counts added)."""
        snap = stats.get("metrics")
        if snap is not None:
            self.on_snapshot(snap)
        for queue in ("sink", "audit"):
            depth = stats.get(f"{queue}_queue_depth")
            if depth is not None:
                self.queue_depth.labels(queue=queue).set(depth)
            high = stats.get(f"{queue}_queue_high_water")
            if high is not None:
                with self._lock:
                    raise_to = high if high > self._high.get(queue, -1) else None
                    if raise_to is not None:
                        self._high[queue] = raise_to
                if raise_to is not None:
                    self.queue_high_water.labels(queue=queue).set(raise_to)
            self._add(batch_id, f"{queue}_dead_letters", stats, self.dead_letters.labels(
                queue=queue))
            self._add(batch_id, f"{queue}_retries", stats, self.retries.labels(
                what=f"{queue}_write"))
        self._add(batch_id, "file_retries", stats, self.retries.labels(what="file"))
        self._add(batch_id, "breaker_opened", stats, self.breaker_opened)
        state = stats.get("breaker_state")
        if state in BREAKER_STATES:
            self.breaker_state.state(str(state))

    def _add(self, batch_id: str, key: str, stats: Mapping[str, Any], counter: Any) -> None:
        """Add the growth of a per-batch cumulative count since the last sample."""
        value = stats.get(key)
        if value is not None:
            self._grow(batch_id, key, value, counter)

    def _grow(self, batch_id: str, key: str, value: float, counter: Any) -> None:
        with self._lock:
            last = self._last.get((batch_id, key), 0.0)
            if value > last:
                self._last[(batch_id, key)] = float(value)
                counter.inc(value - last)

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def write_textfile(self, path: str) -> None:
        """Write the exposition to ``path`` atomically (temporary file, then rename)."""
        from prometheus_client import write_to_textfile

        write_to_textfile(path, self.registry)


_metrics: LoadMetrics | None = None
_metrics_lock = threading.Lock()


def _available() -> bool:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def _live() -> LoadMetrics | None:
    """This process's :class:`LoadMetrics` if something asked for metrics, else None (the
    event hooks count nothing until then and never import prometheus-client themselves)."""
    return _metrics


def load_metrics() -> LoadMetrics | None:
    """This process's :class:`LoadMetrics` (created on first call; loads count from then on).

    None when prometheus-client is not installed.
    """
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None and _available():
                _metrics = LoadMetrics()
    return _metrics


class MetricsExporter:
    """Serves and/or writes one :class:`LoadMetrics` for the duration of a command.

    :param metrics: what to export.
    :param port: serve ``/metrics`` on this port (None: no server; 0: any free port).
    :param addr: the address to listen on.
    :param textfile: write the exposition to this path periodically and on :meth:`close`.
    :param interval_s: how often the textfile is rewritten.
    :raises ConfigError: the port cannot be bound, or the textfile cannot be written.
    """

    def __init__(
        self,
        metrics: LoadMetrics,
        *,
        port: int | None = None,
        addr: str = "127.0.0.1",
        textfile: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.metrics = metrics
        self.textfile = textfile
        self.interval_s = interval_s
        self.url: str | None = None
        self._server: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        if textfile is not None:
            self._write()  # fail now (exit 2) rather than at the end of a long load
            self._writer = threading.Thread(
                target=self._write_loop, name="tallyclerk-metrics-textfile", daemon=True
            )
            self._writer.start()
        if port is not None:
            self._serve(port, addr)

    def _serve(self, port: int, addr: str) -> None:
        from prometheus_client import start_http_server

        try:
            self._server, self._http_thread = start_http_server(
                port, addr=addr, registry=self.metrics.registry
            )
        except OSError as exc:
            self.close()
            raise ConfigError(
                f"--metrics-port {port}: cannot listen on {addr}:{port}: {exc.strerror or exc}"
            ) from exc
        host, bound = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}/metrics"
        log.info("metrics served on %s", self.url, extra={"metrics_url": self.url})

    def _write(self) -> None:
        assert self.textfile is not None
        try:
            self.metrics.write_textfile(self.textfile)
        except OSError as exc:
            raise ConfigError(
                f"--metrics-textfile {self.textfile}: cannot write: {exc.strerror or exc}"
            ) from exc

    def _write_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._write()
            except ConfigError as exc:
                log.error("metrics textfile not written (%s): %s", type(exc).__name__, exc)

    def close(self) -> None:
        """Stop serving; write the textfile one last time. Idempotent."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=1.0)
            self._writer = None
            try:
                self._write()
            except ConfigError as exc:
                log.error("metrics textfile not written (%s): %s", type(exc).__name__, exc)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=1.0)
            self._http_thread = None


# --- the plugin ----------------------------------------------------------------------------

_exporters: dict[int, MetricsExporter] = {}


def _port(text: str) -> int:
    import argparse  # imported here: a load through the Python API needs no argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {value}")
    return value


def _interval(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {value:g}")
    return value


@hookimpl
def tallyclerk_addoption(
    parser: argparse.ArgumentParser, pluginmanager: pluggy.PluginManager
) -> None:
    """``--metrics-port``, ``--metrics-addr``, ``--metrics-textfile``, ``--metrics-interval``."""
    group = parser.add_argument_group("metrics (Prometheus)")
    group.add_argument("--metrics-port", type=_port, metavar="PORT", default=None,
                       help="serve /metrics on PORT while the command runs (0: any free port)")
    group.add_argument("--metrics-addr", metavar="ADDR", default="127.0.0.1",
                       help="address the metrics server listens on (default 127.0.0.1)")
    group.add_argument("--metrics-textfile", metavar="PATH", default=None,
                       help="write the metrics to PATH periodically and at the end "
                       "(node_exporter textfile format)")
    group.add_argument("--metrics-interval", type=_interval, metavar="S",
                       default=DEFAULT_INTERVAL_S,
                       help=f"seconds between textfile writes (default {DEFAULT_INTERVAL_S:g})")


@hookimpl
def tallyclerk_configure(config: Config) -> None:
    """Start the metrics server / textfile writer the options ask for."""
    port = config.getoption("metrics_port")
    textfile = config.getoption("metrics_textfile")
    if port is None and textfile is None:
        return
    metrics = load_metrics()
    if metrics is None:
        raise ConfigError(
            "--metrics-port/--metrics-textfile need prometheus-client "
            "(pip install 'tallyclerk[metrics]')"
        )
    _exporters[id(config)] = MetricsExporter(
        metrics,
        port=port,
        addr=str(config.getoption("metrics_addr") or "127.0.0.1"),
        textfile=textfile,
        interval_s=float(config.getoption("metrics_interval") or DEFAULT_INTERVAL_S),
    )


@hookimpl
def tallyclerk_unconfigure(config: Config) -> None:
    """Write the textfile a last time and stop the server."""
    exporter = _exporters.pop(id(config), None)
    if exporter is not None:
        exporter.close()


@hookimpl
def tallyclerk_batch_start(batch_id: str, table: str, paths: Sequence[str]) -> None:
    m = _live()
    if m is not None:
        m.on_batch_start()


@hookimpl
def tallyclerk_batch_finish(batch_id: str, report: Mapping[str, Any]) -> None:
    m = _live()
    if m is not None:
        m.on_batch_finish(batch_id, str(report.get("status") or "unknown"))


@hookimpl
def tallyclerk_rows_rejected(context: BatchContext, rejects: Sequence[RejectRow]) -> None:
    m = _live()
    if m is not None:
        m.on_rejects(rejects)


@hookimpl
def tallyclerk_timeout(batch_id: str, kind: str) -> None:
    m = _live()
    if m is not None:
        m.on_timeout(kind)


@hookimpl
def tallyclerk_rows_written(context: BatchContext, rows: int, seconds: float) -> None:
    m = _live()
    if m is not None:
        m.on_rows_written(seconds)


@hookimpl
def tallyclerk_pipeline_stats(batch_id: str, stats: Mapping[str, Any]) -> None:
    m = _live()
    if m is not None:
        m.on_stats(batch_id, stats)


def pipeline_stats_wanted() -> bool:
    """Whether :func:`tallyclerk_pipeline_stats` would use a sample now: not until something
    asked for metrics (the pipeline then skips building samples nobody reads: issue 16.4)."""
    return _live() is not None
