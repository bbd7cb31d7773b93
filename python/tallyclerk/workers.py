"""``tallyclerk load --workers N [--load-id ID]``: one load shared by many worker processes.

The command (the *parent*) checks its configuration, registers its paths in the load's work
list (:mod:`tallyclerk.audit.worklist`, in the audit store) and starts N workers
(``python -m tallyclerk.workers``, the request as JSON on stdin). Each worker runs the ordinary
:class:`~tallyclerk.pipeline.Pipeline` in a batch of its own, over a path sequence that takes
work items from the list one at a time (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL),
and records each file's outcome on its item. A worker ends when every item of the load is done;
while items are held by others it waits, so a worker that dies has its items taken over by the
survivors once its leases expire (at most ``lease_s + heartbeat_s`` after its last heartbeat).

The same command with the same ``--load-id`` on several machines against one PostgreSQL audit
store shares the load: the paths must name the same files on every machine (shared storage).

The parent shows progress for the whole load (read from the audit store) and, once its workers
have exited, prints the load's report: the CLI's ``--json`` shape, one entry per path given,
whoever loaded it, with ``batch_id`` = the load id (plus ``load_id`` and the worker
``batches``). SIGINT/SIGTERM are passed to the workers; each rolls back its current file and
gives its item back to the list, so running the command again with the same ``--load-id``
finishes the load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, overload

from tallyclerk.audit.worklist import Taken, WorkList, check_load_id
from tallyclerk.errors import ConfigError, RepositoryError
from tallyclerk.hookspecs import hookimpl

__all__ = ["WorkQueue", "host_identity", "run_parallel", "run_worker"]

log = logging.getLogger("tallyclerk.workers")

_RELEASE_ON = frozenset({"Interrupted", "BatchTimedOut", "LeaseLost"})
_STOP_GRACE_S = 2.0


def host_identity() -> str:
    """This machine's name in claim owners (``TALLYCLERK_HOST`` overrides the host name)."""
    return os.environ.get("TALLYCLERK_HOST") or socket.gethostname()


def poll_interval(settings: Any) -> float:
    """How often an idle worker looks for work it can take over."""
    return float(min(1.0, max(0.05, float(settings.heartbeat_s) / 2)))


class WorkQueue(Sequence[str]):
    """The paths a worker's pipeline iterates: taken from the work list as it asks for them.

    The pipeline iterates its paths once to load them; that one iteration (the first after the
    batch started) takes items; any other iteration, indexing and slicing see the paths taken
    so far, and ``len`` is the size of the whole load (the pipeline's files total).
    """

    def __init__(self, worklist: WorkList, load_id: str, *, settings: Any, stop: Any) -> None:
        self.worklist = worklist
        self.load_id = load_id
        self.stop = stop
        self.audit: Any = None
        self.batch_id: str | None = None
        self.poll_s = poll_interval(settings)
        self.hold_off_s = max(self.poll_s, float(settings.heartbeat_s))
        self._total = worklist.progress(load_id)[1]
        self._paths: list[str] = []
        self._armed = False
        self.current: Taken | None = None
        self.current_file_id: int | None = None
        self.resolved = True

    def __len__(self) -> int:
        return max(self._total, len(self._paths))

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._paths[index]

    def __iter__(self) -> Iterator[str]:
        if self._armed:
            self._armed = False
            return self._take()
        return iter(list(self._paths))

    def arm(self, batch_id: str) -> None:
        """The batch started: the next iteration takes work."""
        self.batch_id = batch_id
        self._armed = True

    def _stopping(self) -> bool:
        if self.stop.stopped:
            return True
        if self.audit is not None and self.batch_id is not None:
            try:
                return bool(self.audit.accumulator(self.batch_id).cancelled)
            except KeyError:
                return True
        return False

    def _take(self) -> Iterator[str]:
        assert self.batch_id is not None
        while True:
            self._resolve_unreported()
            if self._stopping():
                return
            item = self.worklist.take(self.load_id, self.batch_id)
            if item is None:
                if self.worklist.remaining(self.load_id) == 0:
                    return
                self._idle()
                continue
            log.info("took %s (work item %d) of load %s", item.path, item.id, self.load_id)
            self.current, self.current_file_id, self.resolved = item, None, False
            self._paths.append(item.path)
            yield item.path

    def _idle(self) -> None:
        """Wait for work held by others (it may come back when their leases expire)."""
        if self.audit is not None and self.batch_id is not None:
            try:
                self.audit.accumulator(self.batch_id).touch()  # waiting is not idling
            except KeyError:
                return
        self.stop.wait(self.poll_s)

    def _resolve_unreported(self) -> None:
        """The pipeline went past the current item without a file hook: it could not even be
        claimed (a missing or unreadable path)."""
        item = self.current
        if item is None or self.resolved:
            return
        from tallyclerk.pipeline import _unreadable

        problem = _unreadable(item.path) or "could not be read"
        self.finish("failed", error=f"{item.path}: {problem}")

    def finish(self, outcome: str, *, file_id: int | None = None, error: str | None = None,
               release: bool = False, delay_s: float = 0.0) -> None:
        item = self.current
        if item is None or self.resolved:
            return
        self.resolved = True
        if release:
            self.worklist.release(item, delay_s=delay_s)
        else:
            self.worklist.finish(item, outcome, file_id=file_id, error=error)

    def release_unfinished(self) -> None:
        """At the end of the run: an item taken but not attempted goes back to the list."""
        item = self.current
        if item is None or self.resolved:
            return
        from tallyclerk.pipeline import _unreadable

        problem = _unreadable(item.path)
        if problem is not None:
            self.finish("failed", error=f"{item.path}: {problem}")
        else:
            self.finish("failed", release=True)

    def heartbeat(self) -> None:
        try:
            self.worklist.renew(self.load_id)
        except RepositoryError as exc:
            log.warning("load %s: renewing work leases failed: %s", self.load_id, exc)


class WorkerHooks:
    """Hook implementations that record each file's outcome on its work item."""

    def __init__(self, queue: WorkQueue) -> None:
        self.queue = queue

    def _mine(self, path: str) -> bool:
        item = self.queue.current
        return item is not None and item.path == path and not self.queue.resolved

    @hookimpl
    def tallyclerk_batch_start(self, batch_id: str, table: str, paths: Sequence[str]) -> None:
        self.queue.arm(batch_id)

    @hookimpl
    def tallyclerk_file_start(self, claim: Any) -> None:
        q = self.queue
        if self._mine(claim.path) and q.current is not None:
            if q.current_file_id != claim.file_id:
                q.current_file_id = claim.file_id
                q.worklist.started(q.current, claim.file_id)

    @hookimpl
    def tallyclerk_file_finish(self, path: str, status: str, result: Any) -> None:
        q = self.queue
        if not self._mine(path):
            return
        if status == "loaded":
            q.finish("loaded", file_id=q.current_file_id)
        elif result.error_class in _RELEASE_ON:
            q.finish("failed", release=True)  # interrupted or taken over: back to the list
        else:
            q.finish("failed", file_id=q.current_file_id, error=result.error)

    @hookimpl
    def tallyclerk_file_skipped(self, path: str, skip: Any) -> None:
        q = self.queue
        if not self._mine(path):
            return
        if str(skip.reason).startswith("being loaded"):
            # the same content is being loaded right now (a twin path, or a claim whose owner
            # still renews it): look again later
            q.finish("skipped", release=True, delay_s=q.hold_off_s)
        elif q.current is not None:
            q.resolved = True
            q.worklist.finish_skipped(q.current, file_id=skip.file_id, error=skip.reason)


# --- the worker process --------------------------------------------------------------------


def run_worker(spec: dict[str, Any]) -> int:
    """Run one worker of a load (what ``python -m tallyclerk.workers`` does)."""
    from tallyclerk._core import Watchdog
    from tallyclerk.audit import AuditService
    from tallyclerk.cli.load import handle_signals, read_schema
    from tallyclerk.logs import bind
    from tallyclerk.pipeline import Pipeline, StopToken
    from tallyclerk.plugins import get_plugin_manager
    from tallyclerk.protocols import Config
    from tallyclerk.settings import load_settings

    load_id = str(spec["load_id"])
    pm = get_plugin_manager(list(spec.get("plugins") or []))
    settings = load_settings(overrides=dict(spec.get("overrides") or {}))
    schema = read_schema(spec.get("schema"))
    into = str(spec["into"])
    audit_url = str(spec.get("audit") or into)
    options: dict[str, Any] = dict(spec.get("options") or {})
    options.update(settings=settings, schema=schema, load_id=load_id,
                   max_field_bytes=options.get("max_field_bytes") or settings.max_field_bytes)
    config = Config(command="load", options=options, pluginmanager=pm, settings=settings)
    pm.hook.tallyclerk_configure.call_historic(kwargs={"config": config})
    worklist = WorkList(audit_url, settings=settings, owner=f"{host_identity()}:{os.getpid()}")
    try:
        sink = pm.hook.tallyclerk_open_sink(url=into, options=options)
        if sink is None:
            raise ConfigError("no sink plugin accepts --into")
        try:
            stop = StopToken()
            queue = WorkQueue(worklist, load_id, settings=settings, stop=stop)
            pm.register(WorkerHooks(queue), name="tallyclerk.workers")
            watchdog = Watchdog()
            watchdog.add_heartbeat("worklist", settings.heartbeat_s, queue.heartbeat)
            with AuditService(audit_url, settings=settings) as audit, handle_signals(stop), \
                    bind(correlation_id=spec.get("correlation_id")):
                queue.audit = audit
                try:
                    on_error = str(spec.get("on_error") or "continue")
                    pipeline = Pipeline(settings, pm, audit, sink, into_url=into, stop=stop)
                    report = pipeline.run(queue, str(spec["table"]), schema, options,
                                          on_error=on_error,
                                          max_rejects=spec.get("max_rejects"),
                                          force=bool(spec.get("force")))
                    if on_error == "abort" and any(
                        f.get("status") == "failed" for f in report.get("files", [])
                    ):
                        stopped = worklist.stop_pending(
                            load_id, "not attempted: the load stopped (--on-error abort)")
                        log.error("load %s stopped by --on-error abort: %d file(s) not "
                                  "attempted", load_id, stopped)
                finally:
                    watchdog.stop()
                    queue.release_unfinished()
            return 128 + stop.signum if stop.signum is not None else 0
        finally:
            sink.close()
    finally:
        pm.hook.tallyclerk_unconfigure(config=config)
        worklist.close()


def main() -> int:
    """Entry of a worker process: the request as one JSON object on stdin."""
    spec = json.loads(sys.stdin.read())
    sys.stdin.close()
    return _worker_cli(spec)


def _worker_cli(spec: dict[str, Any]) -> int:
    """Run :func:`run_worker` with the CLI's error handling and logging."""
    from tallyclerk.cli import EXIT_INTERNAL, EXIT_STOPPED, EXIT_USAGE
    from tallyclerk.errors import AuditStoreError, SinkError, TallyclerkError
    from tallyclerk.logs import configure_logging

    configure_logging(fmt="json" if spec.get("log_format") == "json" else "text",
                      level=spec.get("log_level") or logging.WARNING)
    try:
        return run_worker(spec)
    except ConfigError as exc:
        log.error("worker %d: %s", os.getpid(), exc)
        return EXIT_USAGE
    except (SinkError, AuditStoreError, RepositoryError, TallyclerkError) as exc:
        log.error("worker %d stopped (%s): %s", os.getpid(), type(exc).__name__, exc,
                  extra={"error_class": type(exc).__name__})
        return EXIT_STOPPED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the process's top level: logged with its traceback, exit 70
        log.error("worker %d: internal error: %s: %s", os.getpid(), type(exc).__name__, exc,
                  exc_info=True)
        return EXIT_INTERNAL


# --- the parent ----------------------------------------------------------------------------


def _spec(args: argparse.Namespace, req: Any, load_id: str) -> dict[str, Any]:
    options = {k: v for k, v in req.options.items() if k not in ("workers", "load_id")}
    level = logging.getLogger("tallyclerk").getEffectiveLevel()
    spec = {
        "load_id": load_id, "table": req.table, "into": req.into, "audit": req.audit,
        "schema": None if req.schema is None else os.path.abspath(req.schema),
        "on_error": req.on_error, "max_rejects": req.max_rejects, "force": req.force,
        "options": options, "overrides": req.overrides, "plugins": list(args.plugins or []),
        "log_format": (getattr(args, "log_format", None) or getattr(args, "global_log_format",
                       None) or os.environ.get("TALLYCLERK_LOG_FORMAT") or "text"),
        "log_level": logging.getLevelName(level),
        "correlation_id": (getattr(args, "correlation_id", None)
                           or getattr(args, "global_correlation_id", None)
                           or os.environ.get("TALLYCLERK_CORRELATION_ID") or load_id),
    }
    for key, value in options.items():
        try:
            json.dumps(value)
        except TypeError:
            raise ConfigError(f"option {key!r} cannot be passed to --workers processes") from None
    return spec


def run_parallel(args: argparse.Namespace, out: Any) -> int:
    """The parent of ``load --workers N``: register, start the workers, report the load."""
    from tallyclerk.cli.load import exit_status, read_schema, request_from_args
    from tallyclerk.cli.report import ProgressBar, print_report
    from tallyclerk.dburl import mask_url, parse_url
    from tallyclerk.names import check_table_name
    from tallyclerk.settings import load_settings

    req = request_from_args(args)
    workers = int(args.workers or 1)
    if workers < 1:
        raise ConfigError("--workers must be 1 or more")
    load_id = check_load_id(args.load_id or uuid.uuid4().hex)
    check_table_name(req.table)
    settings = load_settings(overrides=req.overrides)
    read_schema(req.schema)
    audit_url = req.audit or req.into
    parse_url(audit_url)
    probe_opts = dict(req.options, settings=settings)
    sink = args.pm.hook.tallyclerk_open_sink(url=req.into, options=probe_opts)
    if sink is None:
        scheme = req.into.split("://", 1)[0] if "://" in req.into else req.into
        raise ConfigError(f"unknown URL scheme {scheme!r} in --into {mask_url(req.into)!r} "
                          "(no sink plugin accepts it; expected sqlite:/// or postgresql://)")
    target = str(getattr(sink, "url", ""))
    sink.close()
    spec = _spec(args, req, load_id)
    worklist = WorkList(audit_url, settings=settings, owner=f"{host_identity()}:{os.getpid()}")
    try:
        worklist.register(load_id, req.table, req.paths)
        log.info("load %s: %d path(s), %d worker(s)", load_id, len(req.paths), workers)
        bar = ProgressBar(out) if (not args.json and out.stderr_is_tty) else None
        try:
            signum, codes = _supervise(spec, workers, worklist, load_id, bar)
        finally:
            if bar is not None:
                bar.close()
        unfinished = (f"not loaded: no worker finished it; run the same command again with "
                      f"--load-id {load_id}")
        report = worklist.report(load_id, req.table, req.paths, cancelled=signum is not None,
                                 unfinished=unfinished)
    finally:
        worklist.close()
    if args.json:
        out.json(report)
    else:
        print_report(out, report, target=target)
    rc = exit_status(report, signum)
    crashed = [c for c in codes if c not in (0, 1) and c >= 0]
    if rc == 1 and crashed and signum is None:
        return crashed[0]
    return rc


def _supervise(spec: dict[str, Any], n: int, worklist: WorkList, load_id: str,
               bar: Any) -> tuple[int | None, list[int]]:
    """Start ``n`` workers and wait for them; returns (the stopping signal, exit codes)."""
    payload = json.dumps(spec).encode()
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        stop.set()

    main_thread = threading.current_thread() is threading.main_thread()
    previous = ({s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
                if main_thread else {})
    try:
        for _ in range(n):
            proc = subprocess.Popen([sys.executable, "-m", "tallyclerk.workers"],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            assert proc.stdin is not None
            proc.stdin.write(payload)
            proc.stdin.close()
            procs.append(proc)
        log.info("load %s: workers %s", load_id, [p.pid for p in procs])
        reported: set[int] = set()
        forwarded = 0.0
        while True:
            for p in procs:
                code = p.poll()
                if code is not None and p.pid not in reported:
                    reported.add(p.pid)
                    _report_exit(p.pid, code, load_id)
            if len(reported) == len(procs):
                break
            if stop.is_set():
                if not forwarded:
                    forwarded = time.monotonic()
                    for p in procs:
                        if p.poll() is None:
                            p.send_signal(signal.SIGTERM)
                elif time.monotonic() - forwarded > _STOP_GRACE_S:
                    for p in procs:
                        if p.poll() is None:
                            log.error("worker %d did not stop within %.0f s: killed", p.pid,
                                      _STOP_GRACE_S)
                            p.kill()
            if bar is not None:
                try:
                    bar(*worklist.progress(load_id))
                except RepositoryError as exc:
                    log.warning("load %s: progress unavailable: %s", load_id, exc)
            stop.wait(0.05 if stop.is_set() else 0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for s, old in previous.items():
            signal.signal(s, old)
    return (got[0] if got else None), [p.returncode for p in procs]


def _report_exit(pid: int, code: int, load_id: str) -> None:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        log.error("load %s: worker %d was killed by %s; the files it held are taken over by "
                  "the other workers once their leases expire", load_id, pid, name)
    elif code not in (0, 1):
        log.error("load %s: worker %d exited with status %d", load_id, pid, code)
    else:
        log.info("load %s: worker %d finished", load_id, pid)


if __name__ == "__main__":
    sys.exit(main())
