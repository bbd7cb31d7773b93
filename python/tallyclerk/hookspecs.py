"""Hook specifications for tallyclerk plugins (pluggy project name ``tallyclerk``).

A plugin is a module (or object) with functions named like the hooks below, each decorated
with :data:`hookimpl`. Register it with an entry point in the ``tallyclerk`` group::

    [project.entry-points.tallyclerk]
    parquet = "tallyclerk_parquet"

or for one run with ``tallyclerk load -p my_module ...``. The built-in loaders, validator and
sinks (``tallyclerk.builtins``) are plugins written exactly this way.

Hooks are called in LIFO registration order (plugins loaded later run first); ``tryfirst`` /
``trylast`` on an implementation adjust that. The built-ins are registered first and their
loaders and sinks are ``trylast``, so an installed or ``-p`` plugin always runs before them
(see :mod:`tallyclerk.plugins`). A plugin implements only the hooks it needs and may accept
only the arguments it uses.

What a plugin receives in ``options`` (``tallyclerk_open_source``, ``tallyclerk_open_sink``
and ``BatchContext.options``), every key always present:

``format`` (``str | None``)
    ``--format``; None: claim by suffix.
``delimiter`` (``str | None``)
    ``--delimiter``; None: the format's own (``,`` for CSV).
``encoding`` (``str``)
    ``--encoding``, default ``"utf-8"``.
``batch_rows`` (``int``, > 0)
    rows per record batch to produce now: the ``batch_rows`` setting (``--batch-rows``), or
    when that is 0 (adaptive, the default) the adaptive sizer's current size; the pipeline
    may assign ``source.batch_rows`` between batches.
``max_field_bytes`` (``int``)
    ``--max-field-bytes`` or the setting (default 16 MiB): the largest field or line.
``schema`` (``TableSchema | None``)
    ``--schema``, compiled.
``settings`` (:class:`tallyclerk.settings.Settings`)
    every setting, resolved (``settings.sensitive_columns``, ``settings.batch_rows``...).
plugin options
    under their ``dest`` name; their argparse default when not given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from tallyclerk._core import RecordBatch
    from tallyclerk.audit import FileResult, FileSkip, RejectRow
    from tallyclerk.protocols import BatchContext, Config, Sink, Source

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("tallyclerk")
hookimpl = pluggy.HookimplMarker("tallyclerk")


# -------------------------------------------------------------------------------------------
# Initialization hooks: called once per command, for every registered plugin
# -------------------------------------------------------------------------------------------


@hookspec(historic=True)
def tallyclerk_addoption(
    parser: argparse.ArgumentParser, pluginmanager: pluggy.PluginManager
) -> None:
    """Register command-line options of ``tallyclerk load``.

    Historic: a plugin registered after the call (for example with ``-p``) still receives it.
    Options appear in ``options`` of every later hook under their ``dest`` name
    (``--parquet-columns`` -> ``options["parquet_columns"]``). Prefix option names with the
    plugin's name so they cannot clash.

    :param parser: the ``load`` sub-command's parser; call ``parser.add_argument(...)``.
    :param pluginmanager: the plugin manager.
    """


@hookspec(historic=True)
def tallyclerk_configure(config: Config) -> None:
    """Perform initial configuration after the command line has been parsed.

    Historic: plugins registered later are configured when they are registered.

    :param config: the command, its parsed options, the settings and the plugin manager.
    """


@hookspec
def tallyclerk_unconfigure(config: Config) -> None:
    """Release what ``tallyclerk_configure`` set up; called once before the command exits,
    whether it succeeded or not.

    :param config: the same object ``tallyclerk_configure`` received.
    """


# -------------------------------------------------------------------------------------------
# Source and sink hooks: which formats exist, who reads a file, who writes the rows
# -------------------------------------------------------------------------------------------


@hookspec
def tallyclerk_formats() -> Mapping[str, Sequence[str]] | None:
    """Declare the file formats a loader reads: ``{format name: file-name suffixes}``.

    Every loader implements it (``{"parquet": (".parquet", ".pq")}``); the results of all
    plugins are merged. ``tallyclerk load --format NAME`` is refused (exit 2) before anything
    starts when no plugin declares NAME, and ``tallyclerk plugins`` lists the formats. The
    loader's ``tallyclerk_open_source`` must claim exactly what it declares.
    """


@hookspec(firstresult=True)
def tallyclerk_open_source(path: str, options: Mapping[str, Any]) -> Source | None:
    """Open ``path`` for reading and return a :class:`~tallyclerk.protocols.Source`, or None
    when this loader does not handle the file.

    A loader claims a file when ``options["format"]`` names its format, or, when no format
    is given, by the file's suffix (``.csv``, ``.jsonl``...). Problems with the file as a
    whole (missing, unreadable, bad encoding) raise :class:`~tallyclerk.errors.SourceError`;
    problems with single records are rejects of the batch.

    Stops at first non-None result.

    :param path: the path as the user gave it.
    :param options: ``format``, ``delimiter``, ``encoding``, ``batch_rows``,
        ``max_field_bytes``, ``schema``, ``settings`` and plugin options (types and
        defaults in the module docstring).
    """


@hookspec(firstresult=True)
def tallyclerk_open_sink(url: str, options: Mapping[str, Any]) -> Sink | None:
    """Open the target database named by ``url`` and return a
    :class:`~tallyclerk.protocols.Sink`, or None when this sink does not handle the URL.

    Raise :class:`~tallyclerk.errors.ConfigError` for a URL this sink handles but that is
    invalid. When no plugin accepts the URL the command fails with exit status 2.

    Stops at first non-None result.

    :param url: the ``--into`` URL (it may hold a password: never log it unmasked).
    :param options: the same mapping as ``tallyclerk_open_source``'s (``format``,
        ``delimiter``, ``encoding``, ``batch_rows``, ``max_field_bytes``, ``schema``,
        ``settings``, plugin options; see the module docstring).
    """


# -------------------------------------------------------------------------------------------
# Record hooks: called for every record batch, in the reader thread
# -------------------------------------------------------------------------------------------


@hookspec
def tallyclerk_validate_batch(batch: RecordBatch, context: BatchContext) -> None:
    """Check a record batch; mark each failing row with
    ``batch.reject(index, column, rule, reason)``.

    Every validator runs (there is no first result), on every load of every table: return at
    once when the columns you check are absent. The built-in Table Schema validator is
    ``tryfirst``: it coerces the columns to the schema's types in place, so validators that
    run after it see typed values. A row's first verdict wins. Values of sensitive columns
    (``batch.sensitive``) are masked in ``reason`` for you; leave derived forms of them out.

    :param batch: the record batch (rows read from one file).
    :param context: the file's context: batch id, file id, path, table, ``schema`` (the
        Table Schema in effect, or None), options and attempt.
    """


@hookspec
def tallyclerk_transform_batch(batch: RecordBatch, context: BatchContext) -> None:
    """Repair or derive fields of a validated batch in place, with ``batch.set_column``.

    Called after every validator, for every batch. Rejected rows are never written, whatever
    a transform does to them. A derived column must exist in the target table.

    :param batch: the record batch, already validated.
    :param context: batch id, file id, path, table and options.
    """


# -------------------------------------------------------------------------------------------
# Event hooks: notifications, return values are ignored
# -------------------------------------------------------------------------------------------


@hookspec
def tallyclerk_batch_start(batch_id: str, table: str, paths: Sequence[str]) -> None:
    """A load batch started.

    :param batch_id: the new batch's id.
    :param table: the target table.
    :param paths: the paths to load, as given.
    """


@hookspec
def tallyclerk_batch_finish(batch_id: str, report: Mapping[str, Any]) -> None:
    """A load batch finished (in any status); called before the command exits.

    :param batch_id: the batch's id.
    :param report: the batch report (the ``--json`` object: status, counts, files).
    """


@hookspec
def tallyclerk_file_start(context: BatchContext) -> None:
    """Loading a file starts (it was claimed; its transaction is about to open).

    Called again for each retry of the same file, with a new context (``context.attempt``
    counts). Every hook about this attempt (``validate_batch``, ``transform_batch``,
    ``rows_rejected``, ``rows_written``, ``file_finish``) receives that same object.

    :param context: the file's context: batch id, file id, path, table, schema, options,
        attempt.
    """


@hookspec
def tallyclerk_file_finish(context: BatchContext, status: str, result: FileResult) -> None:
    """A file ended: ``status`` is ``"loaded"`` (committed) or ``"failed"`` (rolled back).

    :param context: the file's context (the one ``tallyclerk_file_start`` received).
    :param status: ``"loaded"`` or ``"failed"``.
    :param result: rows read, written and rejected, bytes read, the error if any.
    """


@hookspec
def tallyclerk_file_skipped(context: BatchContext, skip: FileSkip) -> None:
    """A file was not loaded because the same content is already loaded into the table
    (or is being loaded by another live process).

    :param context: the file's context (``file_id`` is this batch's ``skipped`` manifest
        row, ``attempt`` is 0: nothing was attempted).
    :param skip: the earlier batch and the reason.
    """


@hookspec
def tallyclerk_timeout(batch_id: str, kind: str, context: BatchContext | None) -> None:
    """The batch passed its operation or idle timeout and was cancelled; the batch ends
    ``timed_out``. Called once per batch, wherever the timeout ended the work: in the middle
    of a file (which is rolled back) or between files (the rest are not attempted).

    :param batch_id: the batch's id.
    :param kind: ``"operation"`` or ``"idle"``.
    :param context: the context of the file being loaded when it happened, or None when the
        timeout ended the batch between files.
    """


@hookspec
def tallyclerk_rows_rejected(context: BatchContext, rejects: Sequence[RejectRow]) -> None:
    """Rows of a file were quarantined; called once per record batch that had rejects.

    :param context: the file's context (``context.path`` is the path as given).
    :param rejects: the rejected rows with record number, line, column, rule, reason, raw
        text and ``masked``.
    """


# -------------------------------------------------------------------------------------------
# Observation hooks: measurements of the running pipeline (metrics), return values ignored
# -------------------------------------------------------------------------------------------


@hookspec
def tallyclerk_rows_written(context: BatchContext, rows: int, seconds: float) -> None:
    """The sink wrote one record batch's valid rows, inside the file's still open transaction
    (they are committed, or rolled back, with the file: see ``tallyclerk_file_finish``).

    Called on the pipeline's writer thread, once per record batch: keep it quick and
    thread-safe. The built-in metrics plugin feeds its write-latency histogram from it.

    :param context: batch id, file id, path, table and options of the batch written.
    :param rows: how many rows the sink wrote.
    :param seconds: how long the sink's ``write`` took.
    """


@hookspec
def tallyclerk_pipeline_stats(batch_id: str, stats: Mapping[str, Any]) -> None:
    """A sample of the running batch's internals, taken after every record batch and every
    file (on the reader thread).

    ``stats`` keys (all numbers are per batch, counts cumulative since the batch started):
    ``sink_queue_depth`` and ``sink_queue_high_water`` (record batches waiting for the
    writer thread, now and at most, in the current file's queue), ``sink_retries`` and
    ``sink_dead_letters`` (that queue's retried writes and abandoned items),
    ``audit_queue_depth``, ``audit_queue_high_water``, ``audit_retries`` and
    ``audit_dead_letters`` (the audit store's event queue), ``file_retries`` (files retried
    after a transient error), ``breaker_state`` (``"closed"``, ``"half_open"`` or ``"open"``)
    and ``breaker_opened`` (times the circuit breaker opened), ``metrics`` (the batch
    accumulator's :class:`~tallyclerk.MetricsSnapshot`: the one count of its files and rows,
    settled and live; also taken when an attempt at a file begins). Keys may be added later:
    ignore the ones you do not know. A plugin may also define ``pipeline_stats_wanted()``
    (not a hook: a plain method or module function returning a bool); while every
    implementation's returns False, no sample is built.

    :param batch_id: the batch's id.
    :param stats: the sample (a fresh mapping each call; do not keep it).
    """
