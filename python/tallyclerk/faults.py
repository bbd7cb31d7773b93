"""Fault injection for the reliability suites: named points that can kill or fail the process.

Set ``TALLYCLERK_FAULT=POINT:ACTION[@N]`` (read once, when this module is first imported) and
the ``N``-th time (default 1) the code passes :func:`point` with that name, the action runs:

``kill``
    ``SIGKILL`` to this process (no cleanup, no ``finally``: a power cut for the process).
``raise``
    raise :class:`InjectedFault`, a permanent :class:`~tallyclerk.errors.SinkError`.
``transient``
    raise :class:`InjectedFault` marked ``transient`` (the pipeline retries it).

Points (in the order a file passes them; see :mod:`tallyclerk.pipeline`):

``batch-written``
    after each record batch is written into the file's open transaction (mid-file; ``@N``
    counts batches across the whole run, so ``batch-written:kill@7`` dies inside a file).
``before-data-commit``
    the file's rows (and, when the audit store shares the database, its rejects and its
    ``loaded`` manifest row) are written but not committed.
``after-data-commit-before-manifest``
    separate audit database only: the data is committed, the manifest still says ``loading``
    (the next run deletes the rows by ``_tc_file_id`` and loads the file again).
``after-commit-before-event``
    the file is committed and marked ``loaded``; its ``file_loaded`` audit event is not yet
    recorded.
``replace-before-swap-commit``
    ``--mode replace``: the table is dropped and the shadow renamed (and, with the audit store
    in the same database, the manifest updated), not committed.
``replay-before-mark``
    ``tallyclerk replay``: the replayed rows are committed, the old rejects not yet marked.
``after-swap-before-manifest``
    ``--mode replace``, separate audit database only: the swap is committed, the manifest
    still names the shadow table.

Unset (the normal case) :func:`point` is one global lookup and a comparison.
"""

from __future__ import annotations

import os
import signal

from tallyclerk.errors import ConfigError, SinkError

__all__ = ["ACTIONS", "ENV_VAR", "POINTS", "InjectedFault", "parse", "point"]

ENV_VAR = "TALLYCLERK_FAULT"
POINTS = (
    "batch-written",
    "before-data-commit",
    "after-data-commit-before-manifest",
    "after-commit-before-event",
    "replace-before-swap-commit",
    "after-swap-before-manifest",
    "replay-before-mark",
)
ACTIONS = ("kill", "raise", "transient")


class InjectedFault(SinkError):
    """A failure injected by ``TALLYCLERK_FAULT`` (tests only)."""


def parse(spec: str) -> tuple[str, str, int]:
    """``"point:action[@n]"`` -> ``(point, action, n)``; :class:`ConfigError` when malformed."""
    head, _, count = spec.strip().partition("@")
    name, _, action = head.partition(":")
    if name not in POINTS or action not in ACTIONS:
        raise ConfigError(
            f"{ENV_VAR} must be POINT:ACTION[@N] with POINT one of {', '.join(POINTS)} "
            f"and ACTION one of {', '.join(ACTIONS)}; got {spec!r}"
        )
    try:
        n = int(count) if count else 1
    except ValueError:
        raise ConfigError(f"{ENV_VAR}: @N must be an integer, got {count!r}") from None
    if n < 1:
        raise ConfigError(f"{ENV_VAR}: @N must be 1 or more, got {n}")
    return name, action, n


_spec = os.environ.get(ENV_VAR) or None
_ARMED: tuple[str, str, int] | None = parse(_spec) if _spec else None
_hits = 0


def point(name: str) -> None:
    """Pass the named fault point: runs the armed action on its ``N``-th pass, else nothing."""
    if _ARMED is None or _ARMED[0] != name:
        return
    global _hits
    _hits += 1
    if _hits != _ARMED[2]:
        return
    action = _ARMED[1]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"injected fault at {name} (pass {_hits})",
                        transient=action == "transient")
