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

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from tallyclerk.audit.worklist import Taken, WorkList, check_load_id
from tallyclerk.errors import ConfigError, RepositoryError, TallyclerkError, exit_status_of
from tallyclerk.first_schema import SHARED_OPTION, shared_schema
from tallyclerk.hookspecs import hookimpl
from tallyclerk.report import LoadReport
from tallyclerk.session import LoadRequest, LoadSession

if TYPE_CHECKING:
    import pluggy

    from tallyclerk.progress import LoadProgress

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
        from tallyclerk.pipeline.entries import unreadable as _unreadable

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
        from tallyclerk.pipeline.entries import unreadable as _unreadable

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
    def tallyclerk_file_start(self, context: Any) -> None:
        q = self.queue
        if self._mine(context.path) and q.current is not None:
            if q.current_file_id != context.file_id:
                q.current_file_id = context.file_id
                q.worklist.started(q.current, context.file_id)

    @hookimpl
    def tallyclerk_file_finish(self, context: Any, status: str, result: Any) -> None:
        q = self.queue
        if not self._mine(context.path):
            return
        if status == "loaded":
            q.finish("loaded", file_id=q.current_file_id)
        elif result.error_class in _RELEASE_ON:
            q.finish("failed", release=True)  # interrupted or taken over: back to the list
        else:
            q.finish("failed", file_id=q.current_file_id, error=result.error)

    @hookimpl
    def tallyclerk_file_skipped(self, context: Any, skip: Any) -> None:
        q = self.queue
        if not self._mine(context.path):
            return
        if str(skip.reason).startswith("being loaded"):
            # the same content is being loaded right now (a twin path, or a claim whose owner
            # still renews it): look again later
            q.finish("skipped", release=True, delay_s=q.hold_off_s)
        elif q.current is not None:
            q.resolved = True
            q.worklist.finish_skipped(q.current, file_id=skip.file_id, error=skip.reason)


# --- the worker process --------------------------------------------------------------------


def request_from_spec(spec: dict[str, Any]) -> LoadRequest:
    """The load request a worker runs: the parent's, rebuilt from its JSON form."""
    from tallyclerk._core import TableSchema
    from tallyclerk.settings import load_settings

    schema_json = spec.get("schema_json")
    return LoadRequest(
        paths=(), table=str(spec["table"]), into=str(spec["into"]), audit=spec.get("audit"),
        settings=load_settings(overrides=dict(spec.get("settings") or {})),
        schema=None if schema_json is None else TableSchema.from_json(str(schema_json)),
        schema_json=schema_json, format=spec.get("format"),
        on_error=str(spec.get("on_error") or "continue"), max_rejects=spec.get("max_rejects"),
        force=bool(spec.get("force")), load_id=str(spec["load_id"]),
        options=dict(spec.get("options") or {}), plugins=tuple(spec.get("plugins") or ()),
    )


def run_worker(spec: dict[str, Any]) -> int:
    """Run one worker of a load (what ``python -m tallyclerk.workers`` does): the library's
    load session over the paths it takes from the load's work list."""
    from tallyclerk._core import Watchdog
    from tallyclerk.logs import bind
    from tallyclerk.pipeline import StopToken
    from tallyclerk.plugins import get_plugin_manager
    from tallyclerk.session import session_options, stop_on_signals

    req = request_from_spec(spec)
    load_id = str(req.load_id)
    settings = req.settings
    pm = get_plugin_manager(list(req.plugins))
    stop = StopToken()
    session = LoadSession(req, pm, stop=stop, options=session_options(req, load_id=load_id))
    with session, stop_on_signals(stop), bind(correlation_id=spec.get("correlation_id")):
        assert session.audit is not None
        # the audit service's engine: one connection to a SQLite store in this process
        worklist = WorkList(req.audit_url, settings=settings,
                            owner=f"{host_identity()}:{os.getpid()}", engine=session.audit.engine)
        try:
            queue = WorkQueue(worklist, load_id, settings=settings, stop=stop)
            queue.audit = session.audit
            pm.register(WorkerHooks(queue), name="tallyclerk.workers")
            watchdog = Watchdog()
            watchdog.add_heartbeat("worklist", settings.heartbeat_s, queue.heartbeat)
            try:
                report = session.run(queue)
                if req.on_error == "abort" and any(
                    f.get("status") == "failed" for f in report.get("files", [])
                ):
                    stopped = worklist.stop_pending(
                        load_id, "not attempted: the load stopped (--on-error abort)")
                    log.error("load %s stopped by --on-error abort: %d file(s) not "
                              "attempted", load_id, stopped)
            finally:
                watchdog.stop()
                queue.release_unfinished()
        finally:
            worklist.close()
    return 128 + stop.signum if stop.signum is not None else 0


def main() -> int:
    """Entry of a worker process: the request as one JSON object on stdin."""
    spec = json.loads(sys.stdin.read())
    sys.stdin.close()
    return _worker_main(spec)


def _worker_main(spec: dict[str, Any]) -> int:
    """Run :func:`run_worker` with the command line's exit statuses and logging."""
    from tallyclerk.logs import configure_logging

    configure_logging(fmt="json" if spec.get("log_format") == "json" else "text",
                      level=spec.get("log_level") or logging.WARNING)
    try:
        return run_worker(spec)
    except ConfigError as exc:
        log.error("worker %d: %s", os.getpid(), exc)
        return exit_status_of(exc)
    except TallyclerkError as exc:
        log.error("worker %d stopped (%s): %s", os.getpid(), type(exc).__name__, exc,
                  extra={"error_class": type(exc).__name__})
        return exit_status_of(exc)
    except KeyboardInterrupt as exc:
        return exit_status_of(exc)
    except Exception as exc:  # the process's top level: logged with its traceback, exit 70
        log.error("worker %d: internal error: %s: %s", os.getpid(), type(exc).__name__, exc,
                  exc_info=True)
        return exit_status_of(exc)


# --- the parent ----------------------------------------------------------------------------


def _log_format() -> str:
    from tallyclerk.logs import JsonFormatter

    for handler in logging.getLogger("tallyclerk").handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return "json"
    return os.environ.get("TALLYCLERK_LOG_FORMAT") or "text"


def _spec(req: LoadRequest, load_id: str) -> dict[str, Any]:
    from tallyclerk.logs import current_context

    level = logging.getLogger("tallyclerk").getEffectiveLevel()
    spec = {
        "load_id": load_id, "table": req.table, "into": req.into, "audit": req.audit,
        "schema_json": req.schema_json, "format": req.format,
        "on_error": req.on_error, "max_rejects": req.max_rejects, "force": req.force,
        "options": dict(req.options), "settings": req.settings.as_dict(),
        "plugins": list(req.plugins),
        "log_format": _log_format(),
        "log_level": logging.getLevelName(level),
        "correlation_id": (current_context().get("correlation_id")
                           or os.environ.get("TALLYCLERK_CORRELATION_ID") or load_id),
    }
    for key, value in req.options.items():
        try:
            json.dumps(value)
        except TypeError:
            raise ConfigError(f"option {key!r} cannot be passed to --workers processes") from None
    return spec


def run_parallel(
    req: LoadRequest,
    pm: pluggy.PluginManager,
    *,
    stop: Any = None,
    progress: Callable[[LoadProgress], None] | None = None,
) -> LoadReport:
    """The parent of a load shared by worker processes: register the paths in the work list,
    start ``req.workers`` workers, wait for them, report the load. ``stop`` (a
    :class:`~tallyclerk.pipeline.StopToken`) is passed on to the workers as SIGTERM."""
    from tallyclerk.pipeline import StopToken
    from tallyclerk.session import open_sink, session_options

    workers = int(req.workers or 1)
    load_id = check_load_id(req.load_id or uuid.uuid4().hex)
    stop = stop if stop is not None else StopToken()
    sink = open_sink(pm, req.into, session_options(req))
    target = str(getattr(sink, "url", ""))
    sink.close()
    spec = _spec(req, load_id)
    first = _first_schema(req, pm)
    if first is not None:  # every worker plans the same first schema (inferred once, here)
        spec["options"][SHARED_OPTION] = first
    worklist = WorkList(req.audit_url, settings=req.settings,
                        owner=f"{host_identity()}:{os.getpid()}")
    try:
        worklist.register(load_id, req.table, req.paths)
        log.info("load %s: %d path(s), %d worker(s)", load_id, len(req.paths), workers)
        codes = _supervise(spec, workers, worklist, load_id, stop, progress)
        unfinished = (f"not loaded: no worker finished it; run the same command again with "
                      f"--load-id {load_id}")
        report = worklist.report(load_id, req.table, req.paths, cancelled=stop.stopped,
                                 unfinished=unfinished)
    finally:
        worklist.close()
    return LoadReport.from_dict(report, into=target, signal=stop.signum,
                                worker_exit_codes=codes)


def _first_schema(req: LoadRequest, pm: pluggy.PluginManager) -> dict[str, str] | None:
    """The table's first schema, built once from the load's first path, when the table has
    neither a ``--schema`` nor a remembered schema (see :mod:`tallyclerk.first_schema`)."""
    from tallyclerk.dryrun import remembered_schema
    from tallyclerk.session import session_options

    if req.schema_json is not None or not req.paths:
        return None
    if remembered_schema(req.audit_url, req.table) is not None:
        return None
    return shared_schema(req.paths[0], req.table, session_options(req), req.settings, pm.hook)


def _supervise(spec: dict[str, Any], n: int, worklist: WorkList, load_id: str, stop: Any,
               progress: Callable[[LoadProgress], None] | None) -> list[int]:
    """Start ``n`` workers and wait for them; returns their exit codes."""
    payload = json.dumps(spec).encode()
    procs: list[subprocess.Popen[bytes]] = []
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
            if stop.stopped:
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
            if progress is not None:
                try:
                    done, total, rows = worklist.progress(load_id)
                except RepositoryError as exc:
                    log.warning("load %s: progress unavailable: %s", load_id, exc)
                else:
                    from tallyclerk.progress import LoadProgress

                    progress(LoadProgress(done, total, rows))
            stop.wait(0.05 if stop.stopped else 0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs]


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
