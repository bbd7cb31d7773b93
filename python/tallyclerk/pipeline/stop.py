"""A stop request (Ctrl-C, SIGTERM) that the pipeline checks between record batches."""

from __future__ import annotations

import threading

__all__ = ["StopToken"]


class StopToken:
    """A stop request (Ctrl-C, SIGTERM); set from a signal handler, read by the pipeline."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.signum: int | None = None

    def stop(self, reason: str = "interrupted", signum: int | None = None) -> None:
        if not self._event.is_set():
            self.reason, self.signum = reason, signum
            self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)
