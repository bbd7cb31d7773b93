"""Content fingerprints taken ahead of the claim, on a spare core.

The fingerprint of a compressed file is its decompressed text's (see README "Compressed
files"): a full decompression pass before the claim. :func:`prefetch` starts computing the
fingerprints of a load's paths on one background thread (the Rust hash runs detached from the
interpreter, so it overlaps with start-up imports and the audit store's set-up, or with the
previous file's load); :func:`fingerprint` returns a prefetched value only if the file is
unchanged since (same device, inode, size, modification and change time, before and after the
hash), else computes it now. Errors are never cached: the caller's own computation raises them.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence

__all__ = ["Prefetch", "assign", "fingerprint", "prefetch", "remember"]

_Stamp = tuple[int, int, int, int, int]
_lock = threading.Lock()
_done: dict[str, tuple[_Stamp, str]] = {}
_pending: dict[str, threading.Event] = {}
_assigned: dict[str, tuple[_Stamp, str]] = {}  # kept, not used up: a file may be asked twice
_MAX = 10_000  # cached results kept (a watcher runs for months)


def _stamp(path: str) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _compute(path: str) -> None:
    from tallyclerk._core import file_fingerprint

    try:
        before = _stamp(path)
        # never a FIFO or device (the load refuses them): opening a FIFO without a writer
        # would block this thread, and close() waits for it
        regular = before is not None and stat.S_ISREG(os.stat(path).st_mode)
        value = file_fingerprint(path) if regular else None
        if value is not None and _stamp(path) == before:
            with _lock:
                if len(_done) >= _MAX:
                    _done.pop(next(iter(_done)))
                _done[path] = (before, value)  # type: ignore[assignment]
    except Exception:  # noqa: BLE001, S110 - fingerprint() computes it again and raises
        pass
    finally:
        with _lock:
            event = _pending.pop(path, None)
        if event is not None:
            event.set()


class Prefetch:
    """A running prefetch: :meth:`close` stops it after the file in hand and waits for it
    (no thread outlives the call that started it)."""

    def __init__(self, todo: list[str]) -> None:
        self._todo = todo
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        if todo:
            self._thread = threading.Thread(target=self._work, name="tallyclerk-fingerprint",
                                            daemon=True)
            self._thread.start()

    def _work(self) -> None:
        for i, p in enumerate(self._todo):
            if self._cancel.is_set():
                with _lock:
                    events = [_pending.pop(q, None) for q in self._todo[i:]]
                for event in events:
                    if event is not None:
                        event.set()
                return
            _compute(p)

    def close(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


_INLINE_BYTES = 64 * 1024
"""A lone file up to this size is not prefetched: hashing it on demand costs less than
starting and joining the thread (issue 16.1: a one-row load)."""


def _small(path: str) -> bool:
    try:
        return os.stat(path).st_size <= _INLINE_BYTES
    except OSError:
        return True  # fingerprint() raises the error, prefetched or not


def prefetch(paths: Sequence[str]) -> Prefetch:
    """Start fingerprinting ``paths`` (local files) in order on a background thread.

    Nothing starts for a single small file (see :data:`_INLINE_BYTES`): :func:`fingerprint`
    computes it when asked, as it does for any file not prefetched.
    """
    if len(paths) == 1 and "://" not in paths[0] and _small(paths[0]):
        return Prefetch([])
    todo: list[str] = []
    with _lock:
        for p in paths:
            if "://" not in p and p not in _pending and p not in _done:
                _pending[p] = threading.Event()
                todo.append(p)
    return Prefetch(todo)


def remember(path: str) -> None:
    """Compute the fingerprint of ``path`` now, on this thread, for a later
    :func:`fingerprint` of the unchanged file (an object's copy, hashed on the thread that
    copied it while the previous file loads). Errors are not kept."""
    _compute(path)


def fingerprint(path: str) -> str:
    """The content fingerprint of ``path``: prefetched if still valid, else computed now.

    Raises:
        SourceError: as :func:`tallyclerk.file_fingerprint`.
    """
    from tallyclerk._core import file_fingerprint

    with _lock:
        given = _assigned.get(path)
    if given is not None and _stamp(path) == given[0]:
        return given[1]
    with _lock:
        event = _pending.get(path)
    if event is not None:
        event.wait()
    with _lock:
        found = _done.get(path)  # kept: the skip-ahead look and the claim both ask
    if found is not None and _stamp(path) == found[0]:
        return found[1]
    if "://" not in path and before_regular(path) is False:
        from tallyclerk.errors import SourceError

        # opening a FIFO without a writer never returns; a pipe cannot be read twice
        raise SourceError(f"{path}: not a regular file (a pipe, socket or device)", path=path)
    return file_fingerprint(path)


def before_regular(path: str) -> bool | None:
    """Whether ``path`` is a regular file (None: it cannot be looked at)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return None


def assign(path: str, value: str) -> None:
    """Give ``path`` (as it is now) the identity ``value`` instead of its content's hash, for
    every :func:`fingerprint` of it while it is unchanged (the skip-ahead look and the claim
    both ask): a replay's file is identified by the rejects it holds."""
    stamp = _stamp(path)
    if stamp is None:
        raise OSError(f"{path}: no such file")
    with _lock:
        if len(_assigned) >= _MAX:
            _assigned.pop(next(iter(_assigned)))
        _assigned[path] = (stamp, value)
