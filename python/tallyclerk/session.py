"""One load session: the code below :func:`tallyclerk.load`, the CLI and the worker processes.

A :class:`LoadRequest` is a checked, typed description of a load (what ``tallyclerk.load()``
builds from its arguments and ``tallyclerk load`` from its command line). A
:class:`LoadSession` opens what the request needs -- the plugins' configuration
(``tallyclerk_configure``), the sink, the audit store -- runs the
:class:`~tallyclerk.pipeline.Pipeline` over a sequence of paths, and closes everything again in
reverse order, also when the load fails. Nothing here installs a signal handler:
:func:`stop_on_signals` is for the command line, which owns the process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from tallyclerk.errors import ConfigError, SchemaError

if TYPE_CHECKING:
    import argparse

    import pluggy

    from tallyclerk._core import TableSchema
    from tallyclerk.audit import AuditService
    from tallyclerk.pipeline import StopToken
    from tallyclerk.protocols import Sink
    from tallyclerk.report import LoadProgress
    from tallyclerk.settings import Settings

__all__ = [
    "LoadRequest",
    "LoadSession",
    "open_sink",
    "read_schema",
    "schema_from",
    "stop_on_signals",
]


@dataclass(frozen=True)
class LoadRequest:
    """A load, its arguments checked (build it with :func:`tallyclerk.api.make_request`).

    ``schema_json`` is the schema's JSON text (worker processes rebuild it from that);
    ``options`` are loader and plugin options by their CLI ``dest`` name (``delimiter``,
    ``encoding``, a plugin's ``--metrics-port`` as ``metrics_port``); ``plugins`` the ``-p``
    names worker processes load.
    """

    paths: tuple[str, ...]
    table: str
    settings: Settings
    into: str = "sqlite:///tallyclerk.db"
    audit: str | None = None
    schema: TableSchema | None = None
    schema_json: str | None = None
    format: str | None = None
    on_error: str = "continue"
    max_rejects: int | None = None
    force: bool = False
    workers: int | None = None
    load_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()

    @property
    def audit_url(self) -> str:
        """``audit``, else the target database (a DuckDB target: a SQLite file beside it)."""
        from tallyclerk.dburl import default_audit_url

        return self.audit or default_audit_url(self.into)

    @property
    def parallel(self) -> bool:
        """Run by worker processes through a shared work list (``workers``/``load_id``)."""
        return self.workers is not None or self.load_id is not None


def read_schema(path: str | None) -> TableSchema | None:
    """Load a Table Schema file; :class:`SchemaError` (a ConfigError) when unreadable or invalid."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:  # not pathlib: see settings.find_config_file
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SchemaError(f"cannot read schema {path}: {reason}") from exc
    from tallyclerk._core import TableSchema

    try:
        return TableSchema.from_json(text)
    except SchemaError as exc:
        raise SchemaError(f"invalid schema {path}: {exc}") from exc


def paths_from(paths: object) -> tuple[str, ...]:
    """The paths of a load or a dry run: one path (``str``, ``os.PathLike``) or a sequence of
    them; ConfigError for anything else or none."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(paths, (bytes, Mapping)) or not isinstance(paths, Sequence):
        raise ConfigError(f"paths must be a path or a list of paths, not {type(paths).__name__}")
    out: list[str] = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise ConfigError(f"a path must be a str or os.PathLike, not {type(p).__name__}")
        out.append(os.fsdecode(p))
    if not out:
        raise ConfigError("no paths to load")
    return tuple(out)


def schema_from(value: object) -> TableSchema | None:
    """A schema given as a path, a dict (a Table Schema descriptor) or a ``TableSchema``."""
    from tallyclerk._core import TableSchema

    if value is None or isinstance(value, TableSchema):
        return value
    if isinstance(value, (str, os.PathLike)):
        return read_schema(os.fsdecode(value))
    if isinstance(value, Mapping):
        import orjson

        try:
            text = orjson.dumps(dict(value)).decode()
        except TypeError as exc:
            raise SchemaError(f"invalid schema: {exc}") from exc
        try:
            return TableSchema.from_json(text)
        except SchemaError as exc:
            raise SchemaError(f"invalid schema: {exc}") from exc
    raise ConfigError(
        f"schema must be a path, a dict or a TableSchema, not {type(value).__name__}"
    )


@contextlib.contextmanager
def stop_on_signals(stop: StopToken) -> Iterator[None]:
    """For the command line: SIGINT/SIGTERM ask the load to stop (the current file rolls back);
    a second SIGINT raises KeyboardInterrupt. The previous handlers come back on exit. Does
    nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.stop(f"interrupted by {signal.Signals(signum).name}", signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def open_sink(pm: pluggy.PluginManager, into: str, options: Mapping[str, Any]) -> Sink:
    """The sink a plugin opens for ``into``; ConfigError when no plugin accepts the URL."""
    sink = pm.hook.tallyclerk_open_sink(url=into, options=options)
    if sink is None:
        from tallyclerk.dburl import mask_url

        scheme = into.split("://", 1)[0] if "://" in into else into
        raise ConfigError(
            f"unknown URL scheme {scheme!r} in --into {mask_url(into)!r} "
            "(no sink plugin accepts it; expected sqlite:/// or postgresql://)"
        )
    return sink  # type: ignore[no-any-return]


def check_format(pm: pluggy.PluginManager, fmt: str, options: Mapping[str, Any]) -> None:
    """Refuse a ``format`` no loader declares (``tallyclerk_formats``), before anything
    starts (ConfigError)."""
    from tallyclerk.plugins import declared_formats

    known = declared_formats(pm)
    if fmt.lower() not in known:
        raise ConfigError(
            f"no loader for --format {fmt!r} (formats: {', '.join(sorted(known)) or 'none'}; "
            "a plugin adds more)"
        )


def check_encoding(encoding: object) -> None:
    """Refuse an ``--encoding`` the readers cannot decode, before anything starts
    (ConfigError); None or "" is the default, utf-8."""
    if encoding is None or encoding == "":
        return
    from tallyclerk._core import known_encoding

    if not isinstance(encoding, str) or not known_encoding(encoding):
        raise ConfigError(f"--encoding: unknown encoding {encoding!r} (use utf-8, utf-16, "
                          "latin-1, cp1252, or another WHATWG label)")


def session_options(req: LoadRequest, **extra: Any) -> dict[str, Any]:
    """The options mapping plugins see (``Config.options``, ``tallyclerk_open_*``)."""
    options: dict[str, Any] = dict(req.options)
    if req.format is not None:
        options["format"] = req.format
    options.update(settings=req.settings, schema=req.schema,
                   max_field_bytes=options.get("max_field_bytes")
                   or req.settings.max_field_bytes,
                   compression=options.get("compression") or req.settings.compression, **extra)
    # what the hook reference promises every loader: these keys, with the --help defaults
    options.setdefault("format", None)
    options.setdefault("delimiter", None)
    options["encoding"] = options.get("encoding") or "utf-8"
    return options


class LoadSession:
    """The plugins configured, the sink and the audit store open: ready to run the pipeline.

    ``with LoadSession(req, pm, stop=stop) as s: report = s.run(req.paths)``. Leaving the
    block closes the audit store (its watchdog and event writer stop), the sink and the
    plugins' configuration (``tallyclerk_unconfigure``), in that order, whatever happened.
    """

    def __init__(
        self,
        req: LoadRequest,
        pm: pluggy.PluginManager,
        *,
        stop: StopToken | None = None,
        progress: Callable[[LoadProgress], None] | None = None,
        command: str = "load",
        namespace: argparse.Namespace | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        from tallyclerk.pipeline import StopToken

        self.req = req
        self.pm = pm
        self.stop = stop if stop is not None else StopToken()
        self.progress = progress
        self.command = command
        self.namespace = namespace
        self.options = dict(options) if options is not None else session_options(req)
        self.sink: Sink | None = None
        self.audit: AuditService | None = None
        self._stack = contextlib.ExitStack()

    @property
    def target(self) -> str:
        """The sink's URL, password masked."""
        return str(getattr(self.sink, "url", ""))

    def __enter__(self) -> LoadSession:
        from tallyclerk.audit import AuditService
        from tallyclerk.protocols import Config

        req = self.req
        if req.format:
            check_format(self.pm, req.format, self.options)
        config = Config(command=self.command, options=self.options, pluginmanager=self.pm,
                        settings=req.settings, namespace=self.namespace)
        with contextlib.ExitStack() as stack:
            self.pm.hook.tallyclerk_configure.call_historic(kwargs={"config": config})
            stack.callback(lambda: self.pm.hook.tallyclerk_unconfigure(config=config))
            self.sink = open_sink(self.pm, req.into, self.options)
            stack.callback(self.sink.close)
            self.audit = stack.enter_context(AuditService(req.audit_url, settings=req.settings))
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def run(self, paths: Sequence[str]) -> dict[str, Any]:
        """Run the pipeline over ``paths``; returns the batch report (the ``--json`` dict)."""
        from tallyclerk.pipeline import Pipeline

        assert self.audit is not None and self.sink is not None, "use LoadSession as a context"
        req = self.req
        pipeline = Pipeline(req.settings, self.pm, self.audit, self.sink, into_url=req.into,
                            stop=self.stop, progress=self.progress)
        return pipeline.run(paths, req.table, req.schema, self.options, on_error=req.on_error,
                            max_rejects=req.max_rejects, force=req.force)
