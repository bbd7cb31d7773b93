"""Object-store copies started ahead of the load that needs them (issue 14's S3 speed).

:func:`prefetch` starts copying a load's object URLs to private spools on one background
thread, in order and at most one object ahead of the load: the first object is copied while
the audit store and the sink are set up, object n+1 while object n is loaded.
:func:`tallyclerk.objstore.fetch` then takes the finished copy (:func:`take`) instead of reading the
object again, so the whole-file semantics do not change:

* the claim still fingerprints the very spool that is then loaded (hashed on the copying
  thread, :func:`tallyclerk.fingerprints.remember`, and valid only while that file is
  unchanged), and records the size and ETag of the response(s) the copy was read from: a
  file is never claimed on a fingerprint of other bytes than those loaded. An object rewritten after
  its copy was taken is the next load's business, as it is when it is rewritten during a load;
* a copy that fails (a dropped connection after the back-end's own retries, no such object,
  access denied) is not kept and nothing is reported from it: ``fetch`` copies again in the
  foreground with the settings' retries and backoff and reports what it finds. The prefetch
  makes a single attempt, so a failing object costs one attempt more, not twice the retries;
* memory stays bounded (the copy is chunked as ``fetch``'s) and so does the disk: at most two
  spools per load, the one being loaded and the next one;
* a stop request is not delayed: :meth:`Prefetch.close` abandons the copy in flight (it ends
  at its next chunk and removes its spool) and removes the copies nobody took.

The running prefetch is found through a context variable
(:data:`tallyclerk.objstore.COPIES_AHEAD`) set by :func:`prefetch`, so loads running at once in
other threads of one process never take each other's copies.
"""

from __future__ import annotations

import contextvars
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tallyclerk import fingerprints, objstore

__all__ = ["Prefetch", "prefetch"]

log = logging.getLogger("tallyclerk.objstore")

_POLL_S = 0.05
_JOIN_S = 0.5  # close() waits this long for the copy in flight to notice, then leaves it


@dataclass
class _Entry:
    url: str
    state: str = "waiting"  # -> copying -> ready | failed; dropped; taken
    spool: str | None = None
    fetched: objstore.Fetched | None = None


class Prefetch:
    """A running prefetch of ``urls`` (in the order the load asks for them)."""

    def __init__(self, urls: Sequence[str], settings: Any) -> None:
        self._entries = [_Entry(u) for u in urls]
        self._settings = settings
        self._cond = threading.Condition()
        self._cursor = 0  # entries before it were taken or dropped by the load
        self._closed = False
        self._thread: threading.Thread | None = None
        self._token: contextvars.Token[objstore.Take | None] | None = None
        if self._entries:
            self._thread = threading.Thread(target=self._work, name="tallyclerk-objprefetch",
                                            daemon=True)
            self._thread.start()

    # -- the background thread ------------------------------------------------------------
    def _work(self) -> None:
        for k, entry in enumerate(self._entries):
            with self._cond:
                while not self._closed and k > self._cursor:  # at most one ahead of the load
                    self._cond.wait()
                if self._closed:
                    return
                if entry.state != "waiting":  # the load went past it
                    continue
                entry.state = "copying"
            self._copy(entry)

    def _copy(self, entry: _Entry) -> None:
        def stopped() -> str | None:
            if self._closed:
                return "closed"
            return "dropped" if entry.state == "dropped" else None

        fetched: objstore.Fetched | None = None
        spool: str | None = None
        try:
            spool = tempfile.mkdtemp(prefix="tallyclerk-fetch-")
            with self._cond:
                entry.spool = spool  # removed by whoever drops the entry, even mid-copy
            path, copy_once = objstore.copier(entry.url, self._settings)
            info = copy_once(spool, stopped)
            fetched = objstore.Fetched(local=objstore.spool_file(spool, path), info=info)
            if stopped() is None:
                fingerprints.remember(fetched.local)  # the claim's hash, done here
        except Exception as exc:  # noqa: BLE001 - fetch() copies again and reports the error
            log.debug("copy ahead of %s failed (%s): copied again when the load reaches it",
                      entry.url, objstore._describe(exc))
        with self._cond:
            keep = fetched is not None and entry.state == "copying" and not self._closed
            if keep:
                entry.state, entry.fetched = "ready", fetched  # the load's now (or close()'s)
            elif entry.state == "copying":
                entry.state, entry.spool = "failed", None
            self._cond.notify_all()
        if not keep and spool is not None:
            shutil.rmtree(spool, ignore_errors=True)

    # -- the load's side --------------------------------------------------------------------
    def take(self, url: str, should_stop: Callable[[], str | None]) -> objstore.Fetched | None:
        """The finished copy of ``url`` (the caller removes its directory when done), or
        None when there is none to take (not prefetched, or its copy failed).

        Waits for a copy in flight, asking ``should_stop`` every 50 ms; raises
        :class:`~tallyclerk.objstore.FetchStopped` when it answers a reason.
        """
        with self._cond:
            if self._closed:
                return None
            found = next((j for j in range(self._cursor, len(self._entries))
                          if self._entries[j].url == url), None)
            if found is None:
                return None
            leftovers = [self._drop(i) for i in range(self._cursor, found)]
            self._cursor = found + 1
            self._cond.notify_all()
        for spool in leftovers:
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)
        entry = self._entries[found]
        while True:
            with self._cond:
                if entry.state in ("ready", "failed") or self._closed:
                    if entry.state != "ready":
                        return None
                    entry.state, entry.spool = "taken", None  # the caller removes it
                    return entry.fetched
                why = should_stop()
                if why is None:
                    self._cond.wait(_POLL_S)
                    continue
                spool = self._drop(found)  # the copy ends at its next chunk
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)
            raise objstore.FetchStopped(why)

    def _drop(self, index: int) -> str | None:
        """Mark an entry the load went past (or will not reach); returns the spool to remove
        (a copy in flight ends at its next chunk, writing to a removed file meanwhile)."""
        entry = self._entries[index]
        if entry.state == "taken":
            return None
        spool = entry.spool
        entry.state, entry.spool, entry.fetched = "dropped", None, None
        return spool

    def close(self) -> None:
        """Stop copying and remove every copy the load did not take."""
        if self._token is not None:
            objstore.COPIES_AHEAD.reset(self._token)
            self._token = None
        with self._cond:
            self._closed = True
            leftovers = [self._drop(i) for i in range(len(self._entries))]
            self._cond.notify_all()
        for spool in leftovers:
            if spool is not None:
                shutil.rmtree(spool, ignore_errors=True)
        if self._thread is not None:
            # the copy in flight stops at its next chunk; a read blocked on a slow server
            # (up to read_timeout_s) is left to end on its own and removes its spool then
            self._thread.join(_JOIN_S)
            self._thread = None


def prefetch(paths: Sequence[str], settings: Any) -> Prefetch:
    """Start copying the object URLs among ``paths`` in order, for
    :func:`tallyclerk.objstore.fetch` in this context; :meth:`Prefetch.close` it when the load
    is over."""
    handle = Prefetch([p for p in paths if objstore.is_remote(p)], settings)
    handle._token = objstore.COPIES_AHEAD.set(handle.take)
    return handle
