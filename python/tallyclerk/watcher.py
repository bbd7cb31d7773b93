"""Continuous loading: :func:`watch` (``tallyclerk watch SOURCE... --table NAME``).

Every ``interval`` seconds the watcher lists its sources (:mod:`tallyclerk.listing`: folders,
globs, registered URL schemes), picks the files that are *ready* and not yet handled, and loads
them as one batch through the load session (:class:`tallyclerk.pipeline.Pipeline` with the
audit service's claims): each file's content is loaded into the table exactly once, whichever
watcher, restart or ``tallyclerk load`` gets to it first.

Ready:
    with ``marker`` None, a file whose size and modification time have not changed for
    ``settle`` seconds (seen unchanged that long, or last modified that long ago); with
    ``marker="_SUCCESS"`` (a name without ``{name}``), once that file exists in the file's
    folder; with ``marker="{name}.done"``, once ``orders.csv.done`` exists beside
    ``orders.csv``. Marker files themselves are never loaded.

Objects (``s3://``, ``gs://``, ``az://`` prefixes and globs, :mod:`tallyclerk.objlisting`)
appear whole (an upload is atomic), so the same rule keeps only a producer that rewrites an
object soon after writing it from being taken twice in between: an object is ready once its
size, LastModified and ETag have been the same in consecutive listings for ``settle`` seconds,
or its LastModified is ``settle`` seconds old; markers work as for folders. An object that
could not be copied (the store failing, or deleted after the listing) is looked at again at the
next listing: gone, it is forgotten; still there, it is tried again.

Sources that cannot be listed (an endpoint down, a timeout, access denied): that source is
skipped, the others keep loading; it is listed again after an exponential backoff (from
``backoff_initial_ms``, at least 0.1 s, up to ``breaker_cooldown_s``), logged once when it
starts failing and once when it works again; ``/health`` answers 503 meanwhile. Sources are
listed in threads of their own (see :meth:`Watcher.pending`), so one that hangs delays neither
the others nor a stop.

Handled (not listed again while unchanged): a file loaded, skipped as already loaded, or failed
by its own content (a corrupt archive, a bad header, too many rejects). A file that failed
because the database did not answer, or was being loaded by another watcher, is tried again at
the next listing. After a restart every file is claimed once more: the ledger skips what is
loaded (one ``skipped`` manifest row per file and restart) and reloads what a killed watcher
left half-done.

Outages: an error that stops a batch (the database unreachable, the audit store failing after
retries) is logged; the watcher closes its connections, waits with exponential backoff up to
``breaker_cooldown_s`` (the circuit breaker shared by every batch of the watcher fails files
fast meanwhile) and resumes, losing nothing: what was not committed is loaded later.

Stopping: ``stop`` (a :class:`~tallyclerk.pipeline.StopToken`; the CLI sets it on SIGINT /
SIGTERM) ends the watcher within a second: a file in flight is rolled back and recorded as
failed ("interrupted"), to be loaded by the next run.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pluggy

from tallyclerk import objstore
from tallyclerk.dburl import default_audit_url
from tallyclerk.errors import ConfigError, TallyclerkError
from tallyclerk.hookspecs import hookimpl
from tallyclerk.listing import Entry, Listing, ListingError, open_listing
from tallyclerk.objlisting import ObjectListing, is_object_source
from tallyclerk.pipeline import StopToken
from tallyclerk.retry import Backoff, CircuitBreaker
from tallyclerk.settings import Settings, settings_of

__all__ = ["HealthServer", "Readiness", "WatchSummary", "Watcher", "watch"]

log = logging.getLogger("tallyclerk.watch")

# failures that are the file's own: not retried until the file changes
_OWN_FAULT = frozenset({"SourceError", "RejectLimit", "SchemaError", "ConfigError"})


class Readiness:
    """Decides when a listed file is complete (settle time or marker file)."""

    def __init__(self, settle_s: float = 2.0, marker: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if settle_s < 0:
            raise ConfigError(f"--settle must be 0 or more, got {settle_s:g}")
        self.settle_s = settle_s
        self.marker = marker or None
        self._clock, self._wall = clock, wall
        # path -> (size, mtime, ETag), since
        self._seen: dict[str, tuple[tuple[int, float, str | None], float]] = {}

    def marker_path(self, path: str) -> str | None:
        if self.marker is None:
            return None
        folder, _, name = path.rpartition("/")
        marker = self.marker.replace("{name}", name) if "{name}" in self.marker else self.marker
        return f"{folder}/{marker}" if folder else marker

    def is_marker(self, path: str) -> bool:
        if self.marker is None:
            return False
        name = path.rpartition("/")[2]
        if "{name}" not in self.marker:
            return name == self.marker
        head, _, tail = self.marker.partition("{name}")
        return name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail)

    def ready(self, entry: Entry, listing: Listing) -> bool:
        if self.marker is not None:
            marker = self.marker_path(entry.path)
            return marker is not None and listing.exists(marker)
        now = self._clock()
        seen = self._seen.get(entry.path)
        if seen is None or seen[0] != entry.stamp:
            self._seen[entry.path] = seen = (entry.stamp, now)
        stable_for = now - seen[1]
        quiet_for = self._wall() - entry.mtime
        return max(stable_for, quiet_for) >= self.settle_s

    def forget(self, path: str) -> None:
        self._seen.pop(path, None)

    def keep_only(self, paths: set[str]) -> None:
        """Forget the files no longer listed."""
        for path in [p for p in self._seen if p not in paths]:
            del self._seen[path]


@dataclass
class WatchSummary:
    """What a watcher did until it stopped."""

    cycles: int = 0
    batches: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    rows_written: int = 0
    outages: int = 0
    sources_failing: int = 0
    signum: int | None = None
    last_error: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "files"}


class _FileObserver:
    """Logs each file's outcome as it happens (a hook observer: a watcher killed mid-batch has
    logged every file finished before) and keeps the failed files' error classes."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.classes: dict[str, str | None] = {}
        self.logged: set[str] = set()

    @hookimpl
    def tallyclerk_file_finish(self, context: Any, status: str, result: Any) -> None:
        path = str(context.path)
        self.classes[path] = getattr(result, "error_class", None)
        self.logged.add(path)
        self.watcher.log_file(path, status, result.rows_read, result.rows_written,
                              result.rows_rejected, result.error,
                              getattr(result, "rows_rolled_back", 0))

    @hookimpl
    def tallyclerk_file_skipped(self, context: Any, skip: Any) -> None:
        path = str(context.path)
        self.logged.add(path)
        self.watcher.log_file(path, "skipped", 0, 0, 0, getattr(skip, "reason", None))


class _ListJob:
    """One listing of a source, running in a daemon thread of its own."""

    def __init__(self, listing: Listing) -> None:
        self.entries: list[Entry] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(listing,), name="tallyclerk-watch-list",
                         daemon=True).start()

    def _run(self, listing: Listing) -> None:
        try:
            self.entries = listing.entries()
        except BaseException as exc:  # noqa: BLE001 - handed to the watching thread
            self.error = exc
        finally:
            self.done.set()


@dataclass
class _SourceState:
    """How listing one source goes: consecutive failures, when to try again, the last error
    (scrubbed of credentials) and the paths it held when last listed."""

    source: str
    backoff: Backoff
    failures: int = 0
    next_try: float = 0.0
    error: str | None = None
    paths: set[str] = field(default_factory=set)
    job: _ListJob | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "state": "failing" if self.failures else "ok",
                "failures": self.failures, "error": self.error}


class Watcher:
    """One watch: sources, table and the options of a load (see :func:`watch`)."""

    def __init__(
        self,
        sources: Sequence[str],
        table: str,
        *,
        pm: pluggy.PluginManager,
        settings: Any,
        into: str,
        audit: str | None = None,
        schema: Any = None,
        options: Mapping[str, Any] | None = None,
        on_error: str = "continue",
        max_rejects: int | None = None,
        interval_s: float = 5.0,
        readiness: Readiness | None = None,
        stop: StopToken | None = None,
        max_cycles: int | None = None,
    ) -> None:
        if not sources:
            raise ConfigError("watch needs at least one source (a folder, a glob or a URL)")
        if not interval_s > 0:
            raise ConfigError(f"--interval must be more than 0 seconds, got {interval_s:g}")
        self.listings: list[Listing] = [
            ObjectListing(s, settings) if is_object_source(s) else open_listing(s)
            for s in sources]
        self.table, self.pm, self.settings = table, pm, settings
        self.into, self.audit_url = into, audit or default_audit_url(into)
        self.schema, self.options = schema, dict(options or {})
        self.on_error, self.max_rejects = on_error, max_rejects
        self.interval_s = interval_s
        self.readiness = readiness or Readiness()
        self.stop = stop or StopToken()
        self.max_cycles = max_cycles
        self.summary = WatchSummary()
        s = settings_of(settings)
        self.breaker = CircuitBreaker(threshold=s.breaker_threshold,
                                      cooldown_s=s.breaker_cooldown_s)
        self._backoff = Backoff(
            initial_ms=max(100.0, s.backoff_initial_ms),
            max_ms=1000.0 * s.breaker_cooldown_s,
            max_retries=1 << 30,
        )
        self._handled: dict[str, tuple[int, float, str | None]] = {}
        self.sources = [_SourceState(x.source, Backoff(
            initial_ms=max(100.0, s.backoff_initial_ms), max_ms=1000.0 * s.breaker_cooldown_s,
            max_retries=1 << 30)) for x in self.listings]
        self._session: tuple[Any, Any] | None = None  # (sink, audit service)
        self.healthy = True

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> WatchSummary:
        """List, load, wait; until stopped (or ``max_cycles``). Returns the summary."""
        log.info("watching %s into %r every %g s", ", ".join(x.source for x in self.listings),
                 self.table, self.interval_s)
        outage = 0
        try:
            while not self.stop.stopped:
                try:
                    retry_soon = self.cycle()
                except ConfigError:
                    raise
                except (TallyclerkError, OSError) as exc:
                    outage += 1
                    self._outage(exc)
                    if self._last_cycle():
                        break
                    self.stop.wait(self._backoff.delay_s(outage))
                    continue
                outage = 0
                self.healthy = True
                if self._last_cycle():
                    break
                wait = self.interval_s
                if retry_soon and self.breaker.state != CircuitBreaker.CLOSED:
                    wait = max(wait, min(self.breaker.cooldown_s, 5.0))
                self.stop.wait(wait)
        finally:
            self._close_session()
        self.summary.signum = self.stop.signum
        return self.summary

    def _last_cycle(self) -> bool:
        return self.max_cycles is not None and self.summary.cycles >= self.max_cycles

    def _outage(self, exc: BaseException) -> None:
        self.healthy = False
        self.summary.outages += 1
        self.summary.last_error = f"{type(exc).__name__}: {exc}"
        self.breaker.record_failure()
        log.error("watch: batch stopped (%s): %s; retrying with backoff", type(exc).__name__,
                  exc, extra={"error_class": type(exc).__name__})
        self._close_session()

    def _open_session(self) -> tuple[Any, Any]:
        if self._session is None:
            from tallyclerk.audit import AuditService
            from tallyclerk.session import open_sink

            sink = open_sink(self.pm, self.into, self.options)
            try:
                audit = AuditService(self.audit_url, settings=self.settings)
            except BaseException:
                sink.close()
                raise
            self._session = (sink, audit)
        return self._session

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        sink, audit = session
        for close in (audit.close, sink.close):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - a broken connection must not stop us
                log.warning("watch: closing a connection failed (%s): %s",
                            type(exc).__name__, exc)

    def pending(self) -> list[Entry]:
        """The ready files not handled yet, in listing order. Files gone from the listing are
        forgotten (memory stays bounded by what the sources hold). A source that cannot be
        listed is skipped (its files kept in mind) and listed again after a backoff.

        Every source is listed in a thread of its own, all at once: a store that does not
        answer can block its listing for the back-end's timeouts and retries, and neither a
        stop request nor the other sources wait for that. A listing not finished after
        ``max(1, interval)`` seconds is used at a later cycle, when it has finished (its
        source is skipped meanwhile; no second listing of it is started)."""
        now = time.monotonic()
        for listing, state in zip(self.listings, self.sources, strict=True):
            if state.job is None and now >= state.next_try:
                state.job = _ListJob(listing)
        # the last listing of a finite watch (--once) is waited for: nothing comes after it
        deadline = time.monotonic() + (math.inf if self._last_cycle()
                                       else max(1.0, self.interval_s))
        for state in self.sources:
            while state.job is not None and not state.job.done.wait(0.05):
                if self.stop.stopped:
                    return []  # abandoned: the threads end with the back-ends' timeouts
                if time.monotonic() >= deadline:
                    break
        out: list[Entry] = []
        listed: set[str] = set()
        for listing, state in zip(self.listings, self.sources, strict=True):
            entries = self._collect(state)
            if entries is None:  # failing or still listing: what it held is still there
                listed.update(state.paths)
                continue
            state.paths = {e.path for e in entries}
            for entry in entries:
                if entry.path in listed:
                    continue  # also listed by an earlier source (a prefix and its glob)
                listed.add(entry.path)
                if self.readiness.is_marker(entry.path):
                    continue
                if self._handled.get(entry.path) == entry.stamp:
                    continue
                if self.readiness.ready(entry, listing):
                    out.append(entry)
        for path in [p for p in self._handled if p not in listed]:
            del self._handled[path]
        self.readiness.keep_only(listed)
        self.summary.sources_failing = sum(1 for x in self.sources if x.failures)
        return out

    def _collect(self, state: _SourceState) -> list[Entry] | None:
        """The source's finished listing, or None when it is still listing, waiting out its
        backoff, or failed (logged when it starts failing and when it works again, not at
        every interval)."""
        job = state.job
        if job is None or not job.done.is_set():
            return None
        state.job = None
        if job.error is None:
            if state.failures:
                log.warning("watch: listing %s works again (after %d failed attempt(s))",
                            state.source, state.failures, extra={"source": state.source})
            state.failures, state.next_try, state.error = 0, 0.0, None
            return job.entries
        error = job.error
        if not isinstance(error, (ListingError, OSError)):
            raise error
        state.failures += 1
        state.error = objstore.scrub(f"{type(error).__name__}: {error}")
        state.next_try = time.monotonic() + state.backoff.delay_s(state.failures)
        if state.failures == 1:
            self.summary.outages += 1
            self.summary.last_error = state.error
            log.error("watch: %s; listing it again with backoff (logged again when it works)",
                      state.error, extra={"error_class": type(error).__name__,
                                          "source": state.source})
        return None

    def cycle(self) -> bool:
        """One listing and one batch of the ready files; True when some should be retried."""
        from tallyclerk.pipeline import Pipeline

        self.summary.cycles += 1
        ready = self.pending()
        if not ready:
            return False
        from tallyclerk import objprefetch
        from tallyclerk.fingerprints import prefetch

        fetch = prefetch([e.path for e in ready])  # file n+1 hashed while file n loads
        copies = objprefetch.prefetch([e.path for e in ready], self.settings)  # and copied
        try:
            sink, audit = self._open_session()
        except BaseException:
            copies.close()
            fetch.close()
            raise
        observer = _FileObserver(self)
        self.pm.register(observer)
        try:
            pipeline = Pipeline(self.settings, self.pm, audit, sink, into_url=self.into,
                                stop=self.stop)
            pipeline.breaker = self.breaker
            report = pipeline.run([e.path for e in ready], self.table, self.schema,
                                  self.options, on_error=self.on_error,
                                  max_rejects=self.max_rejects)
        finally:
            self.pm.unregister(observer)
            copies.close()
            fetch.close()
        self.summary.batches += 1
        # the batch's total (its accumulator's count), not a sum kept here of its files
        self.summary.rows_written += int(report.get("rows_written") or 0)
        return self._account(ready, report, observer)

    def log_file(self, path: str, status: str, rows_read: int | None, rows_written: int | None,
                 rows_rejected: int | None, error: str | None,
                 rows_rolled_back: int | None = 0) -> None:
        """The one JSON line of a file's outcome (logger ``tallyclerk.watch``)."""
        from tallyclerk.logs import current_context

        line = {"path": path, "status": status, "table": self.table, "rows_read": rows_read,
                "rows_written": rows_written, "rows_rejected": rows_rejected,
                "rows_rolled_back": rows_rolled_back, "error": error,
                "batch_id": current_context().get("batch_id")}
        s = self.summary
        if status == "loaded":
            s.files_loaded += 1
        elif status == "failed":
            s.files_failed += 1
        else:
            s.files_skipped += 1
        s.files.append(line)
        del s.files[:-1000]  # the recent ones only: a watcher runs for months
        level = logging.WARNING if status == "failed" else logging.INFO
        log.log(level, "watch: %s %s", status, path, extra={"file": line})

    def _account(self, ready: list[Entry], report: Mapping[str, Any],
                 observer: _FileObserver) -> bool:
        classes = observer.classes
        by_path = {e.path: e for e in ready}
        retry = False
        for f in report.get("files") or []:
            entry = by_path.get(f["path"])
            status, error = f.get("status"), f.get("error")
            handled = status == "loaded"
            if status == "skipped":
                handled = not str(error or "").startswith("being loaded")
            elif status == "failed":
                # a file failed before its claim has no finish hook: it was unreadable
                cls = classes[f["path"]] if f["path"] in classes else "SourceError"
                handled = cls in _OWN_FAULT and not str(error or "").startswith("not attempted")
                if (f["path"] not in classes and objstore.is_remote(f["path"])
                        and "access denied" not in str(error or "")):
                    # an object that could not be copied (the store failing, or deleted after
                    # the listing): the next listing decides (gone: forgotten; there: retried)
                    handled = False
            if entry is not None:
                if handled:
                    self._handled[entry.path] = entry.stamp
                    self.readiness.forget(entry.path)
                else:
                    retry = True
            if f["path"] not in observer.logged:  # failed before its claim, or not attempted
                self.log_file(f["path"], str(status), f.get("rows_read"), f.get("rows_written"),
                              f.get("rows_rejected"), error, f.get("rows_rolled_back"))
        return retry


class HealthServer:
    """``GET /health`` of a running watcher: 200 and ``{"status": "ok", ...}`` while its last
    listing and batch worked, 503 and ``"unavailable"`` with the last error during an outage."""

    def __init__(self, watcher: Watcher, port: int, addr: str = "127.0.0.1") -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/health", "/healthz", "/"):
                    self.send_error(404)
                    return
                body, ok = outer.state()
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one JSON line per file is the watcher's log, not per request

        self.watcher = watcher
        try:
            self._server = ThreadingHTTPServer((addr, port), Handler)
        except OSError as exc:
            raise ConfigError(f"--health-port {port}: cannot listen on {addr}:{port}: "
                              f"{exc.strerror or exc}") from exc
        self._server.daemon_threads = True
        host, bound = self._server.server_address[:2]
        self.url = f"http://{host!s}:{bound}/health"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="tallyclerk-watch-health", daemon=True)
        self._thread.start()
        log.info("health served on %s", self.url, extra={"health_url": self.url})

    def state(self) -> tuple[dict[str, Any], bool]:
        w = self.watcher
        ok = w.healthy and not w.stop.stopped and not any(x.failures for x in w.sources)
        body = {"status": "ok" if ok else "unavailable", "table": w.table,
                "breaker": w.breaker.state, **w.summary.as_dict(),
                "sources": [x.as_dict() for x in w.sources]}
        return body, ok

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)


def watch(
    sources: str | Sequence[str],
    table: str,
    *,
    into: str = "sqlite:///tallyclerk.db",
    audit: str | None = None,
    schema: str | Any = None,
    format: str | None = None,
    compression: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    on_error: str = "continue",
    max_rejects: int | None = None,
    mode: str = "append",
    primary_key: str | None = None,
    columns: str | None = None,
    infer: str | None = None,
    infer_rows: int | None = None,
    interval: float = 5.0,
    settle: float = 2.0,
    marker: str | None = None,
    plugins: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    stop: StopToken | None = None,
    max_cycles: int | None = None,
    health_port: int | None = None,
    health_addr: str = "127.0.0.1",
    pm: pluggy.PluginManager | None = None,
    namespace: Any = None,
) -> WatchSummary:
    """Load every new file of ``sources`` into ``table``, exactly once, until ``stop`` is set.

    Args:
        sources: folders, globs, object-store prefixes or globs (``s3://``, ``gs://``,
            ``az://``; credentials and endpoints from each cloud's environment, as for loads)
            or URLs another listing is registered for.
        table: the target table.
        into, audit, schema, format, compression, delimiter, encoding, on_error, max_rejects,
            mode (``append`` or ``merge``), primary_key: as for ``tallyclerk load``
            (``schema``: a file path or a ``TableSchema``).
        columns, infer, infer_rows: a file's columns the table lacks, and a new table's
            inferred schema, as for ``tallyclerk.load()`` (``--columns``, ``--infer``,
            ``--infer-rows``).
        interval: seconds between listings.
        settle: seconds a file's size and modification time must stay unchanged.
        marker: ``"_SUCCESS"`` (a folder's marker) or ``"{name}.done"`` (a file's marker)
            instead of the settle time.
        plugins: ``-p`` plugin modules; options: more loader/plugin options; settings:
            setting overrides.
        stop: set it (``stop.stop()``) from another thread or a signal handler to end the
            watch; the file in flight is rolled back.
        max_cycles: stop after that many listings (None: run until stopped).
        health_port: serve ``GET /health`` on this port while watching (0: any free port).
            The metrics endpoint is the metrics plugin's: ``options={"metrics_port": P}``.

    Returns:
        A :class:`WatchSummary`.

    Raises:
        ConfigError: a bad option, table name, schema or source.
    """
    from tallyclerk.api import make_request, plugin_manager
    from tallyclerk.inputs import check_compression
    from tallyclerk.session import check_format, session_options

    srcs = [sources] if isinstance(sources, str) else list(sources)
    if pm is None:
        pm, names = plugin_manager(list(plugins))
    else:
        names = [p for p in plugins if isinstance(p, str)]
    opts: dict[str, Any] = dict(options or {})
    if mode not in ("append", "merge"):
        raise ConfigError(f"watch mode must be append or merge, got {mode!r} (replace would "
                          "empty the table at every batch)")
    opts.update({k: v for k, v in {"delimiter": delimiter, "encoding": encoding,
                                   "mode": mode, "primary_key": primary_key}.items()
                 if v is not None})
    # the load's own argument checks and options (the sources stand in for its paths)
    req = make_request(srcs, table=table, into=into, audit=audit, schema=schema, format=format,
                       on_error=on_error, max_rejects=max_rejects, settings=settings,
                       options=opts, plugins=names, columns=columns, infer=infer,
                       infer_rows=infer_rows,
                       compression=None if compression is None
                       else check_compression(compression))
    opts = session_options(req)
    opts["compression"] = check_compression(opts.get("compression"))
    if req.format:
        check_format(pm, req.format, opts)
    conf = req.settings
    watcher = Watcher(srcs, table, pm=pm, settings=conf, into=into, audit=audit,
                      schema=req.schema, options=opts, on_error=on_error,
                      max_rejects=req.max_rejects, interval_s=interval,
                      readiness=Readiness(settle, marker), stop=stop, max_cycles=max_cycles)
    from tallyclerk.protocols import Config

    config = Config(command="watch", options=opts, pluginmanager=pm, settings=conf,
                    namespace=namespace)
    pm.hook.tallyclerk_configure.call_historic(kwargs={"config": config})
    health: HealthServer | None = None
    try:
        if health_port is not None:
            health = HealthServer(watcher, health_port, health_addr)
        return watcher.run()
    finally:
        if health is not None:
            health.close()
        pm.hook.tallyclerk_unconfigure(config=config)
